"""Reading the daemon's audit log."""

from __future__ import annotations

from leosuite.store import audit as audit_table
from tests.helpers.daemon import RunningDaemon


async def audited(daemon: RunningDaemon, needle: str) -> list[str]:
    """Messages of the audit log (oldest first) that contain ``needle``."""
    entries: list[audit_table.AuditEntry] = await daemon.ctx.db.call(
        lambda conn: audit_table.page(conn, newest_first=False, limit=1000)
    )
    return [e.message for e in entries if needle in e.message]

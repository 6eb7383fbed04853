"""Accounts changed through the admin API (as an operator does), and the audit entries of
one server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from leosuite.store import audit as audit_table
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon


@asynccontextmanager
async def admin_client(daemon: RunningDaemon) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the admin listener with the first admin's Basic credentials."""
    async with daemon.admin(auth=("admin", ADMIN_PASSWORD)) as client:
        yield client


async def set_flags(daemon: RunningDaemon, account_id: int, flags: str) -> None:
    """``PUT /accounts/<id>/ {"flags", "admin"}`` (ADMIN as ``flags`` says: taking it
    away must be said); fails unless it answers 200."""
    body = {"flags": flags, "admin": "ADMIN" in {f.strip() for f in flags.upper().split(",")}}
    async with admin_client(daemon) as admin:
        response = await admin.put(f"/accounts/{account_id}/", json=body)
    assert response.status_code == 200, response.text


async def server_audit(daemon: RunningDaemon, server: str) -> list[audit_table.AuditEntry]:
    """Every audit entry about ``server``, oldest first."""
    entries: list[audit_table.AuditEntry] = await daemon.ctx.db.call(
        lambda conn: audit_table.page(conn, session=server, newest_first=False, limit=1000)
    )
    return entries

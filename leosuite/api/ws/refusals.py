"""Refused WebSocket connections in the audit log: one entry per address per burst.

A flood of refused connections (over a cap, before or after the handshake) writes one
entry per address and reason a minute, naming the address and how many refusals it
passed over, so refusals cannot flood the log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ...audit import Actor, AuditLog
from ...auth.limits import Limiter

if TYPE_CHECKING:
    from trio_websocket import WebSocketRequest

    from .conn import WsHub

__all__ = ["RefusalNotes"]


class RefusalNotes:
    """Audits the refusals of one kind, once per address per ``window`` seconds."""

    def __init__(self, audit: AuditLog, *, window: float = 60.0) -> None:
        self._audit = audit
        self._bursts = Limiter(trio.current_time, window=window, limit=1)

    async def note(self, ip: str, message: str) -> bool:
        """Audit ``message`` (a warning from ``ip``) if it opens a burst of that
        message from ``ip``; True when it did."""
        skipped = self._bursts.first(f"{ip} {message}")
        if skipped is None:
            return False
        more = f" ({skipped} more since the last entry)" if skipped else ""
        await self._audit.record("ws", message + more, actor=Actor(ip=ip), level="warning")
        return True

    async def refuse_over_cap(
        self, hub: WsHub, request: WebSocketRequest, ip: str, what: str
    ) -> bool:
        """Refuse the handshake (noted here) if ``hub`` has no room for ``ip``; True if
        it was refused."""
        refusal = hub.refusal(ip)
        if refusal is None:
            return False
        status, reason = refusal
        await self.note(ip, f"{what} refused: {reason}")
        await request.reject(status, body=reason.encode())
        return True

"""The ban check of every listener (``leosuite.auth.bans``), in one place.

* HTTP API and rooms: a ``before_request`` hook answering 403
  ``{"error_type": "forbidden", "error_message": "your address is banned"}`` (for
  ``/rooms`` in the rooms' shape, ``{"status": "error", "error_type", "text"}``).
* Admin API: a ``before_request`` hook answering 403 ``{"status": "error", "message"}``
  (before authentication: a banned address gets nothing else).
* WebSocket listener: the handshake is refused with 403 before routing.

Every refusal is audited through :meth:`BanList.refused` (rate-limited per address).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import msgspec
from quart import Response, request
from trio_websocket import WebSocketRequest

from ..auth.ban_rules import BANNED_MESSAGE
from .context import ApiContext
from .http.errors import error_body

__all__ = ["admin_ban_check", "http_ban_check", "refuse_banned_websocket"]

_HTTP_BODY = msgspec.json.encode({"error_type": "forbidden", "error_message": BANNED_MESSAGE})
_ADMIN_BODY = msgspec.json.encode({"status": "error", "message": BANNED_MESSAGE})

Hook = Callable[[], Awaitable[Response | None]]


def _hook(ctx: ApiContext, where: str, body: Callable[[str], bytes]) -> Hook:
    async def check_ban() -> Response | None:
        bans = ctx.bans
        ip = request.remote_addr or ""
        ban = bans.is_banned(ip)
        if ban is None:
            return None
        await bans.refused(ip, ban, f"{where} {request.method} {request.path[:200]}")
        return Response(body(request.path), status=403, content_type="application/json")

    return check_ban


def http_ban_check(ctx: ApiContext) -> Hook:
    """``app.before_request(http_ban_check(ctx))`` on the HTTP API app (rooms included)."""
    return _hook(ctx, "HTTP", lambda path: error_body(path, 403, BANNED_MESSAGE))


def admin_ban_check(ctx: ApiContext) -> Hook:
    """``app.before_request(admin_ban_check(ctx))`` on the admin app."""
    return _hook(ctx, "admin API", lambda path: _ADMIN_BODY)


async def refuse_banned_websocket(ctx: ApiContext, request: WebSocketRequest, ip: str) -> bool:
    """Refuse the handshake (403) if ``ip`` is banned; True if it was refused."""
    bans = ctx.bans
    ban = bans.is_banned(ip)
    if ban is None:
        return False
    # the path only: a query string may carry an access token (``?token=``)
    await bans.refused(ip, ban, f"WebSocket {urlsplit(request.path).path[:200]}")
    await request.reject(403, body=_HTTP_BODY)
    return True

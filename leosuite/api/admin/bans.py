"""Admin REST API (seed 002): the banlist, and the ban check of the admin listener.

``GET /banlist/``
    ``[{"id", "ip", "subnet", "expires", "comment", "added"}]``: the bans in force,
    oldest first. ``subnet`` is the prefix length (0: the single address);
    ``expires`` and ``added`` are ISO 8601 UTC (``2026-05-01T12:00:00Z``),
    ``expires`` is ``""`` for a ban that never expires.
``POST /banlist/`` ``{"ip", "subnet"?, "expires"?, "comment"?}``
    ``ip`` (or ``address``; an empty one is ignored) is an IPv4 or IPv6 address and
    may carry its prefix (``10.0.0.0/8``); ``subnet`` (a number or a numeric string)
    then must be missing or the same.
    ``expires`` is an ISO 8601 date in the future (UTC unless it has an offset), or
    missing/``""``/null for never. Answers the new ban plus ``"appliesToYou"``; when
    that is true (the ban covers the requesting address: allowed) also ``"message"``
    saying so. Bad values are 400 naming the field. The ban is enforced at once on
    every listener and open connections from the address are closed.
``DELETE /banlist/:id/``
    ``{"status": "ok"}``; an unknown id is 404.

:func:`register` also installs the admin listener's ban check (``before_request``):
a banned address gets 403 ``{"status": "error", "message"}`` on every admin path,
before authentication. The shapes live in :mod:`leosuite.api.ban_ops`, shared with the
WebSocket ``ban.*`` calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from quart import Response

from ...auth.bans import BanList
from ...auth.service import Principal
from ..ban_check import admin_ban_check
from ..ban_ops import BanBody, added_answer, ban_json, bans_in_force
from ..requests import decode_body, peer_ip

if TYPE_CHECKING:
    from .app import AdminRoutes

__all__ = ["BanBody", "ban_json", "register"]

#: A ban request is small; anything near this is not one.
_MAX_BODY = 16 * 1024


def _json(value: Any) -> Response:
    return Response(msgspec.json.encode(value), status=200, content_type="application/json")


def register(routes: AdminRoutes) -> None:
    """Add ``/banlist`` and ``/banlist/<id>`` and the listener's ban check."""
    ctx = routes.ctx
    routes.app.before_request(admin_ban_check(ctx))

    def bans() -> BanList:
        service: BanList = ctx.bans
        return service

    async def list_bans(principal: Principal) -> Response:
        return _json(bans_in_force(bans().bans(), ctx.now()))

    async def add_ban(principal: Principal) -> Response:
        body = await decode_body(BanBody, min(_MAX_BODY, ctx.settings.http.max_body_bytes))
        ip = peer_ip()
        ban = await bans().add(
            body.target(), body.subnet, body.expires, body.comment, actor=principal.actor(ip)
        )
        return _json(added_answer(ban, ip))

    async def remove_ban(principal: Principal, ban_id: int) -> Response:
        await bans().remove(ban_id, actor=principal.actor(peer_ip()))
        return _json({"status": "ok"})

    routes.add("/banlist", list_bans, ["GET"])
    routes.add("/banlist", add_ban, ["POST"])
    routes.add("/banlist/<int:ban_id>", remove_ban, ["DELETE"])

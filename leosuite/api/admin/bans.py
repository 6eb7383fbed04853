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
before authentication.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from quart import Response

from ...auth.ban_rules import covers
from ...auth.bans import BanList
from ...auth.service import Principal
from ...clock import iso_utc
from ...errors import InvalidInput
from ...store.bans import BanRecord
from ..ban_check import admin_ban_check
from ..requests import decode_body, peer_ip

if TYPE_CHECKING:
    from .app import AdminRoutes

__all__ = ["ban_json", "register"]

#: A ban request is small; anything near this is not one.
_MAX_BODY = 16 * 1024


class BanBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    ip: str = ""
    #: Another name for ``ip`` (Drawpile's web admin sends both, ``address`` empty).
    address: str = ""
    subnet: int | str | None = None
    expires: str | None = None
    comment: str | None = None

    def target(self) -> str:
        """The address to ban: ``ip`` or ``address``; both given must agree."""
        if self.ip and self.address and self.ip != self.address:
            raise InvalidInput("ip and address name different addresses", field="address")
        target = self.ip or self.address
        if not target:
            raise InvalidInput("ip is required", field="ip")
        return target


def ban_json(ban: BanRecord) -> dict[str, Any]:
    return {
        "id": ban.id,
        "ip": ban.ip,
        "subnet": ban.subnet,
        "expires": "" if ban.expires is None else iso_utc(ban.expires),
        "comment": ban.comment,
        "added": iso_utc(ban.added),
    }


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
        now = ctx.now()
        return _json([ban_json(ban) for ban in bans().bans() if not ban.expired(now)])

    async def add_ban(principal: Principal) -> Response:
        body = await decode_body(BanBody, min(_MAX_BODY, ctx.settings.http.max_body_bytes))
        ip = peer_ip()
        ban = await bans().add(
            body.target(), body.subnet, body.expires, body.comment, actor=principal.actor(ip)
        )
        answer = ban_json(ban)
        answer["appliesToYou"] = covers(ban, ip)
        if answer["appliesToYou"]:
            answer["message"] = (
                f"this ban covers your own address ({ip}): further requests from it are "
                "refused on every listener; remove the ban from another address or with "
                "'leosuite ban remove' there"
            )
        return _json(answer)

    async def remove_ban(principal: Principal, ban_id: int) -> Response:
        await bans().remove(ban_id, actor=principal.actor(peer_ip()))
        return _json({"status": "ok"})

    routes.add("/banlist", list_bans, ["GET"])
    routes.add("/banlist", add_ban, ["POST"])
    routes.add("/banlist/<int:ban_id>", remove_ban, ["DELETE"])

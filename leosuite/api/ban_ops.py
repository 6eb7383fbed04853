"""Bans as every surface offers them (the admin API's ``/banlist/`` and the WebSocket
``ban.*`` calls): the request's shape, a ban's view and the answer to an add. The rules
and their enforcement are :class:`leosuite.auth.bans.BanList`.

An added ban's answer carries ``appliesToYou``; when that is true (the ban covers the
requesting address: allowed) also ``message`` saying so.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..auth.ban_rules import covers, parse_target
from ..clock import iso_utc
from ..errors import InvalidInput
from ..store.bans import BanRecord

__all__ = ["BanBody", "added_answer", "ban_json", "bans_in_force", "would_cover"]


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


def would_cover(target: str, subnet: object, ip: str) -> bool:
    """Whether a ban of ``target`` (and ``subnet``) would cover address ``ip``;
    InvalidInput names the field of a bad target."""
    address, prefix = parse_target(target, subnet)
    ban = BanRecord(id=0, ip=address, subnet=prefix, expires=None, comment="", added=0.0)
    return covers(ban, ip)


def ban_json(ban: BanRecord) -> dict[str, Any]:
    return {
        "id": ban.id,
        "ip": ban.ip,
        "subnet": ban.subnet,
        "expires": "" if ban.expires is None else iso_utc(ban.expires),
        "comment": ban.comment,
        "added": iso_utc(ban.added),
    }


def bans_in_force(bans: list[BanRecord], now: float) -> list[dict[str, Any]]:
    """The views of the bans in force at ``now`` (expired ones are left out), by id."""
    return [ban_json(ban) for ban in bans if not ban.expired(now)]


def added_answer(ban: BanRecord, ip: str) -> dict[str, Any]:
    """The answer to adding ``ban`` from address ``ip``."""
    answer = ban_json(ban)
    answer["appliesToYou"] = covers(ban, ip)
    if answer["appliesToYou"]:
        answer["message"] = (
            f"this ban covers your own address ({ip}): further requests from it are "
            "refused on every listener; remove the ban from another address or with "
            "'leosuite ban remove' there"
        )
    return answer

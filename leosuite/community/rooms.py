"""The rooms of seed 004 as a service: the room table of :mod:`.room_state` plus what
awaits, namely password hashing, the crypto worker's SYSTEM messages and long polls
(the rooms' data is in :mod:`.room_models`).

Room creation is limited per address (``community.room_creations_per_hour``, an IPv6
/64 counting as one address); wrong ``joinRoom`` passwords are counted per address and
per room by the community's :class:`~.password_guard.PasswordGuard`, shared with the
chat's channel passwords.

Every SYSTEM message is encrypted first (in the crypto worker), then stored, so a
poll finds it ready; a SYSTEM message made from another event (a chat line, an
administrator's message) is encrypted lazily, once per event, and cached in
``event.frames["room"]``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ..auth.limits import Limiter
from ..auth.login_limits import address_key
from ..auth.passwords import PasswordHasher
from ..errors import PermissionDenied, RateLimited
from .core import ChatCore
from .crypto import PayloadVerb, new_syskey
from .models import ChatEvent, normalize_channel
from .password_guard import PasswordGuard
from .room_models import (
    POLL_BATCH,
    Notice,
    Room,
    RoomUser,
    bridged_text,
    system_invite_alert,
    system_notice,
)
from .room_state import RoomTable

__all__ = ["POLL_BATCH", "Room", "RoomUser", "Rooms", "bridged_text"]

#: ``(syskey, text, verb, user) -> payload``: a message the server writes into a room.
Encrypt = Callable[[str, str, PayloadVerb, str], Awaitable[str]]


class Rooms(RoomTable):
    """Every room of the daemon; :meth:`housekeeping` is one pass of the community
    service's housekeeping loop."""

    def __init__(
        self,
        core: ChatCore,
        hasher: PasswordHasher,
        encrypt: Encrypt,
        now: Callable[[], float],
        *,
        retention: float,
        idle_warning: float,
        min_password: int = 8,
        guard: PasswordGuard | None = None,
        creations_per_hour: int = 1_000_000,
    ) -> None:
        super().__init__(
            core, now, retention=retention, idle_warning=idle_warning, min_password=min_password
        )
        self._hasher = hasher
        self._encrypt = encrypt
        self._encrypting = trio.Lock()
        self._guard = guard
        self._creations = Limiter(trio.current_time, window=3600.0, limit=creations_per_hour)

    # -- actions ----------------------------------------------------------------------

    async def create(self, name: str, owner: str, password: str, *, ip: str = "") -> Room:
        """Open a room; RateLimited past ``room_creations_per_hour`` from ``ip``."""
        name = self.check_new_room(name, owner, password)
        if not self._creations.allow(address_key(ip)):
            raise RateLimited(
                f"at most {self._creations.limit} new rooms an hour from one address; "
                "try again later"
            )
        password_hash = await self._hasher.hash(password)
        return self.open_room(name, owner, password_hash, new_syskey())

    async def join(
        self, name: str, user: str, password: str, ip: str
    ) -> tuple[Room, RoomUser, int]:
        """Check the password (the same answer and cost whatever part is wrong, refused
        while ``ip`` or the room has too many wrong ones); returns the room, the user and
        ``last``: the id of the newest message before the join."""
        login = self.login(name, user, password)
        where = normalize_channel(name)
        session_id = login.room.session.id if login.room is not None else ""
        attempt = None
        if self._guard is not None:  # counted before the hash: racing attempts see it
            attempt = self._guard.reserve(ip, where, name=user, session_id=session_id)
        password_ok = False
        try:
            password_ok = await self._hasher.verify(login.stored_hash, password)
        finally:
            if attempt is not None:
                attempt.settle(password_ok)
        joined = self.admit(login, password_ok, ip)
        if joined.notice is not None:
            await self._announce(joined.room, joined.notice)
        return joined.room, joined.user, joined.last

    async def leave(self, room: Room, ruser: RoomUser) -> None:
        await self._announce(room, self.depart(room, ruser))

    async def send(self, room: Room, ruser: RoomUser, payload: str, to: str | None) -> ChatEvent:
        return self.post(room, ruser, payload, to)

    async def invite(self, room: Room, ruser: RoomUser, name: str, password: str) -> None:
        alert = system_invite_alert(ruser.name, name)
        if alert is not None:
            await self._announce(room, alert)
            raise PermissionDenied("SYSTEM cannot be invited")
        self.prepare_invite(room, ruser, name, password)
        password_hash = await self._hasher.hash(password)
        await self._announce(room, self.add_invitee(room, ruser, name, password_hash))

    async def kick(self, room: Room, ruser: RoomUser, name: str, *, ban: bool) -> None:
        await self._announce(room, self.expel(room, ruser, name, ban=ban))

    # -- polls ------------------------------------------------------------------------

    async def render(self, room: Room, events: list[ChatEvent]) -> list[list[Any]]:
        """``[id, msgtext, timestamp, fromuser, touser]`` for each event."""
        rows: list[list[Any]] = []
        for event in events:
            if event.kind == "message" and event.payload is not None:
                payload, sender = event.payload, event.user
            else:
                payload, sender = await self._system_payload(room, event), "SYSTEM"
            rows.append([event.id, payload, event.time, sender, event.to or "0"])
        return rows

    async def _system_payload(self, room: Room, event: ChatEvent) -> str:
        cached = event.frames.get("room")
        if isinstance(cached, str):
            return cached
        async with self._encrypting:  # one encryption per event, even for racing polls
            cached = event.frames.get("room")
            if isinstance(cached, str):
                return cached
            notice = system_notice(event)
            payload = await self._encrypt(room.syskey, notice.text, notice.verb, notice.user)
            event.frames["room"] = payload
            return payload

    async def wait_for_message(self, room: Room, ruser: RoomUser, after: int,
                               deadline: float) -> None:  # fmt: skip
        """Return once ``ruser`` has something to read, the room changed, or at
        ``deadline`` (trio time)."""
        while not self.visible(room, ruser, after) and self.alive(room) and room.joined(ruser):
            woken = trio.Event()
            room.session.on_message.append(woken.set)
            try:
                with trio.move_on_at(deadline) as scope:
                    await woken.wait()
            finally:
                room.session.on_message.remove(woken.set)
            if scope.cancelled_caught:
                return

    # -- SYSTEM messages --------------------------------------------------------------

    async def _announce(self, room: Room, notice: Notice) -> None:
        payload = await self._encrypt(room.syskey, notice.text, notice.verb, notice.user)
        self.record_notice(room, notice, payload)

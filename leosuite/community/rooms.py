"""Rooms of seed 004: per-room users, session keys, SYSTEM messages, polls, idle close.

A room is a chat core :class:`~.models.Session` with a :class:`Room` in
``session.room``: its owner, its users (accounts of this room only, passwords hashed
like account passwords), each joined user's session key, and the ``syskey`` its
SYSTEM messages are encrypted with. Messages live in the core's history, so a room
and a chat channel of the same name are one session (SPEC §5):

* a room message is a core ``message`` event whose opaque ``payload`` the server
  never decrypts; chat members see it as the chat adapter renders it;
* what the server says (joins, leaves, invites, kicks, bans, the idle warning) is a
  core ``system`` event: chat members read its text, room members get the same text
  as a SYSTEM message ``{"user": "SYSTEM", "text", "verb"}`` encrypted with the
  ``syskey``;
* a chat line (``origin == "chat"``, plain text) reaches room members as a SYSTEM
  ``sysinfo`` message whose text is ``"<nick> (chat): <text>"``; any other system
  event (an administrator's message) as a SYSTEM message of its level. These are
  encrypted lazily, once per event, and cached in ``event.frames["room"]``.

A user sees the messages stored after it joined (``RoomUser.floor``), room-wide
(``touser`` ``"0"``) or addressed to it; not the direct messages it sent (the origin's
client prints its own copy). A removed user (kick, ban, room closed, removed by an
administrator, joined again elsewhere) gets one ``errmessage`` on its next poll
(:meth:`Rooms.farewell`), then its key is dead. A room opens only under a name no
session uses yet: nobody can take over a chat channel by "creating" it.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import trio

from ..auth.passwords import PasswordHasher
from ..errors import AuthError, Conflict, InvalidInput, PermissionDenied
from .core import ChatCore
from .crypto import SystemVerb, new_syskey
from .models import ChatEvent, Level, Member, Session, normalize_channel, validate_nick

__all__ = ["POLL_BATCH", "Room", "RoomUser", "Rooms", "chat_line_text"]

#: At most this many messages per ``pollMsg`` answer (the client asks again from the last).
POLL_BATCH = 100
#: How long a removed user's farewell waits for its poll (the origin keeps it 300 s).
FAREWELL_TTL = 300.0
MAX_PASSWORD = 1024
BAD_LOGIN = "wrong room, user or password"
BAD_SESSION = "invalid or expired session key for this user and room"

_VERB_OF: dict[Level, SystemVerb] = {"info": "sysinfo", "warn": "syswarn", "alert": "sysalert"}
_LEVEL_OF: dict[SystemVerb, Level] = {v: k for k, v in _VERB_OF.items()}

Encrypt = Callable[[str, str, SystemVerb], Awaitable[str]]


def chat_line_text(nick: str, text: str) -> str:
    """How a chat member's line reads inside a room (a SYSTEM ``sysinfo`` message)."""
    return f"{nick} (chat): {text}"


class RoomUser:
    __slots__ = ("floor", "member", "name", "password_hash", "sesskey")

    def __init__(self, name: str, password_hash: str) -> None:
        self.name = name
        self.password_hash = password_hash
        self.sesskey: str | None = None
        self.member: Member | None = None
        #: Messages up to this id were stored before the user joined: not shown.
        self.floor = 0


class Room:
    def __init__(self, session: Session, owner: str, syskey: str) -> None:
        self.session = session
        self.owner = owner
        self.syskey = syskey
        self.users: dict[str, RoomUser] = {}  # casefolded name -> user
        #: ``last_activity`` when the idle warning went out, and when the room closes then.
        self.warned_at: float | None = None
        self.close_after = 0.0

    def user(self, name: str) -> RoomUser | None:
        return self.users.get(name.casefold())

    def is_owner(self, user: RoomUser) -> bool:
        return user.name.casefold() == self.owner.casefold()

    def joined(self, user: RoomUser) -> bool:
        return user.member is not None and user.member.id in self.session.members


class Farewell(NamedTuple):
    room: str
    user: str
    text: str
    expires: float


class Rooms:
    """Every room of the daemon; also its housekeeper (call it every few seconds)."""

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
    ) -> None:
        self.core = core
        self._hasher = hasher
        self._encrypt = encrypt
        self._now = now
        self.retention = retention
        self.idle_warning = idle_warning
        self.min_password = min_password
        self.rooms: dict[str, Room] = {}  # by session id
        self._farewells: dict[str, Farewell] = {}  # by the dead session key
        self._encrypting = trio.Lock()

    # -- lookups ----------------------------------------------------------------------

    def find(self, name: str) -> Room | None:
        session = self.core.find(name)
        room = self.rooms.get(session.id) if session is not None else None
        return room if room is not None and session is not None and session.room is room else None

    def _alive(self, room: Room) -> bool:
        return self.rooms.get(room.session.id) is room and room.session.id in self.core.sessions

    def authenticate(self, name: str, user: str, sesskey: str) -> tuple[Room, RoomUser]:
        """The room and user a valid ``user`` + ``sesskey`` pair belong to, or AuthError."""
        room = self.find(name)
        ruser = room.user(user) if room is not None and user else None
        if room is None or ruser is None or ruser.sesskey is None or not sesskey:
            raise AuthError(BAD_SESSION)
        if not secrets.compare_digest(ruser.sesskey.encode(), sesskey.encode()):
            raise AuthError(BAD_SESSION)
        if not room.joined(ruser):  # removed by an administrator through the core
            self._bid_farewell(room, ruser, "You have been removed from the room")
            raise AuthError(BAD_SESSION)
        return room, ruser

    def farewell(self, name: str, user: str, sesskey: str) -> str | None:
        """The one message a removed user's next poll gets (then the key is dead)."""
        found = self._farewells.get(sesskey)
        if found is None or (found.room, found.user) != (_fold(name), user.casefold()):
            return None
        del self._farewells[sesskey]
        return found.text

    def _remember(self, room: Room, ruser: RoomUser, text: str) -> None:
        if ruser.sesskey is not None:
            self._farewells[ruser.sesskey] = Farewell(
                room.session.name.casefold(),
                ruser.name.casefold(),
                text,
                self._now() + FAREWELL_TTL,
            )

    def _bid_farewell(self, room: Room, ruser: RoomUser, text: str) -> None:
        self._remember(room, ruser, text)
        ruser.sesskey = None
        member, ruser.member = ruser.member, None
        if member is not None:
            self.core.disconnect(member, text)

    # -- actions ----------------------------------------------------------------------

    async def create(self, name: str, owner: str, password: str) -> Room:
        name = normalize_channel(name)
        validate_nick(owner)
        self._check_password(password)
        if self.core.find(name) is not None:
            raise Conflict(f"a room or channel named {name!r} exists already", field="roomName")
        password_hash = await self._hasher.hash(password)
        if self.core.find(name) is not None:  # created while we hashed
            raise Conflict(f"a room or channel named {name!r} exists already", field="roomName")
        session = self.core.create(name, None, founder_name=owner)
        room = Room(session, owner, new_syskey())
        room.users[owner.casefold()] = RoomUser(owner, password_hash)
        session.room = room
        session.ops = {owner}  # owner-only moderation; later joiners are not made ops
        self.rooms[session.id] = room
        return room

    async def join(
        self, name: str, user: str, password: str, ip: str
    ) -> tuple[Room, RoomUser, int]:
        """Check the password (the same answer and cost whatever part is wrong); returns
        the room, the user and ``last``: the id of the newest message before the join."""
        if len(password) > MAX_PASSWORD or len(user) > 64:
            raise InvalidInput("user or password too long", field="userpass")
        room = self.find(name)
        ruser = room.user(user) if room is not None and user else None
        banned = room is not None and user.casefold() in {n.casefold() for n in room.session.banned}
        ok = await self._hasher.verify(ruser.password_hash if ruser else None, password)
        if not ok or banned or room is None or ruser is None:
            raise AuthError(BAD_LOGIN)
        if not self._alive(room) or room.user(user) is not ruser:  # changed while we checked
            raise AuthError(BAD_LOGIN)
        if not room.joined(ruser):
            member = Member(ruser.name, ip=ip, kind="room")
            self.core.connect(member)
            try:
                self.core.join(member, room.session.name)
            except Exception:
                self.core.disconnect(member, "could not join")
                raise
            # only the owner moderates a room (the core makes a first joiner op)
            if room.is_owner(ruser):
                room.session.ops.add(ruser.name)
            else:
                room.session.ops.discard(ruser.name)
            ruser.member = member
            ruser.floor = room.session.next_id - 1
            ruser.sesskey = secrets.token_urlsafe(32)
            await self._announce(room, f"User {ruser.name} joined the room")
            return room, ruser, ruser.floor
        # joined again (another client): a fresh key; the old one gets a farewell
        self._remember(room, ruser, "You have joined this room from another client")
        ruser.sesskey = secrets.token_urlsafe(32)
        return room, ruser, room.session.next_id - 1

    async def leave(self, room: Room, ruser: RoomUser) -> None:
        member, ruser.member, ruser.sesskey = ruser.member, None, None
        if member is not None:
            self.core.disconnect(member, "left")
        await self._announce(room, f"User {ruser.name} left the room")

    def close(self, room: Room, reason: str, *, closer: RoomUser | None = None) -> None:
        """Delete the room: its messages, keys and users. Each member but ``closer`` is
        told once, on its next poll: ``The room has been <reason>``."""
        self.rooms.pop(room.session.id, None)
        if room.session.id in self.core.sessions:
            self.core.close(room.session, reason)
        for ruser in room.users.values():
            if ruser is closer:
                ruser.sesskey = None
            self._bid_farewell(room, ruser, f"The room has been {reason}")
        room.session.history.clear()
        room.session.history_bytes = 0
        room.users.clear()

    async def send(self, room: Room, ruser: RoomUser, payload: str, to: str | None) -> ChatEvent:
        assert ruser.member is not None
        if to is not None:
            target = room.user(to)
            if target is None or not room.joined(target):
                raise InvalidInput(f"no user {to!r} in this room", field="to")
            to = target.name
        return self.core.say(ruser.member, room.session, payload=payload, to=to)

    async def invite(self, room: Room, ruser: RoomUser, name: str, password: str) -> None:
        if name.casefold() == "system":
            await self._announce(room, f"ALERT: User {ruser.name} tried to invite SYSTEM",
                                 "sysalert")  # fmt: skip
            raise PermissionDenied("SYSTEM cannot be invited")
        validate_nick(name)
        self._check_password(password)
        if room.user(name) is not None:
            raise InvalidInput(f"{name!r} is invited already", field="invite")
        if len(room.users) >= room.session.max_user_count:
            raise InvalidInput(f"a room has at most {room.session.max_user_count} users")
        if name.casefold() in {n.casefold() for n in room.session.banned}:
            if not room.is_owner(ruser):
                raise PermissionDenied(f"{name!r} is banned from this room")
            room.session.ops.add(ruser.name)
            self.core.unban(ruser.member, room.session, name)  # the owner lifts the ban
        password_hash = await self._hasher.hash(password)
        if not self._alive(room) or room.user(name) is not None:
            raise Conflict("the room changed while inviting; try again")
        room.users[name.casefold()] = RoomUser(name, password_hash)
        await self._announce(room, f"User {ruser.name} invited {name} to the room")

    async def kick(self, room: Room, ruser: RoomUser, name: str, *, ban: bool) -> None:
        if not room.is_owner(ruser):
            raise PermissionDenied("only the room's owner may kick or ban")
        target = room.user(name)
        if target is None:
            raise InvalidInput(f"no user {name!r} in this room", field="kick")
        if target is ruser:
            raise InvalidInput("the owner cannot kick or ban themselves", field="kick")
        verb = "banned" if ban else "kicked"
        member = target.member if room.joined(target) else None
        room.session.ops.add(ruser.name)  # the core checks its ops (a guest's lapse on leave)
        if ban:
            self.core.ban(ruser.member, room.session, target.name, target=member)
            del room.users[target.name.casefold()]
        elif member is not None:
            self.core.kick(ruser.member, room.session, target.name, target=member)
        self._bid_farewell(room, target, f"You have been {verb} from the room")
        await self._announce(room, f"User {ruser.name} {verb} {target.name} from the room",
                             "syswarn")  # fmt: skip

    # -- polls ------------------------------------------------------------------------

    def visible(self, room: Room, ruser: RoomUser, after: int) -> list[ChatEvent]:
        """What ``ruser`` may read after id ``after``, oldest first, at most a batch."""
        folded, floor = ruser.name.casefold(), max(after, ruser.floor)
        newer: list[ChatEvent] = []
        for event in reversed(room.session.history):  # only the new end: O(new messages)
            if event.id <= floor:
                break
            newer.append(event)
        out: list[ChatEvent] = []
        for event in reversed(newer):
            if event.kind not in ("message", "system"):
                continue
            if event.to is not None and event.to.casefold() != folded:
                continue
            if event.kind == "message" and event.payload is None and event.origin != "chat":
                continue
            out.append(event)
            if len(out) >= POLL_BATCH:
                break
        return out

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
            verb: SystemVerb = "sysinfo"
            if event.kind == "message":
                text = chat_line_text(event.user, event.text)
            else:
                text, verb = event.text, _VERB_OF.get(event.level, "sysinfo")
            payload = await self._encrypt(room.syskey, text, verb)
            event.frames["room"] = payload
            return payload

    async def wait_for_message(self, room: Room, ruser: RoomUser, after: int,
                               deadline: float) -> None:  # fmt: skip
        """Return once ``ruser`` has something to read, the room changed, or at
        ``deadline`` (trio time)."""
        while not self.visible(room, ruser, after) and self._alive(room) and room.joined(ruser):
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

    async def _announce(self, room: Room, text: str, verb: SystemVerb = "sysinfo") -> None:
        """Encrypt first (in the crypto worker), then store, so polls find it ready."""
        payload = await self._encrypt(room.syskey, text, verb)
        if self._alive(room):
            event = self.core.system(room.session, text, _LEVEL_OF[verb])
            event.frames["room"] = payload

    # -- housekeeping -----------------------------------------------------------------

    def __call__(self, now: float | None = None) -> None:
        """Purge old messages, warn idle rooms and close them, forget old farewells."""
        now = self._now() if now is None else now
        limit = self.core.limits.idle_time_limit
        for room in list(self.rooms.values()):
            session = room.session
            if session.id not in self.core.sessions:  # closed elsewhere (admin API)
                self.close(room, "closed by an administrator")
                continue
            if self.retention > 0:
                self.core.purge_history(session, now - self.retention)
            if limit <= 0:
                continue
            idle_since = session.last_activity
            if room.warned_at is not None and idle_since > room.warned_at:
                room.warned_at = None  # there was activity after the warning
            close_at = idle_since + limit
            warning = min(self.idle_warning, limit)
            if room.warned_at is None and now >= close_at - warning:
                # a late pass still gives the members the whole warning period
                room.close_after = max(close_at, now + warning)
                self.core.system(
                    session, f"This room is idle and will be closed in "
                    f"{_duration(room.close_after - now)} unless there is activity", "warn",
                )  # fmt: skip
                session.last_activity = idle_since  # the warning is no activity
                room.warned_at = idle_since
            elif room.warned_at is not None and now >= room.close_after:
                self.close(room, "closed after being idle")
        for key, farewell in list(self._farewells.items()):
            if farewell.expires <= now:
                del self._farewells[key]

    def _check_password(self, password: str) -> None:
        if not self.min_password <= len(password) <= MAX_PASSWORD:
            raise InvalidInput(
                f"a password is {self.min_password}-{MAX_PASSWORD} characters", field="pass"
            )


def _fold(name: str) -> str:
    try:
        return normalize_channel(name).casefold()
    except InvalidInput:
        return ""


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{round(seconds / 60)} minutes"
    return f"{max(1, round(seconds))} seconds"

"""The rooms of seed 004 as plain state: users, session keys, farewells, idle close.

A room is a chat core :class:`~.models.Session` with a :class:`Room` in
``session.room``: its owner, its users (accounts of this room only, passwords hashed
like account passwords), each joined user's session key, and the ``syskey`` its
SYSTEM messages are encrypted with. Messages live in the core's history, so a room
and a chat channel of the same name are one session, and a message sent in one
protocol reaches the members of the other:

* a room message is a core ``message`` event whose opaque ``payload`` the server
  never decrypts; chat members see it as the chat adapter renders it;
* what the server says (joins, leaves, invites, kicks, bans, the idle warning) is a
  core ``system`` event: chat members read its text, room members get the same text
  as a SYSTEM message ``{"user": "SYSTEM", "text", "verb"}`` encrypted with the
  ``syskey``;
* a chat line (``origin == "chat"``, plain text) reaches room members as a SYSTEM
  ``sysinfo`` message whose text is ``"<nick> (chat): <text>"``; any other system
  event (an administrator's message) as a SYSTEM message of its level.

A user sees the messages stored after it joined (``RoomUser.floor``), room-wide
(``touser`` ``"0"``) or addressed to it; not the direct messages it sent (the origin's
client prints its own copy). A removed user (kick, ban, room closed, removed by an
administrator, joined again elsewhere) gets one ``errmessage`` on its next poll
(:meth:`RoomTable.farewell`), then its key is dead. A room opens only under a name no
session uses yet: nobody can take over a chat channel by "creating" it.

This module awaits nothing: hashing a password and encrypting a SYSTEM message are
the service's (:mod:`.rooms`), which hands the results to the methods here. Each
action that the room hears about returns the :class:`Notice` to encrypt and store.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from ..errors import AuthError, Conflict, InvalidInput, PermissionDenied
from .core import ChatCore
from .models import (
    ChatEvent,
    Member,
    check_new_name,
    normalize_channel,
    room_identity,
    validate_nick,
)
from .room_models import (
    BAD_LOGIN,
    BAD_SESSION,
    FAREWELL_TTL,
    MAX_PASSWORD,
    MAX_USER_NAME,
    POLL_BATCH,
    Farewell,
    Joined,
    Login,
    Notice,
    Room,
    RoomUser,
    level_of,
    system_invite_alert,
)

__all__ = ["RoomTable"]


class RoomTable:
    """Every room of the daemon, by session id, and the rules of each action."""

    def __init__(
        self,
        core: ChatCore,
        now: Callable[[], float],
        *,
        retention: float,
        idle_warning: float,
        min_password: int = 8,
    ) -> None:
        self.core = core
        self._now = now
        self.retention = retention
        self.idle_warning = idle_warning
        self.min_password = min_password
        self.rooms: dict[str, Room] = {}  # by session id
        self._farewells: dict[str, Farewell] = {}  # by the dead session key

    # -- lookups ----------------------------------------------------------------------

    def find(self, name: str) -> Room | None:
        session = self.core.find(name)
        room = self.rooms.get(session.id) if session is not None else None
        return room if room is not None and session is not None and session.room is room else None

    def alive(self, room: Room) -> bool:
        """False once the room is closed, here or by an administrator through the core."""
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

    def check_password(self, password: str) -> None:
        if not self.min_password <= len(password) <= MAX_PASSWORD:
            raise InvalidInput(
                f"a password is {self.min_password}-{MAX_PASSWORD} characters", field="pass"
            )

    def _check_free(self, name: str) -> None:
        if self.core.find(name) is not None:
            raise Conflict(f"a room or channel named {name!r} exists already", field="roomName")

    def _check_room_limit(self) -> None:
        """Rooms have their own limit, so they never take the chat channels' places."""
        open_rooms = sum(1 for room in self.rooms.values() if self.alive(room))
        if open_rooms >= self.core.limits.room_count_limit:
            raise Conflict("the server's room limit is reached; try again later")

    def check_new_room(self, name: str, owner: str, password: str) -> str:
        """The room's name without ``#``, if a room may open under it for ``owner``."""
        name = check_new_name(normalize_channel(name))
        validate_nick(owner)
        self.check_password(password)
        self._check_free(name)
        self._check_room_limit()
        return name

    def open_room(self, name: str, owner: str, password_hash: str, syskey: str) -> Room:
        """Open a room checked by :meth:`check_new_room`; only its owner moderates it."""
        self._check_free(name)  # taken while the password was hashed
        self._check_room_limit()
        session = self.core.create(name, None, founder_name=owner, room=True)
        room = Room(session, owner, syskey)
        room.users[owner.casefold()] = RoomUser(owner, password_hash)
        session.room = room
        session.ops = {room_identity(owner)}
        self.rooms[session.id] = room
        return room

    def login(self, name: str, user: str, password: str) -> Login:
        if len(password) > MAX_PASSWORD or len(user) > MAX_USER_NAME:
            raise InvalidInput("user or password too long", field="userpass")
        room = self.find(name)
        ruser = room.user(user) if room is not None and user else None
        return Login(room, ruser, ruser.password_hash if ruser is not None else None)

    def admit(self, login: Login, password_ok: bool, ip: str) -> Joined:
        """Join ``login``'s user once its password checked out; a wrong password, an
        unknown room or user and a ban give the same AuthError."""
        room, ruser = login.room, login.user
        if not password_ok or room is None or ruser is None or room.banned(ruser.name):
            raise AuthError(BAD_LOGIN)
        if not self.alive(room) or room.user(ruser.name) is not ruser:  # changed meanwhile
            raise AuthError(BAD_LOGIN)
        if room.joined(ruser):
            # joined again (another client): a fresh key; the old one gets a farewell
            self._remember(room, ruser, "You have joined this room from another client")
            ruser.sesskey = secrets.token_urlsafe(32)
            return Joined(room, ruser, room.session.next_id - 1, None)
        member = Member(ruser.name, ip=ip, kind="room")
        self.core.connect(member)
        try:
            self.core.join(member, room.session.name)
        except Exception:
            self.core.disconnect(member, "could not join")
            raise
        # only the owner moderates a room (the core makes a first joiner op)
        if room.is_owner(ruser):
            room.session.ops.add(room_identity(ruser.name))
        else:
            room.session.ops.discard(room_identity(ruser.name))
        ruser.member = member
        ruser.floor = room.session.next_id - 1
        ruser.sesskey = secrets.token_urlsafe(32)
        return Joined(room, ruser, ruser.floor, Notice(f"User {ruser.name} joined the room"))

    def depart(self, room: Room, ruser: RoomUser) -> Notice:
        """``ruser`` leaves: its key is dead at once (no farewell), its invitation stays."""
        member, ruser.member, ruser.sesskey = ruser.member, None, None
        if member is not None:
            self.core.disconnect(member, "left")
        return Notice(f"User {ruser.name} left the room")

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

    def post(self, room: Room, ruser: RoomUser, payload: str, to: str | None) -> ChatEvent:
        """Store an opaque message for the room, or for ``to``, who must be in it."""
        assert ruser.member is not None
        if to is not None:
            target = room.user(to)
            if target is None or not room.joined(target):
                raise InvalidInput(f"no user {to!r} in this room", field="to")
            to = target.name
        return self.core.say(ruser.member, room.session, payload=payload, to=to)

    def prepare_invite(self, room: Room, ruser: RoomUser, name: str, password: str) -> None:
        """Refuse an invitation that cannot be: a bad name or password, a name invited
        already, a full room, a banned name (unless the owner invites it: that lifts
        the ban)."""
        if system_invite_alert(ruser.name, name) is not None:
            raise PermissionDenied("SYSTEM cannot be invited")
        validate_nick(name)
        self.check_password(password)
        if room.user(name) is not None:
            raise InvalidInput(f"{name!r} is invited already", field="invite")
        if len(room.users) >= room.session.max_user_count:
            raise InvalidInput(f"a room has at most {room.session.max_user_count} users")
        if room.banned(name):
            if not room.is_owner(ruser):
                raise PermissionDenied(f"{name!r} is banned from this room")
            room.session.ops.add(room_identity(ruser.name))
            self.core.unban(ruser.member, room.session, name)

    def add_invitee(self, room: Room, ruser: RoomUser, name: str, password_hash: str) -> Notice:
        """Add the user :meth:`prepare_invite` accepted, with its hashed password."""
        if not self.alive(room) or room.user(name) is not None:
            raise Conflict("the room changed while inviting; try again")
        room.users[name.casefold()] = RoomUser(name, password_hash)
        return Notice(f"User {ruser.name} invited {name} to the room")

    def expel(self, room: Room, ruser: RoomUser, name: str, *, ban: bool) -> Notice:
        """The owner kicks ``name`` (still invited: it may join again) or bans it (its
        invitation is gone and the name is refused until the owner invites it again)."""
        if not room.is_owner(ruser):
            raise PermissionDenied("only the room's owner may kick or ban")
        target = room.user(name)
        if target is None:
            raise InvalidInput(f"no user {name!r} in this room", field="kick")
        if target is ruser:
            raise InvalidInput("the owner cannot kick or ban themselves", field="kick")
        verb = "banned" if ban else "kicked"
        member = target.member if room.joined(target) else None
        room.session.ops.add(room_identity(ruser.name))  # the core checks its ops
        if ban:
            self.core.ban(ruser.member, room.session, target.name, target=member)
            del room.users[target.name.casefold()]
        elif member is not None:
            self.core.kick(ruser.member, room.session, target.name, target=member)
        self._bid_farewell(room, target, f"You have been {verb} from the room")
        return Notice(f"User {ruser.name} {verb} {target.name} from the room", "syswarn")

    def record_notice(self, room: Room, notice: Notice, payload: str) -> None:
        """Store a SYSTEM message with its encrypted ``payload``, unless the room closed."""
        if self.alive(room):
            event = self.core.system(room.session, notice.text, level_of(notice.verb))
            event.frames["room"] = payload

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

    # -- housekeeping -----------------------------------------------------------------

    def housekeeping(self, now: float | None = None) -> None:
        """One pass: purge messages older than the retention (0 keeps them), warn a
        room idle for ``idle_time_limit`` minus the warning and close it once the
        warning's time ran out without activity (never a room with ``idle_override``),
        forget farewells nobody collected."""
        now = self._now() if now is None else now
        limit = self.core.limits.idle_time_limit
        for room in list(self.rooms.values()):
            session = room.session
            if session.id not in self.core.sessions:  # closed elsewhere (admin API)
                self.close(room, "closed by an administrator")
                continue
            if self.retention > 0:
                self.core.purge_history(session, now - self.retention)
            if limit <= 0 or session.idle_override:
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


def _fold(name: str) -> str:
    try:
        return normalize_channel(name).casefold()
    except InvalidInput:
        return ""


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{round(seconds / 60)} minutes"
    return f"{max(1, round(seconds))} seconds"

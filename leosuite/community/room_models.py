"""The rooms' data: a room, its users, and the records the room table hands out (no
behaviour beyond lookups; :mod:`.room_state` holds the rules)."""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, NamedTuple

from .models import SYSTEM, ChatEvent, Level, Member, Session

if TYPE_CHECKING:
    from .crypto import PayloadVerb, SystemVerb

__all__ = [
    "BAD_LOGIN",
    "BAD_SESSION",
    "FAREWELL_TTL",
    "MAX_PASSWORD",
    "MAX_USER_NAME",
    "POLL_BATCH",
    "Farewell",
    "Joined",
    "Login",
    "Notice",
    "Room",
    "RoomUser",
    "bridged_text",
    "bridged_user",
    "level_of",
    "system_invite_alert",
    "system_notice",
]

#: At most this many messages per ``pollMsg`` answer (the client asks again from the last).
POLL_BATCH = 100
#: How long a removed user's farewell waits for its poll (the origin keeps it 300 s).
FAREWELL_TTL = 300.0
MAX_PASSWORD = 1024
MAX_USER_NAME = 64
#: A wrong room, user or password, or a ban, all get this one answer: no hint which.
BAD_LOGIN = "wrong room, user or password"
BAD_SESSION = "invalid or expired session key for this user and room"

_VERB_OF: dict[Level, SystemVerb] = {"info": "sysinfo", "warn": "syswarn", "alert": "sysalert"}
_LEVEL_OF: dict[str, Level] = {v: k for k, v in _VERB_OF.items()}


def bridged_user(nick: str) -> str:
    """Whom a room reads a chat line from: the nick marked as the chat's (a room user's
    name has no space, so no room user and not SYSTEM can read like it)."""
    return f"{nick} (chat)"


def bridged_text(text: str) -> str:
    """A chat line as a room shows it: one line, every control, format or line separator
    character (``\\n`` among them) replaced by a space, so no part of it can pass for a
    line of its own, let alone one of SYSTEM's."""
    return " ".join(
        "".join(" " if unicodedata.category(c) in _BREAKING else c for c in text).split()
    )


_BREAKING = frozenset({"Cc", "Cf", "Zl", "Zp"})


def level_of(verb: PayloadVerb) -> Level:
    """The chat core's level for a SYSTEM message's verb (``syswarn`` -> ``warn``)."""
    return _LEVEL_OF.get(verb, "info")


class Notice(NamedTuple):
    """A message the server writes into a room: its text, its verb and (SYSTEM, or a
    chat member's :func:`bridged_user`) whom it is from."""

    text: str
    verb: PayloadVerb = "sysinfo"
    user: str = SYSTEM


def system_notice(event: ChatEvent) -> Notice:
    """What a room member reads for an event without a room payload: a chat line as
    :func:`bridged_text` from :func:`bridged_user` with the verb ``say``, never as SYSTEM;
    anything else (an administrator's message, a warning) as SYSTEM at its level."""
    if event.kind == "message":
        return Notice(bridged_text(event.text), "say", bridged_user(event.user))
    return Notice(event.text, _VERB_OF.get(event.level, "sysinfo"))


def system_invite_alert(inviter: str, name: str) -> Notice | None:
    """Nobody may invite the name SYSTEM: the room gets this alert, the inviter a 403."""
    if name.casefold() != "system":
        return None
    return Notice(f"ALERT: User {inviter} tried to invite SYSTEM", "sysalert")


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

    def banned(self, name: str) -> bool:
        folded = name.casefold()
        return any(n.casefold() == folded for n in self.session.banned)


class Farewell(NamedTuple):
    room: str
    user: str
    text: str
    expires: float


class Login(NamedTuple):
    """Who a ``joinRoom`` names; the password is checked against ``stored_hash``
    (``None`` when there is no such room or user, checked at the same cost)."""

    room: Room | None
    user: RoomUser | None
    stored_hash: str | None


class Joined(NamedTuple):
    room: Room
    user: RoomUser
    #: The id of the newest message before the join (the client polls from there).
    last: int
    notice: Notice | None

"""The chat core's data: limits, sessions, members, events (no behaviour beyond
bookkeeping; :mod:`leosuite.community.core` holds the rules)."""

from __future__ import annotations

import itertools
import string
import uuid
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import msgspec

from ..errors import InvalidInput
from ..settings import CommunitySettings
from .nicks import has_invisible, look_alike

if TYPE_CHECKING:
    from .invites import Invite

__all__ = [
    "NAME_FORBIDDEN",
    "RESERVED_NICK",
    "SYSTEM",
    "AuditRecord",
    "ChatEvent",
    "ChatLimits",
    "Member",
    "Session",
    "check_new_name",
    "identity",
    "normalize_channel",
    "room_identity",
    "validate_nick",
]

#: The name the server speaks under; no member may take it or look like it.
SYSTEM = "SYSTEM"


EventKind = Literal["join", "leave", "message", "system", "closed", "op", "deop", "mute", "unmute"]
Origin = Literal["chat", "room", "system"]
Level = Literal["info", "warn", "alert"]


#: Server-wide community limits: the ``[community]`` settings themselves (one
#: definition, so a default cannot differ between the file and the core); the admin API
#: changes them at run time with :meth:`ChatCore.update_limits`.
ChatLimits = CommunitySettings


class AuditRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What the core asks the audit log to record (topics as seed 002 lists them)."""

    topic: str
    message: str
    session: str = ""
    user_id: int | None = None
    ip: str = ""
    name: str = ""
    level: str = "info"


#: Bytes a stored event takes beyond its strings (the event, its frame cache, the
#: strings' headers), as measured with tracemalloc on CPython 3.11.
EVENT_OVERHEAD = 704


class ChatEvent:
    """One thing that happened in a session. ``frames`` caches each protocol's encoding
    so a message is encoded once for all members, not once per member. A direct message
    records the :func:`identity` of its sender and recipient (``sender_id``, ``to_id``):
    only those identities read it again, never whoever takes one of the names later."""

    __slots__ = (
        "channel",
        "frames",
        "id",
        "kind",
        "level",
        "origin",
        "payload",
        "reason",
        "sender_id",
        "session",
        "text",
        "time",
        "to",
        "to_id",
        "user",
    )

    def __init__(
        self,
        kind: EventKind,
        session: Session,
        user: str,
        time: float,
        *,
        text: str = "",
        origin: Origin = "system",
        payload: str | None = None,
        to: str | None = None,
        level: Level = "info",
        reason: str = "",
        id: int = 0,
        sender_id: str = "",
        to_id: str = "",
    ) -> None:
        self.kind: EventKind = kind
        self.session = session.id
        self.channel = session.name
        self.user = user
        self.time = time
        self.text = text
        self.origin: Origin = origin
        self.payload = payload
        self.to = to
        self.level: Level = level
        self.reason = reason
        self.id = id
        self.sender_id = sender_id
        self.to_id = to_id
        self.frames: dict[str, object] = {}

    def addressed_to(self, member: Member) -> bool:
        """Whether ``member`` may read this event again: anything but a direct message,
        or a direct message it sent or received (by identity)."""
        return self.to is None or identity(member) in (self.sender_id, self.to_id)

    @property
    def size(self) -> int:
        """The memory this event takes in a history: its text or payload three times
        (itself and the two protocol frames cached on it) and the objects around them,
        so a session's size limit bounds the daemon's memory, not only the text."""
        return 3 * (len(self.text) + len(self.payload or "")) + len(self.user) + EVENT_OVERHEAD


class Member:
    """A participant: a chat connection (``kind="chat"``) or a room user (``"room"``)."""

    _ids = itertools.count(1)

    def __init__(
        self,
        name: str,
        *,
        ip: str = "",
        account_id: int | None = None,
        mod: bool = False,
        kind: Literal["chat", "room"] = "chat",
        deliver: Callable[[ChatEvent], bool] = lambda _event: True,
        disconnect: Callable[[str], None] = lambda _reason: None,
    ) -> None:
        self.id = next(Member._ids)
        self.name = name
        self.ip = ip
        self.account_id = account_id
        self.mod = mod
        self.kind = kind
        self.deliver = deliver
        self.disconnect = disconnect
        self.sessions: dict[str, Session] = {}
        #: Disconnected from the core: it may join nothing again.
        self.gone = False

    @property
    def auth(self) -> bool:
        return self.account_id is not None


class Session:
    def __init__(self, name: str, founder: str, now: float, *, max_users: int) -> None:
        self.id = str(uuid.uuid4())
        self.name = name
        self.alias = name
        self.title = ""
        self.founder = founder
        #: The address (an IPv6 /64 as one) a chat channel was opened from; "" else.
        self.founder_address = ""
        self.password_hash: str | None = None
        self.opword_hash: str | None = None
        self.closed = False
        #: Guests (members without an account) may not join; see :mod:`.invites`.
        self.auth_only = False
        #: Never closed for being idle.
        self.idle_override = False
        self.persistent = False
        self.nsfm = False
        self.max_user_count = max_users
        self.preserve_chat = True
        self.start_time = now
        self.last_activity = now
        self.members: dict[int, Member] = {}
        #: Operators and muted members by :func:`identity`; banned names, any case.
        self.ops: set[str] = set()
        self.muted: set[str] = set()
        self.banned: set[str] = set()
        #: Trusted members by identity, and invite codes by secret (:mod:`.invites`).
        self.trusted: set[str] = set()
        self.invites: dict[str, Invite] = {}
        self.history: deque[ChatEvent] = deque()
        self.history_bytes = 0
        self.next_id = 1
        #: Set by the rooms adapter when this session is also a room (seed 004).
        self.room: object | None = None
        #: Called (no arguments) whenever a message is stored: wakes long polls.
        self.on_message: list[Callable[[], None]] = []
        #: Called with every message and SYSTEM line as it is stored, kept or not.
        self.watchers: list[Callable[[ChatEvent], None]] = []

    @property
    def size(self) -> int:
        return self.history_bytes

    def member_named(self, name: str) -> Member | None:
        folded = name.casefold()
        return next((m for m in self.members.values() if m.name.casefold() == folded), None)

    def names(self) -> list[str]:
        return sorted(m.name for m in self.members.values())

    def is_op(self, member: Member) -> bool:
        return identity(member) in self.ops

    def is_muted(self, member: Member) -> bool:
        return identity(member) in self.muted


def identity(member: Member) -> str:
    """Who a member is, for operator and mute rights: its account, its room user, or (a
    guest) this one connection; never a bare name, which anyone may connect under."""
    if member.account_id is not None:
        return f"account:{member.account_id}"
    if member.kind == "room":
        return room_identity(member.name)
    return f"guest:{member.id}"


def room_identity(name: str) -> str:
    """The identity of a room's user (unique in its room, whatever the letter case)."""
    return f"room:{name.casefold()}"


_NICK_FORBIDDEN = set(" /#:,!@?*\\\"'<>&")
#: The answer to a nick that looks like SYSTEM or like an account's name: one answer,
#: whichever it is, so that it does not tell which accounts exist.
RESERVED_NICK = "the nick {nick!r} is reserved: choose another, or log in with its account's token"


def validate_nick(nick: str) -> str:
    """1-32 visible characters, no spaces or ``/ # : , ! @ ? *`` and the like, and
    nothing that looks like ``SYSTEM``."""
    if not 1 <= len(nick) <= 32:
        raise InvalidInput("a nick is 1-32 characters", field="nick")
    if any(c in _NICK_FORBIDDEN or not c.isprintable() for c in nick) or has_invisible(nick):
        raise InvalidInput(
            "a nick has no spaces, control or invisible characters or "
            "/ # : , ! @ ? * \\ \" ' < > &",
            field="nick",
        )
    if look_alike(nick, SYSTEM):
        raise InvalidInput(RESERVED_NICK.format(nick=nick), field="nick")
    return nick


def normalize_channel(name: str) -> str:
    """Strip leading ``#`` (seed 003: ``django`` and ``#django`` are the same channel)."""
    stripped = name.lstrip("#")
    if not 1 <= len(stripped) <= 64:
        raise InvalidInput("a channel or room name is 1-64 characters", field="channel")
    if any(not c.isprintable() or c.isspace() for c in stripped) or has_invisible(stripped):
        raise InvalidInput(
            "a channel or room name has no spaces, control or invisible characters",
            field="channel",
        )
    return stripped


#: ASCII characters a new session's name may not hold: the origin chat client puts
#: names unescaped into CSS selectors and HTML (``#name``, ``[aria-controls=name]``,
#: ``id="name"``) and the admin tools into URL paths, where these break its lookups.
NAME_FORBIDDEN = frozenset(string.punctuation) - {"_", "-"}


def check_new_name(name: str) -> str:
    """``name`` (already normalized) if a new channel or room may take it: among ASCII
    characters only letters, digits, ``_`` and ``-``."""
    bad = sorted({c for c in name if c in NAME_FORBIDDEN})
    if bad:
        raise InvalidInput(
            f"a new channel or room name may not contain {' '.join(bad)} "
            "(of ASCII punctuation only '_' and '-' are allowed)",
            field="channel",
        )
    return name

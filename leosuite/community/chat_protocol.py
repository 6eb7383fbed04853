"""The wire format of the WebSocket chat (seed 003), without I/O.

Client frames are JSON objects with an integer ``type``; :func:`decode_frame` turns
one into a typed Struct or raises :class:`ChatProtocolError` saying what is wrong.
Server frames are built here too: every one carries an integer ``type`` and a float
``time`` (unix seconds; the origin's client reads both from every frame), and channel
names never carry ``#``.

Core events become frames with :func:`event_frame`; the encoding is cached on the
event (``event.frames``) so one message is encoded once for all its members.

===========  =====================================================================
event        frame
===========  =====================================================================
join         ``{"type": 4, "channel", "user", "time"}`` (the joiner gets it too)
leave        ``{"type": 5, "channel", "user", "time"[, "reason"]}`` (the leaver too)
message      ``{"type": 0, "dest", "message", "user", "time"[, "to"]}``; a room
             message (opaque encrypted ``payload``, no text) reads
             ``"message": "[encrypted room message]"`` with ``"encrypted": payload``
system       ``{"type": 0, "dest", "user": "SYSTEM", "message", "level", "time"}``
op/deop/...  a SYSTEM type 0 notice with ``"notice": "op"`` and ``"target"``
closed       ``{"type": 5, "channel", "user": <the member>, "reason", "closed": true}``
===========  =====================================================================
"""

from __future__ import annotations

from typing import Any

import msgspec

from .models import ChatEvent

__all__ = [
    "COMMANDS",
    "ENCRYPTED_PLACEHOLDER",
    "ChatProtocolError",
    "Join",
    "Leave",
    "ListUsers",
    "LoginNotice",
    "Logout",
    "Register",
    "Request",
    "Say",
    "closed_frame",
    "decode_frame",
    "encode",
    "error_frame",
    "event_frame",
    "parse_command",
    "type_of",
]

ERROR, MESSAGE, REGISTER, LOGIN, LOGOUT, JOIN, LEAVE, USERS = -1, 0, 1, 2, 3, 4, 5, 6

#: What a chat member sees instead of a room message's ciphertext (the server never
#: decrypts room payloads); the payload itself is in ``encrypted``.
ENCRYPTED_PLACEHOLDER = "[encrypted room message]"

#: The moderation commands (a type 0 message whose text starts with ``/``, acting on
#: the channel in ``dest``), with their help text.
COMMANDS: dict[str, str] = {
    "kick": "/kick nick [reason]: remove nick from the channel",
    "ban": "/ban nick [reason]: remove nick and refuse its joins",
    "unban": "/unban nick: lift a ban",
    "mute": "/mute nick: nick can no longer send to the channel",
    "unmute": "/unmute nick: lift a mute",
    "op": "/op nick: make nick an operator of the channel",
    "deop": "/deop nick: take operator rights away",
    "help": "/help: this list",
}


class ChatProtocolError(Exception):
    """A frame that cannot be handled; ``request`` is its type when one was readable."""

    def __init__(self, message: str, request: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request


class Say(msgspec.Struct, kw_only=True):
    """Type 0: ``dest`` is a channel (``#`` optional); ``to`` makes it a direct message
    to one member of that channel."""

    dest: str
    message: str
    to: str | None = None


class Register(msgspec.Struct, kw_only=True):
    """Type 1: make the connected nick an account (``user``, if given, must be it)."""

    password: str
    user: str | None = None


class LoginNotice(msgspec.Struct, kw_only=True):
    """Type 2 from a client: accepted and ignored (the seed: "doesn't have to send")."""


class Logout(msgspec.Struct, kw_only=True):
    """Type 3."""


class Join(msgspec.Struct, kw_only=True):
    """Type 4; ``password`` for a password-protected session."""

    channel: str
    password: str | None = None


class Leave(msgspec.Struct, kw_only=True):
    """Type 5."""

    channel: str


class ListUsers(msgspec.Struct, kw_only=True):
    """Type 6: every connected nick, or the members of ``channel``."""

    channel: str | None = None


Request = Say | Register | LoginNotice | Logout | Join | Leave | ListUsers

_KINDS: dict[int, type[Request]] = {
    MESSAGE: Say,
    REGISTER: Register,
    LOGIN: LoginNotice,
    LOGOUT: Logout,
    JOIN: Join,
    LEAVE: Leave,
    USERS: ListUsers,
}
_TYPE_OF = {cls: kind for kind, cls in _KINDS.items()}


def type_of(request: Request) -> int:
    return _TYPE_OF[type(request)]


def decode_frame(message: str | bytes) -> Request:
    """The typed request in one text (or binary, UTF-8) frame."""
    try:
        raw = msgspec.json.decode(message)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise ChatProtocolError("not a JSON message") from None
    if not isinstance(raw, dict):
        raise ChatProtocolError("a message is a JSON object with an integer 'type'")
    kind = raw.get("type")
    if kind is None:
        raise ChatProtocolError("the message has no 'type'")
    if type(kind) is not int:
        raise ChatProtocolError("'type' must be an integer")
    cls = _KINDS.get(kind)
    if cls is None:
        raise ChatProtocolError(f"unknown message type {kind}", kind)
    try:
        return msgspec.convert(raw, cls, str_keys=True)
    except (msgspec.ValidationError, RecursionError) as exc:
        raise ChatProtocolError(f"type {kind}: {exc}", kind) from None


def parse_command(text: str) -> tuple[str, list[str]] | None:
    """``"/kick bob being rude"`` -> ``("kick", ["bob", "being rude"])``; None for a plain
    line (``//text`` is the plain line ``/text``)."""
    if not text.startswith("/") or text.startswith("//"):
        return None
    name, _, rest = text[1:].partition(" ")
    target, _, reason = rest.strip().partition(" ")
    args = [a for a in (target, reason.strip()) if a]
    return name.lower(), args


def encode(kind: int, time: float, **fields: Any) -> str:
    return msgspec.json.encode({"type": kind, **fields, "time": float(time)}).decode()


def error_frame(message: str, time: float, request: int | None = None) -> str:
    """Type -1; ``request`` is the type of the message that failed, when known."""
    if request is None:
        return encode(ERROR, time, message=message)
    return encode(ERROR, time, message=message, request=request)


_NOTICES = {
    "op": "{user} is now an operator (by {by})",
    "deop": "{user} is no longer an operator (by {by})",
    "mute": "{user} is muted (by {by})",
    "unmute": "{user} is no longer muted (by {by})",
}


def _render(event: ChatEvent, history: bool) -> str | None:
    extra: dict[str, Any] = {"history": True} if history else {}
    if event.to is not None:
        extra["to"] = event.to
    if event.kind == "join":
        return encode(JOIN, event.time, channel=event.channel, user=event.user)
    if event.kind == "leave":
        if event.reason and event.reason != "left":
            extra["reason"] = event.reason
        return encode(LEAVE, event.time, channel=event.channel, user=event.user, **extra)
    if event.kind == "message":
        if event.payload is not None and not event.text:
            extra["encrypted"] = event.payload
        text = event.text or (ENCRYPTED_PLACEHOLDER if event.payload is not None else "")
        return encode(
            MESSAGE, event.time, dest=event.channel, message=text, user=event.user, **extra
        )
    if event.kind == "system":
        return encode(
            MESSAGE, event.time, dest=event.channel, user="SYSTEM", message=event.text,
            level=event.level, **extra,
        )  # fmt: skip
    if event.kind in _NOTICES:
        text = _NOTICES[event.kind].format(user=event.user, by=event.reason or "SYSTEM")
        return encode(
            MESSAGE, event.time, dest=event.channel, user="SYSTEM", message=text, level="info",
            notice=event.kind, target=event.user,
        )  # fmt: skip
    return None  # "closed" is per member: closed_frame


def event_frame(event: ChatEvent, *, history: bool = False) -> str | None:
    """The chat frame of a core event, encoded once and cached on the event."""
    key = "chat-history" if history else "chat"
    cached = event.frames.get(key)
    if isinstance(cached, str):
        return cached
    frame = _render(event, history)
    if frame is not None:
        event.frames[key] = frame
    return frame


def closed_frame(event: ChatEvent, nick: str) -> str:
    """A closed session: each member is told it left (so clients drop the channel)."""
    return encode(
        LEAVE, event.time, channel=event.channel, user=nick, reason=event.reason or "closed",
        closed=True,
    )  # fmt: skip

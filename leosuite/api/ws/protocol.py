"""The WebSocket API's wire protocol (seed 000), with no I/O: the envelope, status
codes, request parsing, typed content, the mapping from the error tree, close codes.

Requests are ``{"type", "uuid", "content"}``; answers ``{"uuid", "type",
"status_code", "status_string", "content"}`` with the request's uuid and type (``""``
when a frame had none or not a string). Pushes (answers to nothing) carry a fresh
server uuid. Errors of the one error tree map to status codes here and only here.
"""

from __future__ import annotations

import enum
import re
import secrets
from typing import Any, TypeVar

import msgspec

from ...errors import (
    AuthError,
    Conflict,
    DiskFull,
    InvalidInput,
    LeosuiteError,
    NotFound,
    RateLimited,
    StoreError,
    TooLarge,
)
from ...errors import is_internal as is_internal

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_NORMAL",
    "CLOSE_POLICY",
    "CLOSE_TOO_BIG",
    "ERROR_STATUS",
    "Envelope",
    "Malformed",
    "StatusCode",
    "WsError",
    "decode_content",
    "envelope",
    "error_of",
    "is_internal",
    "model_error",
    "parse_frame",
    "push",
]

#: WebSocket close codes (RFC 6455): a normal end (logout).
CLOSE_NORMAL = 1000
#: The daemon goes away or the connection is closed from our side without blame.
CLOSE_GOING_AWAY = 1001
#: The peer broke a rule: does not read, no pong, refused login, banned.
CLOSE_POLICY = 1008
#: A message over ``ws.max_message_bytes``.
CLOSE_TOO_BIG = 1009

T = TypeVar("T", bound=msgspec.Struct)


class StatusCode(enum.IntEnum):
    SUCCESS = 0
    GENERAL_FAILURE = 1
    PERMISSION_DENIED = 2
    RATE_LIMITED = 3
    MALFORMED = 4
    INVALID_CALL = 5
    TIMEOUT = 6
    SESSION_ABORTED = 7
    ENTITY_NOT_FOUND = 8
    DATABASE_ERROR = 9
    UNKNOWN = 10
    MODEL_EXCEPTION = 11
    INVALID_ARGUMENT = 12


class WsError(Exception):
    """An answer that is not SUCCESS: its status, ``status_string`` and content."""

    def __init__(self, status: StatusCode, message: str, content: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.content = content


class Envelope(msgspec.Struct):
    """Every message the daemon sends on ``/``, in this field order."""

    uuid: str
    type: str
    status_code: int
    status_string: str
    content: Any


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def envelope(uuid: str, kind: str, status: StatusCode, content: Any, message: str = "") -> str:
    """One answer as JSON text; ``status_string`` is ``message`` or the status's name."""
    return _encode(Envelope(uuid, kind, int(status), message or status.name, content)).decode()


def push(kind: str, content: Any) -> str:
    """A server-initiated message: a fresh server uuid."""
    return envelope(secrets.token_hex(16), kind, StatusCode.SUCCESS, content)


class Malformed(Exception):
    """A frame that is not a valid request; carries what could be read of it."""

    def __init__(self, reason: str, uuid: object = None, kind: object = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.uuid = uuid if isinstance(uuid, str) else ""
        self.kind = kind if isinstance(kind, str) else ""


_JSON_TYPES = {
    type(None): "null",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    list: "an array",
    dict: "an object",
}


def parse_frame(message: str | bytes) -> tuple[str, str, Any]:
    """``(uuid, type, content)`` of a request frame, or :class:`Malformed` naming each
    missing or mistyped field."""
    if isinstance(message, bytes):
        raise Malformed("binary frames are not accepted; send JSON text frames")
    try:
        frame = _decode(message)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise Malformed("frame is not valid JSON") from None
    if not isinstance(frame, dict):
        raise Malformed("frame is not a JSON object")
    uuid, kind = frame.get("uuid"), frame.get("type")
    problems = []
    for name, value in (("uuid", uuid), ("type", kind)):
        if name not in frame:
            problems.append(f"'{name}' is missing")
        elif not isinstance(value, str):
            problems.append(f"'{name}' must be a string, not {_JSON_TYPES[type(value)]}")
    if "content" not in frame:
        problems.append("'content' is missing")
    if problems or not isinstance(uuid, str) or not isinstance(kind, str):
        raise Malformed(f"malformed request: {'; '.join(problems)}", uuid, kind)
    return uuid, kind, frame["content"]


def model_error(field: str | None, detail: str) -> WsError:
    """MODEL_EXCEPTION with a JSON pointer to the field under ``/content``."""
    pointer = "/content" + (f"/{field.replace('.', '/')}" if field else "")
    return WsError(
        StatusCode.MODEL_EXCEPTION,
        detail,
        {"errors": [{"detail": detail, "source": {"pointer": pointer}}]},
    )


#: msgspec's message for a number outside a ``Meta(ge=..., le=...)`` bound.
_OUT_OF_BOUNDS = re.compile(r"Expected `(int|float)` (<|<=|>|>=) -?[0-9.e+-]+")


def decode_content(content: Any, kind: type[T]) -> T:
    """Typed content; a number outside its field's bounds is INVALID_ARGUMENT naming the
    field, any other missing field or wrong type is MODEL_EXCEPTION naming it."""
    try:
        return msgspec.convert({} if content is None else content, kind, str_keys=True)
    except msgspec.ValidationError as exc:
        text = str(exc)
        message, _, where = text.partition(" - at `$")
        field = where.rstrip("`").lstrip(".") or None
        if field is not None and _OUT_OF_BOUNDS.fullmatch(message):
            bound = message.split("` ", 1)[1]
            raise WsError(
                StatusCode.INVALID_ARGUMENT, f"{field} must be {bound}", {"field": field}
            ) from None
        if "unknown field" in message or "missing required field" in message:
            # The field is named in the message; ``where`` is the object holding it.
            name = message.split("`")[1]
            field = f"{field}.{name}" if field else name
        raise model_error(field, f"{field}: {message}" if field else message) from None


#: Error class -> status code; the first class that matches decides (subclasses first).
#: Anything else is GENERAL_FAILURE, and internal errors never reach this table.
ERROR_STATUS: tuple[tuple[type[LeosuiteError], StatusCode], ...] = (
    (AuthError, StatusCode.PERMISSION_DENIED),
    (NotFound, StatusCode.ENTITY_NOT_FOUND),
    (InvalidInput, StatusCode.INVALID_ARGUMENT),
    (TooLarge, StatusCode.INVALID_ARGUMENT),
    (Conflict, StatusCode.GENERAL_FAILURE),
    (RateLimited, StatusCode.RATE_LIMITED),
)


def error_of(exc: BaseException, correlation: str = "") -> WsError:
    """The answer for an error: invalid arguments name their field; a full disk says
    "disk full: ..." as DATABASE_ERROR (the store's write failed) or UNKNOWN (a file's:
    the seed has no status of its own for it); an internal error (see
    :func:`is_internal`) says only "database error" (a store failure) or "internal
    error", with the correlation id of its log line."""
    if isinstance(exc, DiskFull):
        status = StatusCode.DATABASE_ERROR if exc.in_store else StatusCode.UNKNOWN
        return WsError(status, exc.message)
    if is_internal(exc):
        suffix = f" (correlation id {correlation})" if correlation else ""
        if isinstance(exc, StoreError):
            return WsError(StatusCode.DATABASE_ERROR, "database error" + suffix)
        return WsError(StatusCode.UNKNOWN, "internal error" + suffix)
    assert isinstance(exc, LeosuiteError)
    status = next(
        (code for cls, code in ERROR_STATUS if isinstance(exc, cls)), StatusCode.GENERAL_FAILURE
    )
    if status is StatusCode.INVALID_ARGUMENT:
        return WsError(status, exc.message, {"field": exc.field})
    return WsError(status, exc.message)

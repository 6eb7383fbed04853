"""The WebSocket API of seed 000 on ``/``: the envelope and the public calls.

Requests are ``{"type", "uuid", "content"}``; answers ``{"uuid", "type",
"status_code", "status_string", "content"}``. This module holds the envelope
and the version call; the authenticated calls arrive with the WebSocket API issue.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec
from trio_websocket import WebSocketRequest

from .. import __version__
from .context import ApiContext

__all__ = ["StatusCode", "envelope", "serve_api_connection"]


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


def envelope(uuid: str, kind: str, status: StatusCode, content: Any, message: str = "") -> bytes:
    return msgspec.json.encode(
        {
            "uuid": uuid,
            "type": kind,
            "status_code": int(status),
            "status_string": message or status.name,
            "content": content,
        }
    )


class Malformed(Exception):
    """A frame that is not a valid request; carries what could be read of it."""

    def __init__(self, reason: str, uuid: object = None, kind: object = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.uuid = uuid if isinstance(uuid, str) else ""
        self.kind = kind if isinstance(kind, str) else ""


def parse_frame(message: str | bytes) -> tuple[str, str, Any]:
    """``(uuid, type, content)`` of a request frame, or :class:`Malformed`."""
    try:
        frame = msgspec.json.decode(message)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise Malformed("frame is not valid JSON") from None
    if not isinstance(frame, dict):
        raise Malformed("frame is not a JSON object")
    uuid, kind = frame.get("uuid"), frame.get("type")
    if not isinstance(uuid, str) or not isinstance(kind, str) or "content" not in frame:
        raise Malformed("frame needs string 'uuid' and 'type' and a 'content'", uuid, kind)
    return uuid, kind, frame["content"]


async def serve_api_connection(ctx: ApiContext, request: WebSocketRequest, ip: str) -> None:
    ws = await request.accept()
    while True:
        message = await ws.get_message()
        try:
            uuid, kind, _content = parse_frame(message)
        except Malformed as exc:
            answer = envelope(exc.uuid, exc.kind, StatusCode.MALFORMED, None, exc.reason)
            await ws.send_message(answer.decode())
            continue
        if kind in ("get_leosac_version", "get_version"):
            short = ".".join(__version__.split(".")[:2])
            answer = envelope(
                uuid, kind, StatusCode.SUCCESS, {"version": __version__, "version_short": short}
            )
        else:
            answer = envelope(uuid, kind, StatusCode.INVALID_CALL, None, f"unknown call {kind!r}")
        await ws.send_message(answer.decode())

"""Console bytes as a JSON answer (``server_log``, ``console_output``): UTF-8 text when
the bytes are valid UTF-8, else base64, losslessly either way."""

from __future__ import annotations

import base64
from typing import Literal

import msgspec

from ..errors import InvalidInput
from .console_file import ConsoleChunk

__all__ = ["Encoding", "LogAnswer", "encode_console_data"]

Encoding = Literal["utf-8", "base64"]


class LogAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """The seed's ``server_log`` answer; ``data`` is text in ``encoding``."""

    oldReadIndex: int
    nextReadIndex: int
    readIndex: int
    data: str
    encoding: Encoding


def _utf8_boundary(data: bytes) -> int:
    """Length of ``data`` without a trailing incomplete UTF-8 sequence (at most 3 bytes)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data)
        if byte >= 0xC0:  # a lead byte: is its sequence complete?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if back >= need else len(data) - back
    return len(data)


def encode_console_data(chunk: ConsoleChunk, encoding: Encoding | None) -> LogAnswer:
    """Console bytes as JSON text, losslessly.

    By default (``encoding`` None) the bytes are sent as UTF-8 text when they are
    valid UTF-8 (a multi-byte character cut at the end is held back for the next
    read), else as base64 with ``"encoding": "base64"``. A client may always ask for
    base64.
    """
    data = chunk.data
    if encoding != "base64":
        keep = _utf8_boundary(data)
        head = data[:keep] if keep else data
        try:
            text: str | None = head.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            return LogAnswer(
                oldReadIndex=chunk.old_read_index,
                nextReadIndex=chunk.old_read_index + len(head),
                readIndex=chunk.read_index,
                data=text,
                encoding="utf-8",
            )
        if encoding == "utf-8":
            raise InvalidInput(
                "these console bytes are not valid UTF-8; ask for encoding base64", field="encoding"
            )
    return LogAnswer(
        oldReadIndex=chunk.old_read_index,
        nextReadIndex=chunk.next_read_index,
        readIndex=chunk.read_index,
        data=base64.b64encode(data).decode("ascii"),
        encoding="base64",
    )

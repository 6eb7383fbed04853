"""What the WebSocket client receives: the frame envelope, pushes, and the live
console of one server as a bounded stream of :data:`ConsoleEvent`.

A :class:`ConsoleStream` holds ``buffer`` events. The connection's reader hands it
every console push without waiting; while the stream is full, chunks are dropped and
the next delivered item is a :class:`ConsoleOverrun` naming the bytes skipped,
exactly as when the daemon itself skips ahead for a slow reader.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import msgspec
import trio

from ..errors import LeosuiteError

__all__ = [
    "CONSOLE_PUSHES",
    "ConsoleData",
    "ConsoleEvent",
    "ConsoleOverrun",
    "ConsoleStream",
    "Frame",
    "Push",
    "decode_frame",
]

#: The push types that belong to one server's console stream.
CONSOLE_PUSHES = frozenset({"console_output", "console_overrun", "console_closed"})


class Frame(msgspec.Struct):
    """One message from the daemon: an answer (its call's ``uuid``) or a push."""

    uuid: str
    type: str
    status_code: int = 0
    status_string: str = ""
    content: Any = None


decode_frame = msgspec.json.Decoder(Frame).decode


class Push(msgspec.Struct, frozen=True):
    """A server-initiated message."""

    type: str
    uuid: str
    content: Any


@dataclass(frozen=True, slots=True)
class ConsoleData:
    """Console bytes ``[read_index, next_read_index)`` of ``server``."""

    server: str
    read_index: int
    next_read_index: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ConsoleOverrun:
    """``skipped`` bytes were skipped (by the daemon or by this client); the stream
    goes on at ``read_index``."""

    server: str
    skipped: int
    read_index: int


ConsoleEvent = ConsoleData | ConsoleOverrun


def _console_item(frame: Frame) -> ConsoleEvent:
    content = frame.content
    if frame.type == "console_overrun":
        return ConsoleOverrun(content["server"], int(content["skipped"]), int(content["readIndex"]))
    text = content["data"]
    data = base64.b64decode(text) if content.get("encoding") == "base64" else text.encode()
    read_index = int(content["readIndex"])
    return ConsoleData(
        content["server"],
        read_index,
        int(content.get("nextReadIndex", read_index + len(data))),
        data,
    )


class ConsoleStream:
    """The live console of one server: an async iterator of :data:`ConsoleEvent`.

    It ends when the daemon pushes ``console_closed`` (the server was destroyed);
    it raises :class:`~leosuite.client.WsConnectionError` or
    :class:`~leosuite.errors.AuthError` when the connection or the session ends.
    ``read_index`` is the next byte index expected.
    """

    def __init__(self, server: str, read_index: int, buffer: int) -> None:
        self.server = server
        self.read_index = read_index
        self._send, self._receive = trio.open_memory_channel[ConsoleEvent](buffer)
        self._skipped = 0
        self._error: LeosuiteError | None = None
        self.closed = False

    def _deliver(self, frame: Frame) -> None:
        if frame.type == "console_closed":
            self.closed = True
            self._send.close()
            return
        item = _console_item(frame)
        if isinstance(item, ConsoleOverrun):  # the daemon skipped: merge with ours
            self._skipped += item.skipped
            if self._offer(ConsoleOverrun(self.server, self._skipped, item.read_index)):
                self._skipped = 0
            return
        if self._skipped:
            if not self._offer(ConsoleOverrun(self.server, self._skipped, item.read_index)):
                self._skipped += len(item.data)
                return
            self._skipped = 0
        if not self._offer(item):
            self._skipped += len(item.data)

    def _offer(self, item: ConsoleEvent) -> bool:
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        return True

    def _fail(self, error: LeosuiteError) -> None:
        if self._error is None:
            self._error = error
        self._send.close()

    async def receive(self) -> ConsoleEvent:
        """The next event; ``trio.EndOfChannel`` once the console was closed."""
        try:
            item = await self._receive.receive()
        except trio.EndOfChannel:
            if self._error is not None:
                raise type(self._error)(self._error.message) from None
            raise
        if isinstance(item, ConsoleData):
            self.read_index = item.next_read_index
        else:
            self.read_index = item.read_index
        return item

    def __aiter__(self) -> ConsoleStream:
        return self

    async def __anext__(self) -> ConsoleEvent:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

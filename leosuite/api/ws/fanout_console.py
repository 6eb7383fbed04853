"""Console pushes read, encoded and framed once for every subscriber at the same index.

A console flooded while N connections watch it costs one ``pread``, one JSON encoding
and one frame per chunk, not N: the chunk a subscriber at index ``i`` gets is the one
the first subscriber at ``i`` got, so subscribers that meet at an index go on together.
Chunks end at multiples of ``ws.console_batch_bytes`` (or where the console ends), so
subscribers that started at different indexes meet at the next multiple, and one that
lags too far skips ahead to a multiple (:func:`skip_to`), where the others are too. All of them
get the same push, uuid included (each uuid is still new to each connection). Bounded:
the newest :data:`PER_CONSOLE` pushes of each console, and all of them, with what each
entry costs beside its frame, at most twice :data:`KEPT_BATCHES` batches in size (a
quiet console's small pushes do not pile up until they reach a flood's bound), and for
:data:`KEPT_SECONDS` at most; the pushes of a closed console (its server destroyed) go
when the next console comes.

The frame is built from the JSON bytes as encoded (a header and the bytes: no text in
between); the text of a push is decoded from its frame only for a connection that
cannot take raw frames.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections import deque
from collections.abc import Callable

import msgspec

from ...supervision.console_answer import encode_console_data
from ...supervision.console_file import ConsoleFile
from .protocol import Envelope, StatusCode

__all__ = [
    "ENTRY_BYTES",
    "KEPT_BATCHES",
    "KEPT_SECONDS",
    "PER_CONSOLE",
    "PUSHES_ON_THE_WAY",
    "ConsoleChunks",
    "ConsolePush",
    "skip_to",
]

#: Console push frames kept for late subscribers: up to twice this many batches in size.
KEPT_BATCHES = 16
#: A subscription's console pushes queued at once (their frames are shared).
PUSHES_ON_THE_WAY = 4
#: The newest pushes kept of each console (a flood's lag bound is 16 batches by default).
PER_CONSOLE = 2 * KEPT_BATCHES
#: What an entry holds beside its frame: the push, its key, the key's numbers, the slots.
ENTRY_BYTES = 256
#: Seconds a push is kept for sharing: a flood's subscribers meet within its lag bound,
#: far sooner; a quiet console's pushes (a replay of its history to a subscriber that
#: just came) would otherwise stay and grow toward the bound for hours.
KEPT_SECONDS = 30.0


def skip_to(index: int, end: int, batch: int) -> int:
    """Where a subscriber at ``index`` that lags too far goes on: the multiple of
    ``batch`` one to two batches before ``end`` (a whole batch to read), never back."""
    return max(index, (end - batch) // batch * batch)


_encode = msgspec.json.Encoder().encode
_SUCCESS = int(StatusCode.SUCCESS)


def _header(size: int) -> bytes:
    """A server's text frame header for ``size`` payload bytes (as wsproto makes it)."""
    if size < 126:
        return bytes((0x81, size))
    if size < 65536:
        return bytes((0x81, 126)) + size.to_bytes(2, "big")
    return bytes((0x81, 127)) + size.to_bytes(8, "big")


class ConsolePush:
    """One ``console_output`` push: its frame, and where it starts and ends."""

    __slots__ = ("_start", "console", "frame", "made_at", "next_index", "old_read_index")

    def __init__(
        self,
        console: ConsoleFile,
        content: dict[str, object],
        old_read_index: int,
        next_index: int,
        made_at: float,
    ) -> None:
        body = _encode(
            Envelope(secrets.token_hex(16), "console_output", _SUCCESS, "SUCCESS", content)
        )
        header = _header(len(body))
        self.console = console
        self.frame = header + body
        self._start = len(header)
        self.old_read_index = old_read_index
        self.next_index = next_index
        self.made_at = made_at

    @property
    def payload(self) -> str:
        """The push as text (for a connection that cannot take raw frames)."""
        return self.frame[self._start :].decode()


class ConsoleChunks:
    """The newest console pushes, by console and index."""

    def __init__(self, batch: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.batch = batch
        self._clock = clock
        self._max_bytes = KEPT_BATCHES * 2 * batch
        self._bytes = 0
        self._pushes: dict[tuple[int, int], ConsolePush] = {}  # oldest first
        #: The indexes of each console's kept pushes, oldest first.
        self._indexes: dict[int, deque[int]] = {}
        #: Pushes built and pushes reused since the start.
        self.built = self.reused = 0

    def output(self, server: str, console: ConsoleFile, index: int) -> ConsolePush:
        """The push of ``console``'s bytes from ``index`` (read once; raises what
        :meth:`ConsoleFile.read` raises)."""
        key = (id(console), index)
        kept = self._pushes.get(key)
        if kept is not None and kept.console is console:
            self.reused += 1
            return kept
        chunk = console.read(index, self.batch - index % self.batch)
        answer = encode_console_data(chunk, None)
        content = {
            "server": server,
            "readIndex": answer.oldReadIndex,
            "nextReadIndex": answer.nextReadIndex,
            "data": answer.data,
            "encoding": answer.encoding,
        }
        now = self._clock()
        made = ConsolePush(console, content, chunk.old_read_index, answer.nextReadIndex, now)
        self.built += 1
        self._keep(key, made)
        return made

    def _keep(self, key: tuple[int, int], made: ConsolePush) -> None:
        size = _held(made)
        if size > self._max_bytes:
            return
        self._drop(key)
        console_id, index = key
        kept = self._indexes.get(console_id)
        if kept is None:
            self._forget_closed()
        if kept is not None and len(kept) >= PER_CONSOLE:
            self._drop((console_id, kept[0]))
        while self._pushes:  # oldest first: over the bound in bytes, or kept long enough
            oldest = next(iter(self._pushes))
            if (
                self._bytes + size <= self._max_bytes
                and made.made_at - self._pushes[oldest].made_at < KEPT_SECONDS
            ):
                break
            self._drop(oldest)
        self._pushes[key] = made
        self._bytes += size
        self._indexes.setdefault(console_id, deque()).append(index)

    def _forget_closed(self) -> None:
        """Drop the pushes of every console closed since (its server destroyed): each
        new console sweeps them, so a churn of servers does not fill the bound with
        pushes nobody can read, each holding its console."""
        for console_id, indexes in list(self._indexes.items()):
            if self._pushes[(console_id, indexes[0])].console.closed:
                for index in list(indexes):
                    self._drop((console_id, index))

    def _drop(self, key: tuple[int, int]) -> None:
        gone = self._pushes.pop(key, None)
        if gone is None:
            return
        self._bytes -= _held(gone)
        indexes = self._indexes[key[0]]
        indexes.remove(key[1])
        if not indexes:
            del self._indexes[key[0]]

    def __len__(self) -> int:
        return len(self._pushes)

    @property
    def held_bytes(self) -> int:
        """What the kept pushes hold, as counted against the bound."""
        return self._bytes


def _held(push: ConsolePush) -> int:
    return sys.getsizeof(push.frame) + ENTRY_BYTES

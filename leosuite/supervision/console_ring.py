"""The in-memory tail of a console byte stream (pure: no I/O, no trio).

The ring holds at least the last ``capacity`` bytes appended (less right after it is
created) and at most ``capacity`` plus one chunk. It is a deque of immutable chunks, so
appending a ``bytes`` object costs no copy at all; small appends are coalesced into one
``bytearray`` tail chunk so that a chatty server (one short line per append) does not
cost one Python object per line. An idle server holds no memory.
"""

from __future__ import annotations

from collections import deque

__all__ = ["ConsoleRing"]

#: Appends shorter than this are copied into a shared tail chunk ...
_SMALL = 16 * 1024
#: ... which is closed once it reaches this size.
_COALESCE = 64 * 1024


class ConsoleRing:
    """The last ``capacity`` bytes of a stream whose absolute offsets start at ``start``."""

    __slots__ = ("_capacity", "_chunks", "_end", "_starts", "_tail_open")

    def __init__(self, capacity: int, start: int = 0) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self._capacity = capacity
        self._chunks: deque[bytes | bytearray] = deque()
        self._starts: deque[int] = deque()  # absolute offset of each chunk's first byte
        self._end = start
        self._tail_open = False  # the last chunk is a bytearray still accepting small appends

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def start(self) -> int:
        """Absolute offset of the oldest byte held (``end`` when empty)."""
        return self._starts[0] if self._starts else self._end

    @property
    def end(self) -> int:
        """Absolute offset one past the newest byte."""
        return self._end

    @property
    def held(self) -> int:
        """Bytes held in memory."""
        return self._end - self.start

    def last_byte(self) -> int | None:
        """The newest byte, or None when the ring is empty."""
        return self._chunks[-1][-1] if self._chunks else None

    def append(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``; a ``bytes`` object is kept by reference (the caller must not
        rely on mutating it, which it cannot), anything else is copied."""
        view = memoryview(data)
        n = view.nbytes
        if n == 0:
            return
        cap = self._capacity
        start = self._end
        self._end = start + n
        if n >= cap:
            # Only the tail of this one chunk survives: copy just that.
            self._chunks.clear()
            self._starts.clear()
            self._tail_open = False
            if cap:
                self._chunks.append(bytes(view[n - cap :]))
                self._starts.append(self._end - cap)
            return
        chunks = self._chunks
        if n < _SMALL:
            if self._tail_open and len(chunks[-1]) + n <= _COALESCE:
                chunks[-1] += view  # in place: the tail is a bytearray
            else:
                chunks.append(bytearray(view))
                self._starts.append(start)
                self._tail_open = True
        else:
            chunks.append(data if type(data) is bytes else bytes(view))
            self._starts.append(start)
            self._tail_open = False
        # Drop whole chunks from the left while what remains still covers ``cap`` bytes.
        starts = self._starts
        end = self._end
        while len(starts) > 1 and end - starts[1] >= cap:
            chunks.popleft()
            starts.popleft()

    def read(self, offset: int, limit: int) -> bytes:
        """Up to ``limit`` bytes from ``offset``; ``start <= offset <= end`` is required."""
        if not self.start <= offset <= self._end:
            raise ValueError(f"offset {offset} outside the ring [{self.start}, {self._end}]")
        stop = min(self._end, offset + limit)
        if stop <= offset:
            return b""
        chunks = self._chunks
        starts = self._starts
        i = len(starts) - 1
        while starts[i] > offset:  # readers mostly tail the end: scan from the right
            i -= 1
        first = chunks[i]
        a = offset - starts[i]
        if stop - starts[i] <= len(first):  # the common case: one chunk
            b = stop - starts[i]
            if isinstance(first, bytearray):
                with memoryview(first) as view:  # one copy, and no view left pinning it
                    return bytes(view[a:b])
            return first if a == 0 and b == len(first) else first[a:b]
        views: list[memoryview] = []
        try:
            pos = offset
            while pos < stop:
                chunk = chunks[i]
                cs = starts[i]
                b = min(len(chunk), stop - cs)
                views.append(memoryview(chunk)[pos - cs : b])
                pos = cs + b
                i += 1
            return b"".join(views)
        finally:
            for v in views:  # a live view would pin the bytearray tail's size
                v.release()

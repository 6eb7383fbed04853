"""Console test data: bytes that show where they belong, a reader of the whole stream,
a child process that writes them, and a console opened with the least retention."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Protocol

from leosuite.supervision.console_file import ConsoleFile

KiB = 1024
#: The least retention a console takes.
RETENTION = 64 * KiB

_PERIOD = bytes(range(251))  # a prime period: no alignment hides a shift


class Readable(Protocol):
    def read(self, offset: int, limit: int) -> _Chunk: ...


class _Chunk(Protocol):
    old_read_index: int
    data: bytes
    next_read_index: int
    read_index: int


def open_console(directory: Path, punch: bool = True, **kw: int) -> ConsoleFile:
    """A console with the least retention, punching holes or not as told."""
    kw.setdefault("retention_bytes", RETENTION)
    return ConsoleFile(directory, punch=punch, **kw)


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def pattern(start: int, n: int) -> bytes:
    """Bytes whose value depends on their absolute index, so misplaced data shows (zeros
    included: index 0 mod 251 is a zero byte, the rest are not)."""
    reps = (start % 251 + n) // 251 + 2
    return (_PERIOD * reps)[start % 251 : start % 251 + n]


def read_all(console: Readable, offset: int = 0, limit: int = 64 * KiB) -> tuple[int, bytes]:
    """Everything from ``offset`` to the end: the index of the first byte, the bytes.
    Only the first answer may skip ahead."""
    first = None
    out = bytearray()
    while True:
        chunk = console.read(offset, limit)
        if first is None:
            first = chunk.old_read_index
        else:
            assert chunk.old_read_index == offset  # no gaps after the first answer
        out += chunk.data
        offset = chunk.next_read_index
        if offset == chunk.read_index:
            return first, bytes(out)


_WRITER = """
import os, sys
start, total, size = map(int, sys.argv[1:4])
period = bytes(range(251))
pos = start
while pos < start + total:
    n = min(size, start + total - pos)
    reps = (pos % 251 + n) // 251 + 2
    os.write(1, (period * reps)[pos % 251 : pos % 251 + n])
    pos += n
"""


def pattern_writer(start: int, total: int, write_size: int = 4 * KiB) -> list[str]:
    """argv of a child that writes ``pattern(start, total)`` to its stdout in writes of
    ``write_size`` bytes (``start`` is where its first byte lands in the console)."""
    return [sys.executable, "-c", _WRITER, str(start), str(total), str(write_size)]

"""The files of one console on disk, and the steps that change them (no trio).

In the console's directory::

    console.log              the current file: the child appends to it itself
    console.log.start        the absolute index of console.log's byte 0 (none: 0)
    console.log.<N>          an older file whose byte 0 is index N
    console.log.new          a sparse console.log being made (renamed into place)

Every file is a :class:`Segment`: the absolute index of its byte 0, of the first byte
it still holds and of its end. Every step goes through the directory's descriptor and
never follows a symbolic link (see :mod:`.fs`): a link or a file with other names
(a hard link) found where the console keeps its current file is removed, never
written; one in place of an older file reads as lost bytes.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from leosuite.supervision.console_punch import data_start
from leosuite.supervision.fs import open_file_at, replace_file_at

__all__ = [
    "BUILDING",
    "CURRENT",
    "SIDECAR",
    "Segment",
    "cap_ends",
    "create_current",
    "current_size",
    "older_name",
    "open_current",
    "pread_older",
    "read_sidecar",
    "remove_sidecar",
    "scan_older",
    "walk",
    "write_all",
    "write_sidecar",
]

CURRENT = "console.log"
SIDECAR = "console.log.start"
#: console.log made sparse is built under this name, then renamed into place.
BUILDING = "console.log.new"
_OLDER = re.compile(r"console\.log\.(\d{1,19})")
_MODE = 0o640

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Segment:
    """One file's share of the console: absolute indexes ``[data, end)``."""

    start: int  # index of the file's byte 0
    data: int  # index of the first byte still held (holes and lost bytes before it)
    end: int
    name: str  # in the console's directory


def older_name(start: int) -> str:
    return f"{CURRENT}.{start}"


def _is_ours(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1


def scan_older(dir_fd: int) -> list[Segment]:
    """The older files, in the order of their data."""
    found: list[Segment] = []
    for entry in os.scandir(dir_fd):
        match = _OLDER.fullmatch(entry.name)
        if match is None:
            continue
        try:
            fd = open_file_at(dir_fd, entry.name, os.O_RDONLY)
        except OSError:
            continue  # a link or a file gone meanwhile: not one of ours
        try:
            st = os.fstat(fd)
            if _is_ours(st):
                start = int(match[1])
                found.append(Segment(start, start + data_start(fd), start + st.st_size, entry.name))
        finally:
            os.close(fd)
    found.sort(key=lambda s: (s.data, s.start))
    return found


def cap_ends(older: list[Segment], current_data: int) -> None:
    """Cut each older file at the next file's data: bytes a lingering writer added to a
    file after it was rotated out are not the console's."""
    following = [*(s.data for s in older[1:]), current_data]
    for seg, nxt in zip(older, following[: len(older)], strict=True):
        seg.end = max(seg.data, min(seg.end, nxt))


def read_sidecar(dir_fd: int, default: int) -> int | None:
    """The start index in the sidecar: None when there is none, ``default`` when it is
    unreadable (garbled, or not a regular file)."""
    try:
        fd = open_file_at(dir_fd, SIDECAR, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        return default
    try:
        text = os.read(fd, 64).decode("ascii").strip()
        return int(text) if text.isdigit() else default
    except UnicodeDecodeError:
        return default
    finally:
        os.close(fd)


def write_sidecar(dir_fd: int, start: int) -> None:
    replace_file_at(dir_fd, SIDECAR, f"{start}\n".encode("ascii"), _MODE)


def remove_sidecar(dir_fd: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(SIDECAR, dir_fd=dir_fd)


def _remove_foreign(dir_fd: int, name: str) -> None:
    os.unlink(name, dir_fd=dir_fd)
    log.warning("removed a file that is not the console's own, planted at %r", name)


def current_size(dir_fd: int) -> int | None:
    """The size of console.log, or None when there is none; anything but a regular file
    with one name found there is removed (its target, or other name, stays)."""
    try:
        st = os.stat(CURRENT, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if _is_ours(st):
        return st.st_size
    _remove_foreign(dir_fd, CURRENT)
    return None


def create_current(dir_fd: int, name: str = CURRENT) -> int:
    """A new, empty file ``name`` (console.log, or the one that becomes it) open for
    reading and appending, in place of whatever had the name."""
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL
    for _ in range(3):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)
        try:
            return open_file_at(dir_fd, name, flags, _MODE)
        except FileExistsError:
            continue  # planted again between the unlink and the open
    raise OSError(errno.EEXIST, "something keeps taking the name", name)


def open_current(dir_fd: int, flags: int) -> int:
    """console.log opened with ``flags`` (created if missing): only a regular file with
    one name."""
    fd = open_file_at(dir_fd, CURRENT, flags | os.O_CREAT, _MODE)
    if os.fstat(fd).st_nlink != 1:
        os.close(fd)
        raise OSError(errno.EMLINK, "the console file has other names", CURRENT)
    return fd


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view) :]


def pread_older(dir_fd: int, seg: Segment, pos: int, n: int) -> bytes:
    """``n`` bytes at index ``pos`` of an older file; b"" when it is gone or not ours."""
    try:
        fd = open_file_at(dir_fd, seg.name, os.O_RDONLY)
    except OSError:
        return b""
    try:
        if not _is_ours(os.fstat(fd)):
            return b""
        return os.pread(fd, n, pos - seg.start)
    except OSError:
        return b""
    finally:
        os.close(fd)


def walk(
    segments: Sequence[Segment],
    offset: int,
    limit: int,
    end: int,
    pread: Callable[[Segment, int, int], bytes],
) -> tuple[int, list[bytes]]:
    """Up to ``limit`` bytes from index ``offset`` or, where those are gone, from the
    next byte held: returns the index of the first byte and the pieces. Segments come
    in the order of their data; overlapping ones hold the same bytes. Stops early at a
    gap after some data; a short read counts as lost bytes. With no data the index is
    the next byte held, or ``end``."""
    pos = offset
    pieces: list[bytes] = []
    got = 0
    for seg in segments:
        if seg.end <= max(pos, seg.data):
            continue  # behind us, or holds nothing
        if seg.data > pos:
            if pieces:
                break  # a gap after some data: the next read skips it
            pos = seg.data
        want = min(limit - got, min(end, seg.end) - pos)
        if want <= 0:
            break
        piece = pread(seg, pos, want)
        if piece:
            pieces.append(piece)
            got += len(piece)
            pos += len(piece)
        if len(piece) < want:  # truncated or removed from outside
            if pieces:
                break
            pos = seg.end
    if pieces:
        return pos - got, pieces
    if any(s.data <= pos < s.end for s in segments):
        return pos, pieces  # held, but nothing asked for
    return min((s.data for s in segments if pos < s.data < s.end), default=end), pieces

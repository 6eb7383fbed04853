"""The console byte log of one managed server.

One byte stream per server, addressed by absolute byte offset (the API's ``readIndex``)
that never goes back: across server restarts, daemon restarts and file rotation.
Every byte goes to ``console.log`` on disk and to an in-memory :class:`ConsoleRing`;
reads are served from the ring when they can be, else from the files with ``os.pread``.

On disk, in the server's directory::

    console.log              the current file, opened O_APPEND
    console.log.start        decimal start offset of console.log (tmp + os.replace)
    console.log.<offset>     a rotated file and the offset of its first byte

Rotation renames ``console.log`` to ``console.log.<its start>``, then rewrites
``console.log.start``, then creates a new ``console.log``. After a crash at any point
the start of ``console.log`` is recovered as the larger of the sidecar and the end of
the newest rotated file, so the index never goes back. A caller that knows a larger
index (the store's saved one) passes it as ``start_index`` and it wins; the bytes in
between are lost and readers skip them like any overrun.

The directory is opened once without following a symbolic link, and every file in it
is opened, renamed and deleted relative to that descriptor, never through a link: a
link planted in place of the directory or of ``console.log`` is removed and replaced,
one in place of a rotated file reads as lost bytes (see :mod:`.fs`). The current file
is read through the descriptor it is written with.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import msgspec
import trio

from leosuite.errors import InternalError, InvalidInput
from leosuite.supervision.console_ring import ConsoleRing
from leosuite.supervision.fs import open_dir_at, open_file_at, replace_file_at

__all__ = ["ConsoleChunk", "ConsoleLog", "ConsoleLogStatistics"]

_NAME = "console.log"
_SIDECAR = "console.log.start"
_ROTATED = re.compile(r"console\.log\.(\d+)")
_OPEN_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
_MARKER = b"[leosuite] "


class ConsoleChunk(msgspec.Struct, frozen=True):
    """One answer of :meth:`ConsoleLog.read` (the seed's ``server_log`` fields)."""

    old_read_index: int  # offset of data[0]: larger than asked when bytes were lost
    data: bytes
    next_read_index: int  # old_read_index + len(data)
    read_index: int  # end of the log at read time: up to date when == next_read_index


class ConsoleLogStatistics(msgspec.Struct, frozen=True, kw_only=True):
    end_index: int
    oldest_index: int
    bytes_written: int  # since this ConsoleLog was opened
    rotations: int  # since this ConsoleLog was opened
    ring_capacity: int
    ring_bytes: int  # bytes held in memory now
    files_kept: int  # rotated files on disk, not counting console.log
    file_bytes: int  # bytes on disk, console.log included


@dataclass(slots=True)
class _File:
    start: int
    size: int
    name: str  # in the log's directory

    @property
    def end(self) -> int:
        return self.start + self.size


def _os_error(what: str, path: Path, exc: OSError) -> InternalError:
    return InternalError(f"console log: cannot {what} {path}: {exc.strerror or exc}")


class ConsoleLog:
    """Append-only byte log with a memory ring and rotated files; see the module doc."""

    def __init__(
        self,
        directory: Path,
        *,
        ring_bytes: int = 4 * 1024 * 1024,
        file_max_bytes: int = 16 * 1024 * 1024,
        keep_files: int = 4,
        start_index: int | None = None,
    ) -> None:
        if ring_bytes < 0 or file_max_bytes < 1 or keep_files < 0:
            raise ValueError("ring_bytes >= 0, file_max_bytes >= 1 and keep_files >= 0")
        self._dir = Path(directory)
        self._path = self._dir / _NAME
        self._file_max = file_max_bytes
        self._keep = keep_files
        self._dirfd = -1
        self._fd = -1
        self._closed = False
        self._lot = trio.lowlevel.ParkingLot()
        self._bytes_written = 0
        self._rotations = 0
        self._rotated: list[_File] = []  # oldest first
        self._sidecar: int | None = None  # what console.log.start holds on disk
        try:
            self._recover(start_index)
        except BaseException:
            if self._dirfd >= 0:
                os.close(self._dirfd)
            raise
        self._ring = ConsoleRing(ring_bytes, self._current.end)
        self._at_line_start = self._recover_at_line_start()

    # -- opening and recovery -------------------------------------------------------

    def _recover(self, start_index: int | None) -> None:
        try:
            self._dir.parent.mkdir(parents=True, exist_ok=True)
            self._dirfd = open_dir_at(self._dir.parent, self._dir.name)
            for entry in os.scandir(self._dirfd):
                match = _ROTATED.fullmatch(entry.name)
                if match and entry.is_file(follow_symlinks=False):
                    size = entry.stat(follow_symlinks=False).st_size
                    self._rotated.append(_File(int(match[1]), size, entry.name))
            self._rotated.sort(key=lambda f: f.start)
            self._sidecar = self._read_sidecar()
            try:
                st = os.stat(_NAME, dir_fd=self._dirfd, follow_symlinks=False)
                size = st.st_size if stat.S_ISREG(st.st_mode) else 0  # a link: replaced
            except FileNotFoundError:
                size = 0
        except OSError as exc:
            raise _os_error("open", self._dir, exc) from exc
        # A crash between the rename and the sidecar update leaves the sidecar behind
        # the newest rotated file: take whichever is larger.
        start = max(self._sidecar or 0, max((f.end for f in self._rotated), default=0))
        self._current = _File(start, size, _NAME)
        if start_index is not None and start_index > self._current.end:
            if size:
                self._rotate_out()
            self._current = _File(start_index, 0, _NAME)
        self._open_current()
        self._prune()

    def _read_sidecar(self) -> int | None:
        try:
            fd = open_file_at(self._dirfd, _SIDECAR, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None  # not a file of ours: rewritten on open
            raise
        try:
            return int(os.read(fd, 64).decode("ascii").strip())
        except (ValueError, UnicodeDecodeError):
            return None
        finally:
            os.close(fd)

    def _recover_at_line_start(self) -> bool:
        for f in (self._current, *reversed(self._rotated)):
            if f.size:
                if f.end != self._current.end:
                    return True  # the last bytes were lost: nothing precedes a marker
                try:
                    return self._pread(f, f.end - 1, 1) in (b"\n", b"")
                except InternalError:
                    return True
        return True

    def _open_current(self) -> None:
        """Record the start of console.log, then open it (the order matters on a crash)."""
        start = self._current.start
        if self._sidecar != start:
            try:
                replace_file_at(self._dirfd, _SIDECAR, f"{start}\n".encode("ascii"), 0o640)
            except OSError as exc:
                raise _os_error("write", self._dir / _SIDECAR, exc) from exc
            self._sidecar = start
        try:
            self._fd = open_file_at(self._dirfd, _NAME, _OPEN_FLAGS, 0o640)
        except OSError as exc:
            raise _os_error("open", self._path, exc) from exc

    def _rotate_out(self) -> None:
        """Rename console.log away; the caller sets the new current file and opens it."""
        cur = self._current
        rotated = f"{_NAME}.{cur.start}"
        try:
            os.replace(_NAME, rotated, src_dir_fd=self._dirfd, dst_dir_fd=self._dirfd)
        except OSError as exc:
            raise _os_error("rotate", self._path, exc) from exc
        self._rotated.append(_File(cur.start, cur.size, rotated))
        self._current = _File(cur.end, 0, _NAME)

    def _rotate(self) -> None:
        self._rotate_out()
        fd, self._fd = self._fd, -1
        with contextlib.suppress(OSError):  # renamed already: a failed close loses nothing
            os.close(fd)
        self._rotations += 1
        self._open_current()
        self._prune()

    def _prune(self) -> None:
        while len(self._rotated) > self._keep:
            old = self._rotated.pop(0)
            try:
                os.unlink(old.name, dir_fd=self._dirfd)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise _os_error("delete", self._dir / old.name, exc) from exc

    # -- the public surface ---------------------------------------------------------

    @property
    def end_index(self) -> int:
        """Absolute offset one past the last byte written (the seed's ``readIndex``)."""
        return self._current.end

    @property
    def oldest_index(self) -> int:
        """Absolute offset of the oldest byte still held, in the ring or on disk."""
        files_start = self._rotated[0].start if self._rotated else self._current.start
        return min(files_start, self._ring.start)

    def append(self, data: bytes | bytearray | memoryview) -> None:
        """Append raw bytes: one ``os.write`` (more only across a rotation or on a short
        write), then into the ring, then wake the waiters.

        On an ``OSError`` the bytes that did reach the file are kept (index, ring and
        waiters all see them) and :class:`InternalError` is raised for the rest.
        """
        if self._closed:
            raise InternalError(f"console log {self._path} is closed")
        if not isinstance(data, bytes | bytearray):
            data = memoryview(data).cast("B")  # so that len() counts bytes
        n = len(data)
        if n == 0:
            return
        cur = self._current
        written = 0
        try:
            if self._fd < 0:  # a previous rotation failed half-way: try again
                self._open_current()
            if cur.size + n <= self._file_max:
                written = os.write(self._fd, data)  # the hot path
                cur.size += written
            if written < n:  # across a rotation, or after a short write
                view = memoryview(data)
                while written < n:
                    if self._current.size >= self._file_max:
                        self._rotate()
                    cur = self._current
                    room = min(self._file_max - cur.size, n - written)
                    k = os.write(self._fd, view[written : written + room])
                    cur.size += k
                    written += k
        except OSError as exc:
            raise _os_error("write", self._path, exc) from exc
        finally:
            if written:
                self._commit(data if written == n else memoryview(data)[:written])

    def _commit(self, data: bytes | bytearray | memoryview) -> None:
        self._ring.append(data)
        self._bytes_written += len(data)
        self._at_line_start = data[-1] == 10
        self._lot.unpark_all()

    def marker(self, text: str) -> None:
        """Append ``[leosuite] <text>`` on a line of its own."""
        line = _MARKER + text.encode("utf-8", "backslashreplace") + b"\n"
        self.append(line if self._at_line_start else b"\n" + line)

    def read(self, offset: int, limit: int) -> ConsoleChunk:
        """Up to ``limit`` bytes from ``offset``; if those bytes are gone, from the oldest
        byte still held (``old_read_index`` then differs from ``offset``)."""
        end = self._current.end
        if offset < 0:
            raise InvalidInput(f"readIndex must be >= 0, not {offset}", field="readIndex")
        if offset > end:
            raise InvalidInput(
                f"readIndex {offset} is beyond the end of the console log ({end})",
                field="readIndex",
            )
        if limit < 0:
            raise InvalidInput(f"max must be >= 0, not {limit}", field="max")
        ring = self._ring
        if offset >= ring.start:
            data = ring.read(offset, limit)
        elif limit == 0:
            offset, data = max(offset, self.oldest_index), b""
        else:
            offset, data = self._read_files(offset, limit)
            if not data:  # nothing on disk before the ring's first byte
                offset = ring.start
                data = ring.read(offset, limit)
        return ConsoleChunk(offset, data, offset + len(data), end)

    def _read_files(self, offset: int, limit: int) -> tuple[int, bytes]:
        """Up to ``limit`` bytes from the files at ``offset`` or, if lost, at the next byte
        they hold. Stops early at a gap; returns no data when the ring holds older bytes
        than the files from there on."""
        end = self._current.end
        ring_start = self._ring.start
        pieces: list[bytes] = []
        pos = offset
        stop = min(end, pos + limit)
        for f in (*self._rotated, self._current):
            if f.end <= pos:
                continue
            if pos < f.start:
                if pieces:
                    break  # a gap after some data: the next read skips it
                if f.start > ring_start:
                    break  # the ring reaches further back than the files
                pos = f.start
                stop = min(end, pos + limit)
            if pos >= stop:
                break
            try:
                piece = self._pread(f, pos, min(stop, f.end) - pos)
            except InternalError:
                piece = b""  # deleted or unreadable from outside: treat it as lost
            if not pieces:
                offset = pos
            if piece:
                pieces.append(piece)
                pos += len(piece)
            if pos < min(stop, f.end):  # short read: truncated from outside
                if pieces:
                    break
                pos = f.end  # skip the lost remainder of this file
        if not pieces:
            return offset, b""
        return offset, pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _pread(self, f: _File, pos: int, n: int) -> bytes:
        if f is self._current and self._fd >= 0:  # the file we write, whatever its name is now
            try:
                return os.pread(self._fd, n, pos - f.start)
            except OSError as exc:
                raise _os_error("read", self._path, exc) from exc
        try:
            fd = open_file_at(self._dirfd, f.name, os.O_RDONLY)
        except OSError as exc:
            raise _os_error("open", self._dir / f.name, exc) from exc
        try:
            return os.pread(fd, n, pos - f.start)
        except OSError as exc:
            raise _os_error("read", self._dir / f.name, exc) from exc
        finally:
            os.close(fd)

    async def wait_beyond(self, offset: int) -> None:
        """Return as soon as ``end_index > offset`` (at once if it already is, or once
        the log is closed). Cancellable; always a checkpoint."""
        if self._current.end > offset or self._closed:
            await trio.lowlevel.checkpoint()
            return
        while self._current.end <= offset and not self._closed:
            await self._lot.park()

    def close(self) -> None:
        """Close the file and wake every waiter. Reads still work; appends fail."""
        if self._closed:
            return
        self._closed = True
        fd, self._fd = self._fd, -1
        self._lot.unpark_all()
        if self._dirfd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._dirfd)
            self._dirfd = -1  # later reads are served from memory only
        if fd >= 0:
            try:
                os.close(fd)
            except OSError as exc:
                raise _os_error("close", self._path, exc) from exc

    def statistics(self) -> ConsoleLogStatistics:
        return ConsoleLogStatistics(
            end_index=self.end_index,
            oldest_index=self.oldest_index,
            bytes_written=self._bytes_written,
            rotations=self._rotations,
            ring_capacity=self._ring.capacity,
            ring_bytes=self._ring.held,
            files_kept=len(self._rotated),
            file_bytes=sum(f.size for f in self._rotated) + self._current.size,
        )

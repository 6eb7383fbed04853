"""The console of one managed server: a file the child appends to itself.

One byte stream per server, addressed by absolute index (the API's ``readIndex``) that
never goes back: across server restarts, daemon restarts and upgrades. The child's
stdout and stderr are ``console.log`` opened ``O_APPEND``, so no byte passes through
the daemon; the daemon appends its own marker lines to the same file, reads with
``os.pread`` and learns that the file grew from :meth:`ConsoleFile.refresh` (called by
the console watch, and after its own appends).

Normally console.log's byte 0 is index 0: the index is the file offset and the file
grows forever, while retention punches holes in its oldest blocks (see
:mod:`.console_punch`) so that the disk holds about ``retention_bytes``. Where the
filesystem cannot punch holes, each server start moves console.log aside as
``console.log.<its start>`` and begins a new one whose start is written to
``console.log.start`` first; retention then deletes whole old files. Older files of
either kind stay readable until retention drops them (see :mod:`.console_disk`).

Opening repairs whatever a crash left, so that no index goes back: a console.log
missing is made again at the largest index known (the sidecar, the older files' ends,
``start_index``); see :mod:`.console_files`. Every read compares its index with the
first byte still held before it reads: a punched range reads as zeros, not an error.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from pathlib import Path

import msgspec
import trio

from leosuite.disk_watch import note_disk_full
from leosuite.errors import DiskFull, InternalError, InvalidInput, LeosuiteError
from leosuite.supervision import console_disk as disk
from leosuite.supervision.console_files import ConsoleFiles

__all__ = [
    "FLOOD_POLL",
    "FLOOD_POLLS",
    "MIN_RETENTION_BYTES",
    "ConsoleChunk",
    "ConsoleFile",
    "ConsoleFileStatistics",
    "check_read",
]

#: The least ``retention_bytes`` a console accepts.
MIN_RETENTION_BYTES = 64 * 1024
#: While a console floods, one of its waiters looks at its size this often (seconds), up
#: to :data:`FLOOD_POLLS` times, instead of waiting for the console watch's refresh (whose
#: batching delay lets a flood run megabytes ahead of its subscribers).
FLOOD_POLL = 0.001
FLOOD_POLLS = 20

_MARKER = b"[leosuite] "

log = logging.getLogger(__name__)


class ConsoleChunk(msgspec.Struct, frozen=True):
    """One answer of :meth:`ConsoleFile.read` (the ``server_log`` fields)."""

    old_read_index: int  # index of data[0]: larger than asked when bytes were lost
    data: bytes
    next_read_index: int  # old_read_index + len(data)
    read_index: int  # end of the console at read time: up to date when == next_read_index


class ConsoleFileStatistics(msgspec.Struct, frozen=True, kw_only=True):
    end_index: int
    oldest_index: int
    disk_bytes: int  # blocks the console's files take on disk
    files: int  # console.log and the older files
    punches: int  # holes punched since this ConsoleFile was opened
    punch_supported: bool


def check_read(offset: int, limit: int, end: int, what: str) -> None:
    """Refuse a read of ``limit`` bytes from ``offset`` of a stream (``what``) that ends
    at ``end``: a negative index or limit, or an index beyond the end."""
    if offset < 0:
        raise InvalidInput(f"readIndex must be >= 0, not {offset}", field="readIndex")
    if offset > end:
        raise InvalidInput(
            f"readIndex {offset} is beyond the end of {what} ({end})", field="readIndex"
        )
    if limit < 0:
        raise InvalidInput(f"max must be >= 0, not {limit}", field="max")


def _os_error(what: str, path: Path, exc: OSError) -> LeosuiteError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # no space left: the answer says so
        note_disk_full(path)
        return DiskFull(f"cannot {what} a console log")
    return InternalError(f"console: cannot {what} {path}: {exc.strerror or exc}")


class ConsoleFile:
    """The console byte stream of one server, in its log directory; see the module doc."""

    def __init__(
        self,
        directory: Path,
        *,
        retention_bytes: int,
        start_index: int = 0,
        punch: bool | None = None,
    ) -> None:
        """Open (and repair) the console in ``directory``; ``punch`` None finds out
        whether the filesystem can punch holes, True or False decides it."""
        if retention_bytes < MIN_RETENTION_BYTES:
            raise ValueError(f"retention_bytes must be at least {MIN_RETENTION_BYTES}")
        if start_index < 0:
            raise ValueError("start_index must be >= 0")
        self._dir = Path(directory)
        self._retention = retention_bytes
        #: Queue punches for a worker thread (set by the watch) instead of punching here.
        self.defer_punches = False
        self._closed = False
        self._lot = trio.lowlevel.ParkingLot()
        self._polling = False  # a waiter looks at the size every FLOOD_POLL
        try:
            self._files = ConsoleFiles(self._dir, start_index=start_index, punch=punch)
        except OSError as exc:
            raise _os_error("open", self._dir, exc) from exc
        try:
            self._seen = self._last_end = self._files.end()  # _seen: as of the last refresh
        except OSError as exc:
            self._files.close()
            raise _os_error("open", self.path, exc) from exc
        self._files.retain(self._seen, self._retention)

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def path(self) -> Path:
        return self._dir / disk.CURRENT

    @property
    def closed(self) -> bool:
        """The console is closed (its server destroyed, or the daemon ending)."""
        return self._closed

    @property
    def dir_fd(self) -> int:
        """The directory's descriptor (-1 once closed), for watching it."""
        return self._files.dir_fd

    @property
    def end_index(self) -> int:
        """Index one past the last byte written (the API's ``readIndex``)."""
        if self._closed:
            return self._last_end
        try:
            self._last_end = self._files.end()
        except OSError as exc:
            raise _os_error("read", self.path, exc) from exc
        return self._last_end

    @property
    def known_end(self) -> int:
        """:attr:`end_index` as last read (by the console watch's refresh, an append or a
        read), without looking at the file: behind it by what was written since."""
        return self._last_end

    @property
    def waiting(self) -> int:
        """Tasks waiting for bytes past the end (long polls, subscriptions)."""
        return len(self._lot)

    @property
    def oldest_index(self) -> int:
        """Index of the oldest byte still held."""
        older = (s.data for s in self._files.older if s.end > s.data)
        return min([*older, self._files.current.data])

    def open_for_child(self) -> int:
        """A new descriptor appending to console.log, for a child's stdout and stderr
        (the caller closes it once the child has it). console.log removed or replaced
        from outside is made again first."""
        self._check_open()
        try:
            fd = self._open_mine()
            if fd < 0:
                self._files.begin(self.end_index)
                self._files.retain(self.end_index, self._retention)
                fd = self._open_mine()
            if fd < 0:
                raise OSError(errno.ESTALE, "the console file keeps being replaced")
        except OSError as exc:
            raise _os_error("open", self.path, exc) from exc
        os.set_blocking(fd, True)
        return fd

    def _open_mine(self) -> int:
        """console.log opened for appending if it is the daemon's file, else -1."""
        try:
            fd = disk.open_current(self._files.dir_fd, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            if exc.errno != errno.EMLINK:
                raise
            return -1
        if not self._files.is_current(fd):
            os.close(fd)
            return -1
        return fd

    def start_segment(self) -> None:
        """Called before each server start (see :meth:`ConsoleFiles.start_segment`).
        Logs a failure and goes on: the old file stays current."""
        if self._closed:
            return
        try:
            self._files.start_segment()
        except OSError as exc:
            log.warning("%s: cannot start a new console file: %s", self._dir, exc)
        self.refresh()

    def append(self, data: bytes | bytearray | memoryview) -> None:
        """Append the daemon's own bytes, then wake the waiters. Raises
        :class:`DiskFull` when there is no space left, else :class:`InternalError` (the
        bytes that did reach the file are kept)."""
        self._check_open()
        try:
            disk.write_all(self._files.fd, data)
        except OSError as exc:
            raise _os_error("write", self.path, exc) from exc
        finally:
            self.refresh()

    def marker(self, text: str) -> None:
        """Append ``[leosuite] <text>`` on a line of its own."""
        line = _MARKER + text.encode("utf-8", "backslashreplace") + b"\n"
        end = self.end_index
        if end:
            last = self.read(end - 1, 1)
            if last.old_read_index == end - 1 and last.data != b"\n":
                line = b"\n" + line
        self.append(line)

    def read(self, offset: int, limit: int) -> ConsoleChunk:
        """Up to ``limit`` bytes from ``offset``; if those bytes are gone, from the oldest
        byte still held after it (``old_read_index`` then differs from ``offset``)."""
        self._check_open()
        end = self.end_index
        check_read(offset, limit, end, "the console log")
        files = self._files
        try:
            if offset >= files.current.data:  # console.log holds it: the usual case
                data = files.pread(files.current, offset, min(limit, end - offset))
                return ConsoleChunk(offset, data, offset + len(data), end)
            start, pieces = disk.walk(files.segments(), offset, limit, end, files.pread)
        except OSError as exc:
            raise _os_error("read", self.path, exc) from exc
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        return ConsoleChunk(start, data, start + len(data), end)

    async def wait_beyond(self, offset: int, *, flooding: bool = False) -> None:
        """Return as soon as ``end_index > offset`` (at once if it already is, or once
        the console is closed). Cancellable; always a checkpoint. ``flooding``: the
        caller just read a batch or more, so more is due within milliseconds: unless
        another waiter does already, this one looks at the size every
        :data:`FLOOD_POLL` (up to :data:`FLOOD_POLLS` times) and wakes every waiter when
        it grew, before it waits for the watch's refresh."""
        if self._closed or self.end_index > offset:
            await trio.lowlevel.checkpoint()
            return
        if flooding and not self._polling:
            self._polling = True
            try:
                for _ in range(FLOOD_POLLS):
                    await trio.sleep(FLOOD_POLL)
                    if self._closed or self.end_index > offset:
                        self._lot.unpark_all()
                        return
            finally:
                self._polling = False
        parked = False
        while not self._closed and self.end_index <= offset:
            parked = True
            await self._lot.park()
        if not parked:  # it grew between the two looks: still a checkpoint
            await trio.lowlevel.checkpoint()

    def refresh(self) -> bool:
        """Look at the file's size: wake the waiters if it grew, apply retention.
        Returns whether it grew. Never raises."""
        if self._closed:
            return False
        try:
            end = self.end_index
        except InternalError:
            return False
        grew = end > self._seen
        if grew:
            self._seen = end
            self._lot.unpark_all()
        self._files.retain(end, self._retention, quiet=not grew, defer=self.defer_punches)
        return grew

    def take_punches(self) -> list[tuple[int, int, int]]:
        """Punches :meth:`refresh` queued (``defer_punches``), for
        :func:`~leosuite.supervision.console_punch.punch_all` in a worker thread."""
        return self._files.take_deferred()

    def _check_open(self) -> None:
        if self._closed:
            raise InternalError(f"console {self.path} is closed")

    def close(self) -> None:
        """Close the files and wake every waiter; reads and appends then fail."""
        if self._closed:
            return
        with contextlib.suppress(InternalError):
            self._last_end = self.end_index  # served once closed
        self._closed = True
        self._lot.unpark_all()
        self._files.close()

    def statistics(self) -> ConsoleFileStatistics:
        disk_bytes = 0
        if not self._closed:
            with contextlib.suppress(OSError):
                disk_bytes = self._files.disk_bytes()
        return ConsoleFileStatistics(
            end_index=self.end_index,
            oldest_index=self.oldest_index,
            disk_bytes=disk_bytes,
            files=len(self._files.older) + 1,
            punches=self._files.punches,
            punch_supported=self._files.punch,
        )

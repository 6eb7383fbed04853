"""The files of one console, open: repair on opening, new files, retention (no trio).

Where holes can be punched, console.log's byte 0 is index 0 whenever that can be made
exact: the file is made sparse up to the index to continue at, and its first block of
data is copied from the older files, so that its data starts on a block boundary and
``lseek(SEEK_DATA)`` finds it again after a crash. Where that cannot be done (the
older files do not hold those bytes), or where holes cannot be punched, console.log
starts empty at that index, written to the sidecar first.

Every step is ordered so that a crash at any point leaves files from which opening
finds an index at least as large: console.log is moved aside or removed before the
sidecar changes, the sidecar goes only once the older files hold the index, and a
sparse console.log is made whole under another name before it takes its own.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from pathlib import Path

from leosuite.supervision import console_disk as disk
from leosuite.supervision.console_disk import CURRENT, Segment
from leosuite.supervision.console_punch import BLOCK, data_start, punch_hole, punch_supported
from leosuite.supervision.fs import open_dir_at

__all__ = ["ConsoleFiles"]

_UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS})

log = logging.getLogger(__name__)


class ConsoleFiles:
    """console.log (open for reading and appending), the older files and the sidecar."""

    def __init__(self, directory: Path, *, start_index: int, punch: bool | None) -> None:
        """Open and repair; ``punch`` None finds out whether holes can be punched.
        Raises ``OSError``."""
        self.directory = directory
        self.dir_fd = -1
        self.fd = -1  # console.log, read and appended to by the daemon (and punched)
        self.current = Segment(0, 0, 0, CURRENT)  # read through self.fd
        self.older: list[Segment] = []  # in the order of their data
        self.punch = False
        self.punches = 0
        #: Punches handed to a worker thread (see retain): (descriptor dup, offset, length).
        self.deferred: list[tuple[int, int, int]] = []
        self._sidecar: int | None = None  # what the sidecar holds
        self._last_error = 0  # errno of the last retention failure logged
        try:
            self._open(start_index, punch)
        except BaseException:
            self.close()
            raise

    def _open(self, start_index: int, punch: bool | None) -> None:
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        self.dir_fd = open_dir_at(self.directory.parent, self.directory.name)
        if punch is None:
            punch = punch_supported(self.dir_fd)
            if not punch:
                log.warning(
                    "%s: the filesystem cannot punch holes; the console starts a new file "
                    "at each server start and drops whole old files",
                    self.directory,
                )
        self.punch = punch
        self.older = disk.scan_older(self.dir_fd)
        top = max((s.end for s in self.older), default=0)
        self._sidecar = disk.read_sidecar(self.dir_fd, top)
        base = self._sidecar or 0
        size = disk.current_size(self.dir_fd)
        if size is None:
            self.begin(max(base, top, start_index))
        else:
            self.fd = disk.open_current(self.dir_fd, os.O_RDWR | os.O_APPEND)
            size = os.fstat(self.fd).st_size
            self.current = Segment(base, base + data_start(self.fd), base + size, CURRENT)
            self._repair(top, start_index)
        disk.cap_ends(self.older, self.current.data)

    def _repair(self, top: int, start_index: int) -> None:
        """Leave console.log as it is (a child may be writing to it) unless it is short
        of the index the older files or the store know."""
        cur = self.current
        if cur.end < top:  # the sidecar was lost: console.log follows the newest older file
            size, held = cur.end - cur.start, cur.data - cur.start
            self.current = cur = Segment(top, top + held, top + size, CURRENT)
            self._write_sidecar(top)
        if cur.end < start_index:  # files removed by hand: go on where the store says
            if cur.data < cur.end:
                self.rotate_out()
            self.begin(start_index)

    def start_segment(self) -> None:
        """Before a server starts (nobody writes console.log): where holes cannot be
        punched, move console.log aside; where they can, make its byte 0 index 0 if
        it is not (an older release's layout, or a start that could not be exact)."""
        cur = self.current
        end = self.end()
        if self.punch and (cur.start == 0 or not self._zero_ok(end, [*self.older, cur])):
            return
        if cur.data < end:
            self.rotate_out()
        elif not self.punch:
            return  # nothing in it yet
        self.begin(end)

    def _zero_ok(self, target: int, segments: list[Segment]) -> bool:
        """Whether a console.log whose byte 0 is index 0 can end at ``target``: the
        files hold ``target`` and the bytes of its block."""
        if max((s.end for s in segments), default=0) < target:
            return False
        return self._block_before(target, segments) is not None

    def _block_before(self, target: int, segments: list[Segment]) -> bytes | None:
        first = target & -BLOCK
        segments = sorted(segments, key=lambda s: (s.data, s.start))
        start, pieces = disk.walk(segments, first, target - first, target, self.pread)
        tail = b"".join(pieces)
        return tail if start == first and len(tail) == target - first else None

    def begin(self, target: int) -> None:
        """Put a new console.log ending at index ``target`` in place of whatever has the
        name (the caller moved aside what it holds of its own)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(CURRENT, dir_fd=self.dir_fd)
        tail = None
        if self.punch and max((s.end for s in self.older), default=0) >= target:
            tail = self._block_before(target, self.older)
        if tail is None:
            self._write_sidecar(target)
            self._swap(disk.create_current(self.dir_fd), target)
            return
        if self._sidecar is not None:
            disk.remove_sidecar(self.dir_fd)
            self._sidecar = None
        fd = disk.create_current(self.dir_fd, disk.BUILDING)
        try:
            if target - len(tail):  # ext4 flushes a file truncated to 0 at its last close
                os.ftruncate(fd, target - len(tail))
            disk.write_all(fd, tail)
            os.rename(disk.BUILDING, CURRENT, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        except BaseException:
            os.close(fd)
            raise
        self._swap(fd, 0)

    def _write_sidecar(self, start: int) -> None:
        if (self._sidecar or 0) != start:
            disk.write_sidecar(self.dir_fd, start)
            self._sidecar = start

    def rotate_out(self) -> None:
        """Rename console.log to ``console.log.<its start>`` (replacing a file of that
        name: its bytes are all older); the caller then begins a new one."""
        cur = self.current
        if self.fd >= 0:
            cur.end = cur.start + os.fstat(self.fd).st_size
        name = disk.older_name(cur.start)
        os.replace(CURRENT, name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        self.older = [s for s in self.older if s.name != name]
        self.older.append(Segment(cur.start, cur.data, cur.end, name))
        self.older.sort(key=lambda s: (s.data, s.start))

    def _swap(self, fd: int, start: int) -> None:
        """Make ``fd`` the current file, whose byte 0 is index ``start``."""
        old, self.fd = self.fd, fd
        if old >= 0:
            with contextlib.suppress(OSError):
                os.close(old)
        size = os.fstat(fd).st_size
        self.current = Segment(start, start + data_start(fd), start + size, CURRENT)

    def end(self) -> int:
        """The current end, from the file's size. Raises ``OSError``."""
        self.current.end = self.current.start + os.fstat(self.fd).st_size
        return self.current.end

    def segments(self) -> list[Segment]:
        """Every file, in the order of their data."""
        segs = [*self.older, self.current]
        if len(segs) > 1 and segs[-2].data > self.current.data:
            segs.sort(key=lambda s: (s.data, s.start))
        return segs

    def pread(self, seg: Segment, pos: int, n: int) -> bytes:
        """``n`` bytes at index ``pos`` of ``seg``. Raises ``OSError`` for console.log."""
        if seg is not self.current:
            return disk.pread_older(self.dir_fd, seg, pos, n)
        return os.pread(self.fd, n, pos - seg.start) if n > 0 else b""

    def is_current(self, fd: int) -> bool:
        """Whether ``fd`` is open on the daemon's console.log."""
        theirs, mine = os.fstat(fd), os.fstat(self.fd)
        return (theirs.st_dev, theirs.st_ino) == (mine.st_dev, mine.st_ino)

    def retain(self, end: int, retention: int, *, quiet: bool = True, defer: bool = False) -> None:
        """Punch console.log's bytes older than ``retention`` (block aligned) and delete
        the older files wholly below that. Logs failures, never raises. While the file
        grows (not ``quiet``) it punches only once a quarter of the retention is over,
        since each punch holds up the server's writes; at rest it punches to the block.
        With ``defer`` the bytes are dropped for readers at once and the punch itself is
        queued in :attr:`deferred` for a worker thread (a punch of megabytes of page
        cache takes milliseconds)."""
        cut = end - retention
        cur = self.current
        slack = BLOCK if quiet else max(BLOCK, retention // 4)
        if self.punch and end - cur.data > retention + slack:
            new = cur.start + ((cut - cur.start) & -BLOCK)
            try:
                if defer:
                    self.deferred.append((os.dup(self.fd), cur.data - cur.start, new - cur.data))
                else:
                    punch_hole(self.fd, cur.data - cur.start, new - cur.data)
            except OSError as exc:
                self._failed("punch a hole in", CURRENT, exc)
                if exc.errno in _UNSUPPORTED:
                    self.punch = False  # the files are dropped whole from now on
            else:
                cur.data = new
                self.punches += 1
        while self.older and self.older[0].end <= cut:
            old = self.older.pop(0)
            try:
                os.unlink(old.name, dir_fd=self.dir_fd)
            except FileNotFoundError:
                pass
            except OSError as exc:
                self._failed("delete", old.name, exc)

    def take_deferred(self) -> list[tuple[int, int, int]]:
        """The queued punches, now the caller's (it closes each descriptor)."""
        jobs, self.deferred = self.deferred, []
        return jobs

    def _failed(self, what: str, name: str, exc: OSError) -> None:
        if exc.errno != self._last_error:  # once per kind of failure, not per refresh
            self._last_error = exc.errno or -1
            log.warning(
                "console retention: cannot %s %s: %s",
                what,
                self.directory / name,
                exc.strerror or exc,
            )

    def disk_bytes(self) -> int:
        """Bytes the files take on disk."""
        blocks = os.fstat(self.fd).st_blocks
        for seg in self.older:
            with contextlib.suppress(OSError):
                blocks += os.stat(seg.name, dir_fd=self.dir_fd, follow_symlinks=False).st_blocks
        return blocks * 512

    def close(self) -> None:
        # Punches not run yet are left to the next opening (it finds the same start).
        for fd in [job[0] for job in self.take_deferred()] + [self.fd, self.dir_fd]:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.fd = self.dir_fd = -1

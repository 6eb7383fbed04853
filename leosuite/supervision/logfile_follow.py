"""Following a server's own log file as a byte stream with the console's contract.

The daemon does not copy the file: it reads the live file. Its bytes are addressed by
absolute index (the API's ``readIndex``) that never goes back while the daemon runs:
the current file's byte 0 is index ``base``. When the game rotates its log, the next
file continues at the next index:

- rename-and-create: the path names another file (another inode) than the one
  followed; the old file's bytes up to its size then are the previous segment, read
  from the descriptor still held, and the new file begins where it ended;
- copy-truncate: the same file got smaller than the bytes seen of it; it begins again
  at the index one past the bytes seen, and what it held before is gone.

Bytes before the earliest one still readable (a file rotated away once nobody follows
it, or truncated) are answered as the console answers bytes lost to retention: from
the oldest byte held (``old_read_index`` larger than asked). A path that does not exist
(yet) is an empty file that is waited for; the old file renamed away keeps being read
until a new one appears.

Every open walks the server's directory without following links
(:class:`~.server_files.ServerFiles`): a link anywhere on the way, a file that is not a
regular one, or one with other hard links is refused, every time.

Nothing is watched while nobody reads: a follower holds its descriptors and an inotify
instance (watching the file's directory) only while it has users (a long poll, a read,
a subscription); the first waiter waits on inotify for all of them, and refreshes at
least every ``safety_interval`` (``missing_poll`` while the directory does not exist).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import trio
from inotify_simple import INotify, flags

from ..errors import Conflict, InternalError, InvalidInput, LeosuiteError, NotFound
from .console_file import ConsoleChunk
from .file_paths import Parts, shown
from .log_files import open_dir
from .server_files import ServerFiles

__all__ = ["LogFollower", "LogFollowerStatistics", "LogFollowers"]

_WATCH = (
    flags.MODIFY
    | flags.CREATE
    | flags.MOVED_TO
    | flags.MOVED_FROM
    | flags.DELETE
    | flags.ATTRIB
    | flags.CLOSE_WRITE
    | flags.MOVE_SELF
    | flags.DELETE_SELF
    | flags.ONLYDIR
)
_GONE = flags.IGNORED | flags.MOVE_SELF | flags.DELETE_SELF


class LogFollowerStatistics(msgspec.Struct, frozen=True, kw_only=True):
    users: int
    watching: bool  # an inotify instance is open
    end_index: int
    oldest_index: int
    rotations: int


class _Segment(msgspec.Struct):
    fd: int
    base: int
    end: int


def _refusal(exc: LeosuiteError) -> LeosuiteError:
    """A refusal of ``parts`` named as the ``file`` a client asked for."""
    message = exc.message.removeprefix("path: ")
    return type(exc)(f"file: {message}", field="file")


class LogFollower:
    """One declared log file of one server (``parts`` below ``root``)."""

    def __init__(
        self,
        root: Path,
        parts: Parts,
        *,
        batch_delay: float = 0.02,
        safety_interval: float = 5.0,
        missing_poll: float = 1.0,
    ) -> None:
        self.parts = parts
        self._files = ServerFiles(root)
        self._batch_delay = batch_delay
        self._safety = safety_interval
        self._missing_poll = missing_poll
        self._base = 0  # index of the current file's byte 0
        self._size = 0  # bytes of the current file seen
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the current file
        self._fd = -1  # the current file, held while used
        self._prev: _Segment | None = None  # the file rotated away, held while used
        self._users = 0
        self._lot = trio.lowlevel.ParkingLot()
        self._leader = False
        self._ino: Any = None
        self._wd: int | None = None
        self._closed = False
        self._present = False  # the path named a file at the last look
        self._rotations = 0

    @property
    def name(self) -> str:
        return "/".join(self.parts)

    @property
    def end_index(self) -> int:
        """Index one past the last byte seen (the API's ``readIndex``)."""
        return self._base + self._size

    @property
    def oldest_index(self) -> int:
        """Index of the oldest byte still readable."""
        return self._prev.base if self._prev is not None else self._base

    @property
    def size(self) -> int:
        """Bytes of the current file seen."""
        return self._size

    @property
    def exists(self) -> bool:
        """Whether the path named a file at the last look."""
        return self._present

    # -- users ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def using(self) -> Iterator[None]:
        """Hold the descriptors (and, for waiters, the watch) while the block runs."""
        self._users += 1
        try:
            yield
        finally:
            self._users -= 1
            if self._users == 0:
                self._let_go()

    def _let_go(self) -> None:
        """Close everything held: nobody reads any more."""
        for fd in (self._fd, self._prev.fd if self._prev else -1):
            if fd >= 0:
                os.close(fd)
        self._fd = -1
        self._prev = None
        if self._ino is not None:
            ino, self._ino, self._wd = self._ino, None, None
            trio.lowlevel.notify_closing(ino.fileno())
            ino.close()

    def close(self) -> None:
        """The server is gone: wake every waiter; reads then fail."""
        self._closed = True
        self._lot.unpark_all()

    # -- following ----------------------------------------------------------------------

    def _open(self) -> tuple[int, os.stat_result] | None:
        for attempt in range(3):
            try:
                return self._files.open_file(self.parts)
            except NotFound:
                return None
            except Conflict as exc:  # replaced while it was opened (a rotation): again
                if attempt == 2:
                    raise _refusal(exc) from None
            except LeosuiteError as exc:
                raise _refusal(exc) from None
            except OSError as exc:
                raise InternalError(f"{shown(self.parts)}: {exc.strerror or exc}") from exc
        return None

    def refresh(self) -> bool:
        """Look at the path: follow a rotation, learn the size; wake the waiters if the
        end moved. Raises the refusal of a path that may not be read (a link...)."""
        if self._closed:
            raise NotFound("this server is gone", field="server")
        before = self.end_index
        opened = self._open()
        self._present = opened is not None
        if opened is None:  # not there: the file renamed away is read until a new one comes
            if self._fd >= 0:
                self._size = max(self._size, os.fstat(self._fd).st_size)
        else:
            fd, st = opened
            self._adopt(fd, st)
        moved = self.end_index != before
        if moved:
            self._lot.unpark_all()
        return moved

    def _adopt(self, fd: int, st: os.stat_result) -> None:
        ident = (st.st_dev, st.st_ino)
        if ident == self._ident:
            if self._fd < 0 and self._users > 0:
                self._fd = fd
            else:
                os.close(fd)
            if st.st_size < self._size:  # copy-truncate: it begins again
                self._base += self._size
                self._rotations += 1
                self._drop_prev()
            self._size = st.st_size
            return
        if self._ident is not None:  # another file: rename-and-create
            self._drop_prev()
            if self._fd >= 0:
                final = max(self._size, os.fstat(self._fd).st_size)
                self._prev = _Segment(self._fd, self._base, self._base + final)
            else:
                final = self._size
            self._base += final
            self._rotations += 1
        self._ident = ident
        self._size = st.st_size
        self._fd = -1
        if self._users > 0:
            self._fd = fd
        else:
            os.close(fd)

    def _drop_prev(self) -> None:
        if self._prev is not None:
            os.close(self._prev.fd)
            self._prev = None

    # -- reading ------------------------------------------------------------------------

    def read(self, offset: int, limit: int) -> ConsoleChunk:
        """Up to ``limit`` bytes from ``offset``; if those bytes are gone, from the oldest
        byte still readable (``old_read_index`` then differs from ``offset``)."""
        with self.using():
            self.refresh()
            end = self.end_index
            if offset < 0:
                raise InvalidInput(f"readIndex must be >= 0, not {offset}", field="readIndex")
            if offset > end:
                raise InvalidInput(
                    f"readIndex {offset} is beyond the end of {self.name} ({end})",
                    field="readIndex",
                )
            if limit < 0:
                raise InvalidInput(f"max must be >= 0, not {limit}", field="max")
            offset = max(offset, self.oldest_index)
            prev = self._prev
            try:
                if prev is not None and offset < prev.end:
                    data = os.pread(prev.fd, min(limit, prev.end - offset), offset - prev.base)
                elif self._fd >= 0 and offset < end:
                    data = os.pread(self._fd, min(limit, end - offset), offset - self._base)
                else:
                    data = b""
            except OSError as exc:
                if exc.errno == errno.EIO:
                    raise InternalError(f"{self.name}: cannot read: {exc.strerror}") from exc
                raise
            return ConsoleChunk(offset, data, offset + len(data), end)

    async def wait_beyond(self, offset: int) -> None:
        """Return as soon as ``end_index > offset`` (at once if it already is).
        Cancellable; always a checkpoint. Raises a refusal met on the way."""
        with self.using():
            self.refresh()
            if self.end_index > offset or self._closed:
                await trio.lowlevel.checkpoint()
                return
            while self.end_index <= offset and not self._closed:
                if self._leader:
                    await self._lot.park()
                    continue
                self._leader = True
                try:
                    await self._watch_once()
                    self.refresh()
                finally:
                    self._leader = False
                    self._lot.unpark_all()  # another waiter leads if this one leaves

    async def _watch_once(self) -> None:
        """Wait for an event in the file's directory (or the interval's end)."""
        ino = self._inotify()
        if ino is None:
            await trio.sleep(self._missing_poll)
            return
        with trio.move_on_after(self._safety if self._wd is not None else self._missing_poll):
            await trio.lowlevel.wait_readable(ino.fileno())
            await trio.sleep(self._batch_delay)  # a game writing all the time: one wakeup
        if self._ino is not ino:
            return
        # timeout=0: the default waits in poll(), blocking the whole trio thread.
        for event in ino.read(timeout=0):
            if event.mask & _GONE and event.wd == self._wd:
                with contextlib.suppress(OSError):
                    ino.rm_watch(event.wd)
                self._wd = None

    def _inotify(self) -> Any:
        if self._ino is None:
            try:
                self._ino = INotify(nonblocking=True)
            except OSError:  # the user's limit of inotify instances: the timer refreshes
                return None
        if self._wd is None:
            try:
                fd = open_dir(self._files.root, self.parts[:-1])
            except OSError:
                return self._ino  # the directory is not there (yet)
            try:
                self._wd = self._ino.add_watch(f"/proc/self/fd/{fd}", _WATCH)
            except OSError:
                pass
            finally:
                os.close(fd)
        return self._ino

    def statistics(self) -> LogFollowerStatistics:
        return LogFollowerStatistics(
            users=self._users,
            watching=self._ino is not None,
            end_index=self.end_index,
            oldest_index=self.oldest_index,
            rotations=self._rotations,
        )


class LogFollowers:
    """Every log file followed so far, by server id and path: their indexes live as long
    as the daemon runs (a new server under an old name has a new id)."""

    def __init__(self) -> None:
        self._followers: dict[tuple[int, Parts], LogFollower] = {}

    def get(self, server_id: int, root: Path, parts: Parts) -> LogFollower:
        key = (server_id, parts)
        follower = self._followers.get(key)
        if follower is None:
            follower = self._followers[key] = LogFollower(root, parts)
        return follower

    def forget(self, keep: set[int]) -> None:
        """Close and drop the followers of every server not in ``keep``."""
        for key in [k for k in self._followers if k[0] not in keep]:
            self._followers.pop(key).close()

    def watching(self) -> int:
        """How many followers hold an inotify instance now."""
        return sum(1 for f in self._followers.values() if f.statistics().watching)

"""Following a server's own log file as a byte stream with the console's contract.

The stream itself (indexes across rotations, refusals) is :class:`~.logfile_stream.LogStream`;
every look at the file (open, stat, read) runs in a worker thread of the log files' own
capacity limiter, one at a time per file, so a slow disk never holds the event loop. A
follower holds descriptors only while it has users; the first waiter has the daemon's
one inotify watch (:class:`~.console_watch.ConsoleWatch`) tell it when the file's
directory names the file, and refreshes at least every ``safety_interval`` (every
``missing_poll`` while the directory cannot be watched: missing, or the user's inotify
watch limit reached). A follower closed (its server destroyed) wakes its waiters with
the reason, and every later call raises it.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import msgspec
import trio
from inotify_simple import flags

from ..errors import NotFound
from .console_file import ConsoleChunk
from .console_watch import ConsoleWatch
from .file_paths import Parts
from .log_files import open_dir
from .logfile_stream import LogStream, LogView

__all__ = ["LogFollower", "LogFollowerStatistics"]

T = TypeVar("T")

#: The events of the file's directory that may move its end: writes, rotations, removal.
WATCH_EVENTS = (
    flags.MODIFY
    | flags.CREATE
    | flags.MOVED_TO
    | flags.MOVED_FROM
    | flags.DELETE
    | flags.ATTRIB
    | flags.CLOSE_WRITE
    | flags.MOVE_SELF
    | flags.DELETE_SELF
)


class LogFollowerStatistics(msgspec.Struct, frozen=True, kw_only=True):
    users: int
    watching: bool  # a waiter waits for a change (its directory watched, or polled)
    end_index: int
    oldest_index: int
    rotations: int


class LogFollower:
    """One declared log file of one server (``parts`` below ``root``)."""

    def __init__(
        self,
        root: Path,
        parts: Parts,
        *,
        threads: trio.CapacityLimiter,
        watch: ConsoleWatch | None = None,
        safety_interval: float = 5.0,
        missing_poll: float = 1.0,
    ) -> None:
        self.parts = parts
        self._root = root
        self._stream = LogStream(root, parts)
        self._view = LogView()
        self._threads = threads
        self._watch = watch
        self._safety = safety_interval
        self._missing_poll = missing_poll
        self._lock = trio.Lock()  # one look at the file at a time
        self._users = 0
        self._lot = trio.lowlevel.ParkingLot()
        self._leader = False
        self._changed = trio.Event()
        self._closed: str | None = None
        self._dir_fd = -1  # the file's directory, held while it is watched
        self._rewatch_at = -math.inf

    @property
    def name(self) -> str:
        return "/".join(self.parts)

    @property
    def end_index(self) -> int:
        """Index one past the last byte seen (the API's ``readIndex``)."""
        return self._view.end_index

    @property
    def oldest_index(self) -> int:
        """Index of the oldest byte still readable."""
        return self._view.oldest_index

    @property
    def size(self) -> int:
        """Bytes of the current file seen."""
        return self._view.size

    @property
    def exists(self) -> bool:
        """Whether the path named a file at the last look."""
        return self._view.exists

    @property
    def closed(self) -> bool:
        """Whether its server is gone."""
        return self._closed is not None

    @property
    def dir_fd(self) -> int:
        """The directory's descriptor while it is watched (-1 otherwise)."""
        return self._dir_fd

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
        """Close everything held: nobody reads any more (so no worker thread runs)."""
        self._stream.let_go()
        self._unwatch()

    def _unwatch(self) -> None:
        if self._watch is not None:
            self._watch.remove(self)
        if self._dir_fd >= 0:
            os.close(self._dir_fd)
            self._dir_fd = -1
        self._rewatch_at = -math.inf

    def close(self, reason: str = "this server is gone") -> None:
        """The server is gone: stop watching, wake every waiter with ``reason``; every
        later call raises it (descriptors close with the last user)."""
        self._closed = reason
        if self._watch is not None:
            self._watch.remove(self)
        self._changed.set()
        self._lot.unpark_all()

    def poke(self) -> None:
        """The file may have changed: the waiting leader looks again."""
        self._changed.set()

    def _check_open(self) -> None:
        if self._closed is not None:
            raise NotFound(self._closed, field="server")

    # -- looking at the file ------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn`` of the stream in a worker thread (one at a time); wakes the waiters
        when the end moved."""
        async with self._lock:
            self._check_open()
            before = self._view.end_index
            try:
                return await trio.to_thread.run_sync(fn, *args, limiter=self._threads)
            finally:
                self._view = self._stream.view()
                if self._view.end_index != before:
                    self._lot.unpark_all()

    async def refresh(self) -> bool:
        """Look at the path: follow a rotation, learn the size; wake the waiters if the
        end moved (returned). Raises the refusal of a path that may not be read."""
        with self.using():
            before = self.end_index
            await self._run(self._stream.refresh)
            return self.end_index != before

    async def read(self, offset: int, limit: int) -> ConsoleChunk:
        """Up to ``limit`` bytes from ``offset``; if those bytes are gone, from the oldest
        byte still readable (``old_read_index`` then differs from ``offset``). Below the
        end it always makes progress: bytes, or a later ``old_read_index``."""
        with self.using():
            return await self._run(self._stream.read, offset, limit)

    async def wait_beyond(self, offset: int) -> None:
        """Return as soon as ``end_index > offset`` (at once if it already is).
        Cancellable; always a checkpoint. Raises a refusal met on the way, and the
        reason once the follower is closed."""
        with self.using():
            await self.refresh()
            while self.end_index <= offset:
                self._check_open()
                if self._leader:
                    await self._lot.park()
                    continue
                self._leader = True
                try:
                    await self._watch_directory()
                    await self._wait_change()
                    await self.refresh()
                finally:
                    self._leader = False
                    self._lot.unpark_all()  # another waiter leads if this one leaves

    async def _wait_change(self) -> None:
        """Until the watch pokes (or the interval's end)."""
        watched = self._watch is not None and self._watch.watched(self)
        with trio.move_on_after(self._safety if watched else self._missing_poll):
            await self._changed.wait()
        self._changed = trio.Event()

    async def _watch_directory(self) -> None:
        """Give the file's directory to the watch, unless it watches it; a directory
        that cannot be watched is tried again after ``safety_interval``."""
        watch = self._watch
        if watch is None or watch.watched(self) or trio.current_time() < self._rewatch_at:
            return
        self._unwatch()
        self._rewatch_at = trio.current_time() + self._safety
        root, parent = self._root, self.parts[:-1]
        try:
            fd = await trio.to_thread.run_sync(open_dir, root, parent, limiter=self._threads)
        except OSError:
            return  # not there (yet): looked at every missing_poll
        self._dir_fd = fd
        if self._closed is None:
            watch.add_file(self, self.parts[-1], WATCH_EVENTS, self.poke)

    def statistics(self) -> LogFollowerStatistics:
        return LogFollowerStatistics(
            users=self._users,
            watching=self._dir_fd >= 0 or self._leader,
            end_index=self.end_index,
            oldest_index=self.oldest_index,
            rotations=self._view.rotations,
        )

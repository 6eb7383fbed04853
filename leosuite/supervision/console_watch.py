"""Telling each console when its child wrote, and each followed log file when it changed:
one inotify descriptor for all of them.

Each console's directory is watched for ``IN_MODIFY`` (an event names the file, and a
watch on the directory outlives renames in it); the watch is added through the
directory descriptor the console holds, so it is the directory the console writes in,
wherever that was moved. Other files (:meth:`ConsoleWatch.add_file`) are watched the
same way, with the events they name. After a wakeup the loop sleeps ``batch_delay`` so
that a child writing all the time costs at most one wakeup per delay, then refreshes
every entry named by an event, and all of them when the kernel's queue overflowed. An
entry that cannot be watched (the user's inotify watch limit, or a directory gone) is
refreshed every ``poll_interval`` instead, and every entry every ``safety_interval`` in
any case.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import msgspec
import trio
from inotify_simple import INotify, flags

from leosuite.supervision.console_disk import CURRENT
from leosuite.supervision.console_punch import punch_all

__all__ = ["ConsoleWatch", "ConsoleWatchStatistics", "HasDir", "Watchable"]

log = logging.getLogger(__name__)


class Watchable(Protocol):
    """What the watch needs of a console."""

    defer_punches: bool

    @property
    def dir_fd(self) -> int: ...

    def refresh(self) -> bool: ...

    def take_punches(self) -> list[tuple[int, int, int]]: ...


class HasDir(Protocol):
    """What the watch needs of any watched file: its directory's descriptor."""

    @property
    def dir_fd(self) -> int: ...


#: Events of its directory that end a watch (the directory moved, deleted, unwatched).
_LOST = flags.IGNORED | flags.MOVE_SELF | flags.DELETE_SELF


@dataclass(slots=True, frozen=True)
class _Entry:
    name: str  # the file's name in its directory: events naming it count
    mask: int
    on_change: Callable[[], object]


class ConsoleWatchStatistics(msgspec.Struct, frozen=True, kw_only=True):
    consoles: int
    watched: int  # by inotify
    polled: int  # refreshed on a timer only
    wakeups: int
    overflows: int  # times the kernel's event queue overflowed
    files: int = 0  # other watched files (followed log files)


class ConsoleWatch:
    """Refreshes the consoles (and files) added to it while :meth:`run` runs."""

    def __init__(
        self,
        *,
        batch_delay: float = 0.02,
        poll_interval: float = 1.0,
        safety_interval: float = 5.0,
    ) -> None:
        self._batch_delay = batch_delay
        self._poll_interval = poll_interval
        self._safety_interval = safety_interval
        self._consoles: set[Watchable] = set()
        self._entries: dict[HasDir, _Entry] = {}
        self._wds: dict[HasDir, int] = {}
        self._by_wd: dict[int, set[HasDir]] = {}
        self._polled: set[HasDir] = set()
        self._ino: Any = None  # the INotify while running (None: every entry polled)
        self._running = False
        self._warned = False
        self._wakeups = 0
        self._overflows = 0
        self._punches: list[tuple[int, int, int]] = []
        self._warned_punch = False

    def add(self, console: Watchable) -> None:
        """Refresh ``console`` when its file changes (from :meth:`run` on)."""
        if console not in self._consoles:
            self._consoles.add(console)
            console.defer_punches = True  # run in a worker thread by this watch
            entry = _Entry(CURRENT, flags.MODIFY, partial(self._refresh_console, console))
            self._entries[console] = entry
            self._watch(console)

    def add_file(self, item: HasDir, name: str, mask: int, on_change: Callable[[], object]) -> None:
        """Call ``on_change`` when events of ``mask`` name ``name`` in the directory
        ``item.dir_fd`` (or that directory goes), or on the timers when it cannot be
        watched; a file added again is watched again (its directory may have changed)."""
        self.remove(item)
        self._entries[item] = _Entry(name, mask, on_change)
        self._watch(item)

    def watched(self, item: HasDir) -> bool:
        """Whether inotify watches ``item``'s directory now (else the timers refresh it)."""
        return item in self._wds

    def remove(self, item: HasDir) -> None:
        """Refresh ``item`` no more (its directory's watch goes with its last user)."""
        self._entries.pop(item, None)
        self._polled.discard(item)
        if item in self._consoles:
            console: Watchable = item
            self._consoles.discard(console)
            console.defer_punches = False
            self._punches.extend(console.take_punches())
        wd = self._wds.pop(item, None)
        if wd is None:
            return
        sharing = self._by_wd.get(wd, set())
        sharing.discard(item)
        if not sharing:
            self._by_wd.pop(wd, None)
            if self._ino is not None:
                with contextlib.suppress(OSError):  # gone with its directory already
                    self._ino.rm_watch(wd)

    def _watch(self, item: HasDir) -> None:
        dir_fd = item.dir_fd
        if not self._running or dir_fd < 0:
            return
        if self._ino is None:
            self._polled.add(item)
            return
        # MASK_ADD: entries sharing a directory keep each other's events.
        mask = self._entries[item].mask | flags.ONLYDIR | flags.MASK_ADD
        try:
            wd: int = self._ino.add_watch(f"/proc/self/fd/{dir_fd}", mask)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning(
                    "cannot watch a console or log file directory (%s): such files are "
                    "read every %g s instead (raise fs.inotify.max_user_watches)",
                    exc.strerror or exc,
                    self._poll_interval,
                )
            self._polled.add(item)
            return
        self._wds[item] = wd
        self._by_wd.setdefault(wd, set()).add(item)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Watch until cancelled; started once every console added so far is watched."""
        try:
            ino = INotify(nonblocking=True)
        except OSError as exc:  # the user's limit of inotify instances
            log.warning(
                "cannot watch console files (%s): they are read every %g s instead",
                exc.strerror or exc,
                self._poll_interval,
            )
            ino = None
        self._ino = ino
        self._running = True
        try:
            for item in list(self._entries):
                self._watch(item)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._timers)
                task_status.started()
                if ino is None:
                    await trio.sleep_forever()
                await self._events(ino)
        finally:
            self._running = False
            self._ino = None
            for fd, _, _ in self._punches:  # not run: the next opening finds the same start
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._punches.clear()
            self._wds.clear()
            self._by_wd.clear()
            self._polled.clear()
            if ino is not None:
                trio.lowlevel.notify_closing(ino.fileno())
                ino.close()

    async def _events(self, ino: Any) -> None:
        while True:
            await trio.lowlevel.wait_readable(ino.fileno())
            await trio.sleep(self._batch_delay)
            self._wakeups += 1
            # timeout=0: the default waits in poll(), blocking the whole trio thread.
            self.handle(ino.read(timeout=0))
            await self._punch()

    def handle(self, events: Iterable[Any]) -> None:
        """Refresh the entries that ``events`` (inotify_simple events) name."""
        dirty: set[HasDir] = set()
        for event in events:
            if event.mask & flags.Q_OVERFLOW:
                self._overflows += 1
                dirty.update(self._entries)
            elif event.mask & _LOST:  # the directory is gone or moved: poll what was there
                lost = self._by_wd.pop(event.wd, set())
                if lost and not event.mask & flags.IGNORED and self._ino is not None:
                    with contextlib.suppress(OSError):
                        self._ino.rm_watch(event.wd)
                for item in lost:
                    self._wds.pop(item, None)
                    self._polled.add(item)
                dirty.update(item for item in lost if item not in self._consoles)
            else:
                for item in self._by_wd.get(event.wd, ()):
                    entry = self._entries.get(item)
                    if entry is not None and event.name == entry.name:
                        dirty.add(item)
        self._refresh(dirty)

    async def _timers(self) -> None:
        safety_at = trio.current_time() + self._safety_interval
        while True:
            await trio.sleep(self._poll_interval)
            if trio.current_time() >= safety_at:
                safety_at = trio.current_time() + self._safety_interval
                self._refresh(self._entries)
            else:
                self._refresh(self._polled)
            await self._punch()

    def _refresh(self, items: Iterable[HasDir]) -> None:
        for item in list(items):
            entry = self._entries.get(item)
            if entry is None:
                continue
            try:
                entry.on_change()
            except Exception:  # one file's bug must not stop the others' refreshes
                log.exception("console or log file refresh failed")

    def _refresh_console(self, console: Watchable) -> None:
        console.refresh()
        self._punches.extend(console.take_punches())

    async def _punch(self) -> None:
        """Run the queued punches in a worker thread (the watch waits for them: that
        bounds the work however fast servers write)."""
        if not self._punches:
            return
        jobs, self._punches = self._punches, []
        with trio.CancelScope(shield=True):  # each job owns a descriptor to close
            failed = await trio.to_thread.run_sync(punch_all, jobs)
        if failed and not self._warned_punch:
            self._warned_punch = True
            log.warning("console retention: cannot punch a hole: %s", failed[0].strerror)

    def statistics(self) -> ConsoleWatchStatistics:
        return ConsoleWatchStatistics(
            consoles=len(self._consoles),
            watched=len(self._wds),
            polled=len(self._polled),
            wakeups=self._wakeups,
            overflows=self._overflows,
            files=len(self._entries) - len(self._consoles),
        )

"""Telling each console when its child wrote: one inotify descriptor for all of them.

Each console's directory is watched for ``IN_MODIFY`` (an event names the file, and a
watch on the directory outlives renames in it); the watch is added through the
directory descriptor the console holds, so it is the directory the console writes in,
wherever that was moved. After a wakeup the loop sleeps ``batch_delay`` so that a
child writing all the time costs at most one wakeup per delay, then refreshes every
console named by an event, and all of them when the kernel's queue overflowed. A
console that cannot be watched (the user's inotify watch limit) is refreshed every
``poll_interval`` instead, and every console every ``safety_interval`` in any case.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from typing import Any, Protocol

import msgspec
import trio
from inotify_simple import INotify, flags

from leosuite.supervision.console_disk import CURRENT
from leosuite.supervision.console_punch import punch_all

__all__ = ["ConsoleWatch", "ConsoleWatchStatistics", "Watchable"]

log = logging.getLogger(__name__)


class Watchable(Protocol):
    """What the watch needs of a console."""

    defer_punches: bool

    @property
    def dir_fd(self) -> int: ...

    def refresh(self) -> bool: ...

    def take_punches(self) -> list[tuple[int, int, int]]: ...


class ConsoleWatchStatistics(msgspec.Struct, frozen=True, kw_only=True):
    consoles: int
    watched: int  # by inotify
    polled: int  # refreshed on a timer only
    wakeups: int
    overflows: int  # times the kernel's event queue overflowed


class ConsoleWatch:
    """Refreshes the consoles added to it while :meth:`run` runs."""

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
        self._wds: dict[Watchable, int] = {}
        self._by_wd: dict[int, set[Watchable]] = {}
        self._polled: set[Watchable] = set()
        self._ino: Any = None  # the INotify while running (None: every console polled)
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
            self._watch(console)

    def remove(self, console: Watchable) -> None:
        """Refresh ``console`` no more (its directory's watch goes with its last user)."""
        self._consoles.discard(console)
        self._polled.discard(console)
        console.defer_punches = False
        self._punches.extend(console.take_punches())
        wd = self._wds.pop(console, None)
        if wd is None:
            return
        sharing = self._by_wd.get(wd, set())
        sharing.discard(console)
        if not sharing:
            self._by_wd.pop(wd, None)
            if self._ino is not None:
                with contextlib.suppress(OSError):  # gone with its directory already
                    self._ino.rm_watch(wd)

    def _watch(self, console: Watchable) -> None:
        dir_fd = console.dir_fd
        if not self._running or dir_fd < 0:
            return
        if self._ino is None:
            self._polled.add(console)
            return
        try:
            wd: int = self._ino.add_watch(f"/proc/self/fd/{dir_fd}", flags.MODIFY | flags.ONLYDIR)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning(
                    "cannot watch a console directory (%s): such consoles are read every "
                    "%g s instead (raise fs.inotify.max_user_watches)",
                    exc.strerror or exc,
                    self._poll_interval,
                )
            self._polled.add(console)
            return
        self._wds[console] = wd
        self._by_wd.setdefault(wd, set()).add(console)

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
            for console in list(self._consoles):
                self._watch(console)
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
        """Refresh the consoles that ``events`` (inotify_simple events) name."""
        dirty: set[Watchable] = set()
        for event in events:
            if event.mask & flags.Q_OVERFLOW:
                self._overflows += 1
                dirty.update(self._consoles)
            elif event.mask & flags.IGNORED:  # the directory is gone: poll what was there
                for console in self._by_wd.pop(event.wd, ()):
                    self._wds.pop(console, None)
                    self._polled.add(console)
            elif event.name == CURRENT:
                dirty.update(self._by_wd.get(event.wd, ()))
        self._refresh(dirty)

    async def _timers(self) -> None:
        safety_at = trio.current_time() + self._safety_interval
        while True:
            await trio.sleep(self._poll_interval)
            if trio.current_time() >= safety_at:
                safety_at = trio.current_time() + self._safety_interval
                self._refresh(self._consoles)
            else:
                self._refresh(self._polled)
            await self._punch()

    def _refresh(self, consoles: Iterable[Watchable]) -> None:
        for console in list(consoles):
            try:
                console.refresh()
                self._punches.extend(console.take_punches())
            except Exception:  # one console's bug must not stop the others' refreshes
                log.exception("console refresh failed")

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
        )

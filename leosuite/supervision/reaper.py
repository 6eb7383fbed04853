"""The daemon as child subreaper: orphans from a server's tree come to it, and it reaps them.

When a process dies, the kernel hands its children to the nearest *ancestor* marked
``PR_SET_CHILD_SUBREAPER`` (else to init), at that very moment. While a fleet runs the
daemon is marked (:meth:`ChildReaper.run`), so a server's descendant that outlives its
parent (a double fork, a ``setsid`` daemonizer) becomes a child of the daemon rather
than of init, and the daemon reaps it once it ends. Marking a process changes nothing
for those orphaned before: the orphans of a daemon that was killed stay with init
(the tag of :mod:`.escapers` still finds them when their server stops).

The daemon must then reap children it never spawned, and must never reap the ones it
did: a server's own process is reaped by its :class:`~.handle.ProcessHandle`, which
alone learns its exit code, and a helper the daemon runs itself is reaped by its
owner. Reaping is per process, so what must be left alone is one per-process registry,
:data:`REAPER`. A zombie child is reaped unless:

- it is in the daemon's own session: the daemon spawned it itself (servers get a new
  session; a server's descendants can never join the daemon's);
- it is a registered server process (:meth:`ChildReaper.add_leader`);
- it leads its own session while a spawn is under way: it may be the server being
  spawned, whose pid is not registered yet;
- it already led its own session when the first reaper started (a server the image
  before a reload left running, not re-adopted yet) and :meth:`ChildReaper.release_inherited`
  was not called since.

Every zombie is pinned with a pidfd before it is looked at, so a pid reused meanwhile is
never reaped.

A pass lists every child of the daemon (a thousand running servers among them), so it
runs when ``SIGCHLD`` says a child changed (passes at least :data:`REAP_SPACING` apart:
a thousand exits at once cost a few passes), when woken, and every
:data:`REAP_INTERVAL` in case a signal was missed; where no ``SIGCHLD`` handler can be
set (not the main thread), every :data:`TICK_WITHOUT_SIGNAL`.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import logging
import os
import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import NamedTuple

import trio

__all__ = [
    "REAPER",
    "REAP_INTERVAL",
    "REAP_SPACING",
    "TICK_WITHOUT_SIGNAL",
    "ChildReaper",
    "ProcStat",
    "is_subreaper",
    "read_stat",
    "set_subreaper",
]

log = logging.getLogger(__name__)

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37

#: Seconds between two passes over the daemon's zombie children when nothing wakes it.
REAP_INTERVAL = 60.0
#: The longest pause between passes when ``SIGCHLD`` cannot wake the reaper.
TICK_WITHOUT_SIGNAL = 1.0
#: The shortest pause between two passes (a burst of exits: one pass for many).
REAP_SPACING = 0.1


class ProcStat(NamedTuple):
    """The fields of ``/proc/<pid>/stat`` the reaper and the escaper search use."""

    state: str
    ppid: int
    pgid: int
    session: int
    #: Clock ticks from boot to the process's start: tells a reused pid apart.
    start: int


def read_stat(pid: int) -> ProcStat | None:
    """``/proc/<pid>/stat`` parsed (the command name may hold ``)`` and spaces: split at
    the last ``)``); None when the process is gone or the line is not understood."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read()
    except OSError:
        return None
    fields = raw.rpartition(b")")[2].split()
    try:
        return ProcStat(
            state=fields[0].decode("ascii", "replace"),
            ppid=int(fields[1]),
            pgid=int(fields[2]),
            session=int(fields[3]),
            start=int(fields[19]),
        )
    except (IndexError, ValueError):
        return None


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, arg: object) -> None:
    if _libc().prctl(option, arg, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def is_subreaper() -> bool:
    """Whether this process is marked child subreaper."""
    value = ctypes.c_int(0)
    _prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(value))
    return value.value != 0


def set_subreaper(on: bool) -> None:
    """Mark (or unmark) this process child subreaper; OSError where the kernel refuses."""
    _prctl(_PR_SET_CHILD_SUBREAPER, int(on))


def _children() -> list[int]:
    """The pids of this process's children, zombies included (each thread has its own)."""
    pids: set[int] = set()
    files = glob.glob(f"/proc/{os.getpid()}/task/*/children")
    if not files:  # a kernel without CONFIG_PROC_CHILDREN: look at every process
        me = os.getpid()
        for entry in os.listdir("/proc"):
            stat = read_stat(int(entry)) if entry.isdigit() else None
            if stat is not None and stat.ppid == me:
                pids.add(int(entry))
        return sorted(pids)
    for name in files:
        with contextlib.suppress(OSError), open(name) as children:
            pids.update(int(pid) for pid in children.read().split())
    return sorted(pids)


class ChildReaper:
    """Reaps the zombie children the daemon did not spawn (see the module docstring)."""

    def __init__(self) -> None:
        self._leaders: set[int] = set()
        self._spawning = 0
        #: (pid, start) of the session leaders that were children when the first run began.
        self._inherited: set[tuple[int, int]] = set()
        self._runners = 0
        self._was_subreaper = False
        self._wake: trio.Event | None = None
        #: How many orphans were reaped since the process started.
        self.reaped = 0
        self._warned = False  # a failing pass was logged once
        #: A zombie was left for a spawn under way: the end of the spawn wakes a pass.
        self._deferred = False
        #: The SIGCHLD disposition found when the handler was set (None: not set).
        self._old_sigchld: Callable[[int, FrameType | None], object] | int | None = None

    # ------------------------------------------------------------ what is left alone

    @contextlib.contextmanager
    def spawning(self) -> Iterator[None]:
        """Around a server's spawn: leave session leaders alone until it is registered."""
        self._spawning += 1
        try:
            yield
        finally:
            self._spawning -= 1
            if not self._spawning and self._deferred:
                self._deferred = False
                self.wake()

    def add_leader(self, pid: int) -> None:
        """A server's process: its handle reaps it."""
        self._leaders.add(pid)

    def discard_leader(self, pid: int) -> None:
        """The server's process was reaped by its handle (or never will be by this image)."""
        self._leaders.discard(pid)

    def leaders(self) -> frozenset[int]:
        """The registered server processes (alive, or exited and not reaped yet)."""
        return frozenset(self._leaders)

    def release_inherited(self) -> None:
        """Re-adoption is over: children found at the start are reaped like any other
        orphan from now on, unless registered as servers."""
        self._inherited.clear()
        self.wake()

    # ------------------------------------------------------------ reaping

    def wake(self) -> None:
        """Look at the zombie children now rather than at the next tick."""
        if self._wake is not None:
            self._wake.set()

    def reap_now(self) -> int:
        """Reap every zombie child the rules allow; return how many."""
        me, own_session = os.getpid(), os.getsid(0)
        reaped = 0
        for pid in _children():
            if pid not in self._leaders and self._reap(pid, me, own_session):
                reaped += 1
        self.reaped += reaped
        return reaped

    def _reap(self, pid: int, me: int, own_session: int) -> bool:
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return False  # gone (reaped by its owner) since the listing
        try:
            # the pidfd pins the pid: from here on it names this process only
            stat = read_stat(pid)
            if stat is None or stat.state != "Z" or stat.ppid != me:
                return False
            if stat.session == own_session or pid in self._leaders:
                return False
            if stat.session == pid and (self._spawning or (pid, stat.start) in self._inherited):
                self._deferred = self._deferred or bool(self._spawning)
                return False
            try:
                return os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG) is not None
            except ChildProcessError:
                return False
        finally:
            os.close(pidfd)

    def _begin(self) -> None:
        """The first runner marks the process and notes the children it inherited."""
        self._runners += 1
        if self._runners > 1:
            return
        me, own_session = os.getpid(), os.getsid(0)
        self._inherited = set()
        for pid in _children():
            stat = read_stat(pid)
            if stat is not None and stat.session == pid != own_session and stat.ppid == me:
                self._inherited.add((pid, stat.start))
        try:
            self._was_subreaper = is_subreaper()
            if not self._was_subreaper:
                set_subreaper(True)
        except OSError as exc:
            log.warning("cannot become child subreaper: %s (orphans go to init)", exc)
        self._catch_sigchld()

    def _catch_sigchld(self) -> None:
        """Wake a pass on every ``SIGCHLD`` (the handler only schedules the wake-up);
        where no handler may be set, the passes tick instead."""
        token = trio.lowlevel.current_trio_token()
        old = signal.getsignal(signal.SIGCHLD)

        def on_sigchld(signum: int, frame: FrameType | None) -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(self.wake, idempotent=True)
            if callable(old):
                old(signum, frame)

        try:
            signal.signal(signal.SIGCHLD, on_sigchld)
        except ValueError:  # not the main thread
            return
        self._old_sigchld = old if old is not None else signal.SIG_DFL

    @property
    def catches_sigchld(self) -> bool:
        """Whether ``SIGCHLD`` wakes the passes (else they tick every second)."""
        return self._old_sigchld is not None

    def _end(self) -> None:
        """The last runner puts the mark and the signal disposition back as it found them."""
        self._runners -= 1
        if self._runners > 0:
            return
        self._inherited.clear()
        if self._old_sigchld is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGCHLD, self._old_sigchld)
            self._old_sigchld = None
        if not self._was_subreaper:
            with contextlib.suppress(OSError):
                set_subreaper(False)

    async def run(
        self,
        *,
        interval: float = REAP_INTERVAL,
        task_status: trio.TaskStatus[ChildReaper] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Be child subreaper and reap orphans when a child changes (``SIGCHLD``), when
        woken, and every ``interval`` seconds (at most :data:`TICK_WITHOUT_SIGNAL` when
        no signal wakes it), until cancelled; the mark is taken back on the way out."""
        self._begin()
        try:
            task_status.started(self)
            while True:
                if not self.catches_sigchld:
                    interval = min(interval, TICK_WITHOUT_SIGNAL)
                last = trio.current_time()
                wake = self._wake = trio.Event()
                try:
                    self.reap_now()
                except OSError as exc:  # out of descriptors for /proc: the next pass tries
                    if not self._warned:
                        self._warned = True
                        log.warning("cannot look for orphaned processes: %s", exc)
                with trio.move_on_after(interval):
                    await wake.wait()
                await trio.sleep_until(last + min(REAP_SPACING, interval))
        finally:
            self._wake = None
            self._end()


#: The one reaper of this process (subreaper marks and reaping are per process).
REAPER = ChildReaper()

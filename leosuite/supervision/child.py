"""The process shell: one server process from its spawn (or re-adoption) to its exit.

:func:`run_child` is one task that spawns the server (or takes over a process the
daemon finds still running after it restarted), watches its console for the ready
pattern while it starts, waits for its exit through a pidfd, and on cancellation
sends a shielded TERM-wait-KILL to the whole process **group** that always waits for
the exit. A server with a cgroup (:mod:`.cgroups`) joins it before its program runs;
every SIGKILL to its group goes to every process in the cgroup too, and once its
process has exited whatever is left in the cgroup is killed (said in the console and
the log). A child the daemon lets go (:attr:`Child.detached`: a reload, or an exit
that leaves the servers running) is neither signalled nor waited for: it runs on.
Once the process has exited, its descendants that left the group (found by the tag
it was spawned with, see :mod:`.escapers`) get the same stop signal and SIGKILL.

The console is never read for the server's sake: the child writes its file itself.
The ready search reads what was written since the spawn, a chunk at a time, and
stops once found or once told to.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

import trio

from leosuite.errors import Conflict, LeosuiteError, ProcessError
from leosuite.supervision.cgroups import Group
from leosuite.supervision.cgroups_limits import oom_reason, sweep_group
from leosuite.supervision.console_file import ConsoleChunk
from leosuite.supervision.escapers import Lineage, stop_escapers
from leosuite.supervision.handle import ProcessHandle
from leosuite.supervision.process import (
    StopStart,
    describe_exit,
    safe_marker,
    spawn,
)
from leosuite.supervision.reaper import REAPER
from leosuite.supervision.spec import LaunchSpec, compile_ready_pattern
from leosuite.supervision.stdin_fifo import StdinFifo

__all__ = ["CHUNK_BYTES", "Child", "ChildConsole", "run_child", "stop_group"]

#: The most console bytes the ready search reads at once.
CHUNK_BYTES = 256 * 1024
#: Bytes of the previous chunk kept so that a ready pattern split across reads matches.
READY_TAIL_BYTES = 4096

log = logging.getLogger(__name__)


class ChildConsole(Protocol):
    """What the process shell needs of a server's console."""

    @property
    def directory(self) -> Path: ...

    @property
    def end_index(self) -> int: ...

    def marker(self, text: str) -> None: ...

    def open_for_child(self) -> int: ...

    def start_segment(self) -> None: ...

    def read(self, offset: int, limit: int) -> ConsoleChunk: ...

    async def wait_beyond(self, offset: int) -> None: ...


class Child:
    """One server process (the leader of its own process group)."""

    def __init__(
        self,
        handle: ProcessHandle,
        spec: LaunchSpec,
        stdin: StdinFifo,
        *,
        adopted: bool,
        tag: str | None = None,
        group: Group | None = None,
        oom_since: int = 0,
    ) -> None:
        self.handle = handle
        self.spec = spec
        self.pid = handle.pid
        self.stdin = stdin
        #: Found running when the daemon started, not spawned by this daemon.
        self.adopted = adopted
        self._ready = (
            compile_ready_pattern(spec.ready_pattern) if spec.ready_pattern is not None else None
        )
        #: Search the output for the ready pattern (cleared on a match or by the supervisor).
        self.want_ready = self._ready is not None and not adopted
        #: Let go: the process runs on without the daemon (never signalled, not waited for).
        self.detached = False
        #: What finds its descendants outside the group (None: not tagged, or unreadable).
        self.lineage = (
            Lineage.of(handle.pid, handle.identity.start_time, tag) if tag is not None else None
        )
        #: Killed, not stopped: its escapers get SIGKILL at once too.
        self.killed = trio.Event()
        #: The server's cgroup, and its OOM kill counter when this process started.
        self.group = group
        self.oom_since = oom_since
        #: The kernel killed a process of the group for its memory limit during the run.
        self.out_of_memory = False

    @property
    def returncode(self) -> int | None:
        """The exit code once exited (negative: the signal), None while it runs or when
        the code cannot be known."""
        return self.handle.returncode

    @property
    def exited(self) -> bool:
        return self.handle.exited

    def signal(self, sig: int) -> bool:
        """Send ``sig`` to the whole process group; False when it is gone. SIGKILL also
        goes to every process in the server's cgroup (one pass)."""
        if sig == signal.SIGKILL and self.group is not None:
            try:
                self.group.kill(rounds=1)
            except OSError as exc:
                log.warning("server process %d: cannot kill its cgroup: %s", self.pid, exc)
        return self.handle.signal_group(sig)

    def exit_description(self) -> str:
        """How the process ended, as the console, the state and ``last_error`` say it."""
        if self.out_of_memory:
            return oom_reason(self.spec.memory_mb)
        return describe_exit(self.returncode)

    def kill(self) -> bool:
        """SIGKILL the whole group (False when it is gone); from now on its escapers
        get SIGKILL at once, without the stop signal's wait."""
        self.killed.set()
        return self.signal(signal.SIGKILL)

    async def write_line(self, data: bytes, *, deadline: float = 5.0) -> None:
        """Write ``data`` (a whole line with its newline) to the server's stdin.

        Raises Conflict at once when the server has closed its stdin or does not read
        it (the FIFO is full); never blocks the daemon for longer than ``deadline``.
        """
        await self.stdin.send(data, deadline=deadline)

    def search_ready(self, tail: bytes, data: bytes, on_ready: Callable[[], None]) -> bytes:
        """Look for the ready pattern in ``tail + data``; return the new tail."""
        assert self._ready is not None
        window = tail + data if tail else data
        if self._ready.search(window) is not None:
            self.want_ready = False
            on_ready()
            return b""
        return window[-READY_TAIL_BYTES:]


async def _spawn(
    spec: LaunchSpec,
    console: ChildConsole,
    stdin: StdinFifo,
    tag: str | None,
    group: Group | None,
) -> ProcessHandle:
    """A fresh FIFO and the console file as the child's stdin and output; the process
    is registered with the reaper before anything else can look at it."""
    try:
        await trio.to_thread.run_sync(stdin.create)
        console.start_segment()
        stdin_fd = stdin.open_child_end()
    except OSError as exc:
        raise ProcessError(f"cannot prepare the console input: {exc.strerror or exc}") from exc
    try:
        try:
            output_fd = console.open_for_child()
        except LeosuiteError as exc:
            raise ProcessError(exc.message) from exc
        try:
            with REAPER.spawning():
                popen = await spawn(
                    spec, stdin_fd=stdin_fd, output_fd=output_fd, tag=tag, group=group
                )
                handle = ProcessHandle.for_child(popen, user=spec.user)
                REAPER.add_leader(handle.pid)
        finally:
            os.close(output_fd)
    finally:
        os.close(stdin_fd)
    return handle


async def _watch_ready(
    child: Child, console: ChildConsole, position: int, on_ready: Callable[[], None]
) -> None:
    tail = b""
    while child.want_ready:
        await console.wait_beyond(position)
        try:
            chunk = console.read(position, CHUNK_BYTES)
        except LeosuiteError:
            return  # the console is closed: the server is going away
        if chunk.next_read_index <= position:
            return
        position = chunk.next_read_index
        if child.want_ready:
            tail = child.search_ready(tail, chunk.data, on_ready)


async def run_child(
    spec: LaunchSpec,
    console: ChildConsole,
    stdin: StdinFifo | None = None,
    *,
    on_spawn: Callable[[Child], None],
    on_ready: Callable[[], None],
    adopt: ProcessHandle | None = None,
    record: Callable[[Child], Awaitable[None]] | None = None,
    tag: str | None = None,
    group: tuple[Group, int] | None = None,
    task_status: trio.TaskStatus[Child] = trio.TASK_STATUS_IGNORED,
) -> int | None:
    """Spawn (or, given ``adopt``, take over) one server process and wait for its exit;
    return its exit code (None when it cannot be known).

    ``on_spawn(child)`` runs synchronously right after the spawn, then ``record(child)``
    is awaited, then ``task_status.started(child)``. When the leader exits, whatever is
    left of its group is SIGKILLed. If cancelled, or if anything after the spawn
    raises, the group gets ``spec.stop_signal``, then SIGKILL after
    ``spec.stop_timeout``: signals are best effort and the exit is always waited for,
    unless the child was detached. Spawn errors raise ProcessError before ``started()``.
    The process is spawned with ``tag`` in its environment; an adopted one is expected
    to carry it. After the exit, the processes outside the group that carry it are
    stopped too (not for a detached child). ``group`` is the server's cgroup with its
    OOM kill counter before the start: the spawn joins it, and after the exit what is
    left in it is killed.
    """
    if stdin is None:
        stdin = StdinFifo(console.directory / "stdin")
    ready_from = console.end_index
    if adopt is None:
        handle = await _spawn(spec, console, stdin, tag, group[0] if group else None)
    else:
        handle = adopt
        REAPER.add_leader(handle.pid)
    child = Child(handle, spec, stdin, adopted=adopt is not None, tag=tag)
    if group is not None:
        child.group, child.oom_since = group
    try:
        if adopt is None:  # a running server gets no marker: it could split one of its lines
            as_user = f" as user {spec.user}" if spec.user else ""
            safe_marker(console, f"started pid {child.pid}{as_user}")
        on_spawn(child)
        if record is not None:
            await record(child)
        async with trio.open_nursery() as nursery:
            if child.want_ready:
                nursery.start_soon(_watch_ready, child, console, ready_from, on_ready)
            task_status.started(child)
            await handle.wait()
            nursery.cancel_scope.cancel()
        _kill_leftovers(child, console)
    finally:
        with trio.CancelScope(shield=True):
            await _end_child(child, console)
    return handle.returncode


def _kill_leftovers(child: Child, console: ChildConsole) -> None:
    """SIGKILL what is left of the group once its leader exited (its pgid stays taken
    while any member lives, so it cannot name another process)."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except OSError as exc:
        message = f"cannot signal process group {child.pid}: {exc.strerror or exc}"
        log.warning("server process %d: %s", child.pid, message)
        safe_marker(console, message)


def _signal_best_effort(child: Child, sig: int, console: ChildConsole) -> bool:
    """Signal the group during cleanup; a failure is logged and marked, never raised,
    so that the wait for the exit still happens. True when the signal was sent."""
    try:
        return child.signal(sig)
    except ProcessError as exc:
        log.warning("server process %d: %s", child.pid, exc.message)
        safe_marker(console, exc.message)
        return False


async def _end_child(child: Child, console: ChildConsole) -> None:
    """Shielded cleanup: stop signal, wait, SIGKILL, wait for the leader's exit.

    The last wait is unbounded once SIGKILL is delivered (as ``trio.run_process``
    does); a leader that cannot be signalled at all is waited for one more stop
    timeout and then left, with an error in the log, rather than hang the daemon.
    A detached child is left as it is.
    """
    handle = child.handle
    if child.detached and not handle.exited:
        handle.close()
        return
    spec = child.spec
    if not handle.exited:
        _signal_best_effort(child, spec.stop_signal, console)
        with trio.move_on_after(spec.stop_timeout):
            await handle.wait()
    if not handle.exited:
        if _signal_best_effort(child, signal.SIGKILL, console):
            await handle.wait()
        else:
            with trio.move_on_after(spec.stop_timeout):
                await handle.wait()
            if not handle.exited:
                log.error("server process %d could not be killed: left running", child.pid)
                safe_marker(console, f"pid {child.pid} could not be killed: left running")
                handle.close()
                return
        _kill_leftovers(child, console)
    await _sweep_group(child, console)
    safe_marker(console, child.exit_description())
    handle.close()
    REAPER.discard_leader(child.pid)
    await _stop_escapers(child, console)


async def _sweep_group(child: Child, console: ChildConsole) -> None:
    """Once the process has exited: kill what is left in its cgroup (said in the console)."""
    if child.group is None:
        return
    try:
        left, child.out_of_memory = await sweep_group(child.group, child.oom_since)
    except OSError as exc:
        log.warning("server process %d: cannot sweep its cgroup: %s", child.pid, exc)
        return
    if left:
        text = f"killed {left} process(es) left in the server's cgroup"
        log.info("server process %d: %s", child.pid, text)
        safe_marker(console, text)


async def _stop_escapers(child: Child, console: ChildConsole) -> None:
    """The same escalation for the descendants that left the group (best effort)."""
    if child.lineage is None:
        return

    def note(text: str) -> None:
        log.info("server process %d: %s", child.pid, text)
        safe_marker(console, text)

    spec = child.spec
    try:
        await stop_escapers(
            child.lineage,
            stop_signal=spec.stop_signal,
            timeout=spec.stop_timeout,
            hurry=child.killed,
            note=note,
        )
    except OSError as exc:
        log.warning("server process %d: cannot look for its escapers: %s", child.pid, exc)


async def stop_group(
    child: Child,
    exited: trio.Event,
    console: ChildConsole,
    *,
    first: StopStart,
    sig: int | None = None,
) -> None:
    """Stop ``child`` by escalation; return once ``exited`` is set.

    Stop command (or a wait, when the user typed it), then ``sig`` (default the
    spec's stop signal) to the group, then SIGKILL to the group: each step waits up
    to ``spec.stop_timeout`` for the exit. A force kill elsewhere cuts it short.
    """
    spec = child.spec
    timeout = spec.stop_timeout
    if first == "command" and spec.stop_command is not None:
        with trio.move_on_after(timeout):
            try:
                await child.write_line(spec.stop_command.encode() + b"\n", deadline=timeout)
            except Conflict as exc:
                safe_marker(console, f"cannot send the stop command: {exc.message}")
            else:
                await exited.wait()
    elif first == "wait":
        with trio.move_on_after(timeout):
            await exited.wait()
    if exited.is_set():
        return
    sig = spec.stop_signal if sig is None else sig
    safe_marker(console, f"sending {signal.Signals(sig).name} to the process group")
    child.signal(sig)
    with trio.move_on_after(timeout):
        await exited.wait()
    if exited.is_set():
        return
    safe_marker(console, "stop timeout: sending SIGKILL to the process group")
    child.signal(signal.SIGKILL)
    await exited.wait()

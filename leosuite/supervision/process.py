"""The process shell: spawn one server in its own session, capture its console, signal its group.

Why ``trio.lowlevel.open_process`` and not ``nursery.start(trio.run_process, ...)``:
the supervisor needs, in one task and in this order, the exit status, a drain of
the output pipe (which grandchildren may still hold open), the ``exited`` marker
after the last byte of output, and on cancellation a shielded TERM-wait-KILL sent to
the whole process **group** that always waits for the exit. ``run_process`` would
split that across its own task and a ``deliver_cancel`` callback and still need a
second task to learn the exit code; :func:`run_child` is that one task, and it has
the same shape as ``run_process`` (spawn before ``started()``, shielded cleanup).

The capture loop does no per-line work: it reads 256 KiB at a time and appends
each chunk to the console log. While the server is starting it also searches the
chunk (plus a small tail of the previous one, for a match split across chunks) for
the ready pattern, and stops searching once found or once told to.

Every spawn first repeats :func:`~leosuite.supervision.spec.check_launch` (a planted
symbolic link fails the start); a server with a ``user`` gets its directory handed to
that user and runs with that user's uid, gid and groups.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import resource
import shlex
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

import trio

from leosuite.errors import Conflict, InvalidInput, LeosuiteError, ProcessError
from leosuite.supervision.fs import add_search_bit, reown_tree
from leosuite.supervision.run_as import RunAs, spawn_options
from leosuite.supervision.spec import LaunchSpec, check_launch, compile_ready_pattern

__all__ = [
    "CHUNK_BYTES",
    "Child",
    "StopStart",
    "ConsoleSink",
    "child_environment",
    "describe_exit",
    "format_argv",
    "raise_nofile_limit",
    "run_child",
    "spawn",
    "stop_group",
]

CHUNK_BYTES = 256 * 1024
PIPE_BYTES = 1024 * 1024
#: Bytes of the previous chunk kept so that a ready pattern split across reads matches.
READY_TAIL_BYTES = 4096

log = logging.getLogger(__name__)


#: Where a stop begins: write the stop command; wait (it was typed); or signal at once.
StopStart = Literal["command", "wait", "signal"]


class ConsoleSink(Protocol):
    """What the process shell needs of a console log."""

    def append(self, data: bytes | bytearray) -> None: ...

    def marker(self, text: str) -> None: ...


def safe_marker(console: ConsoleSink, text: str) -> None:
    """Write a marker line; a failing log (disk full) must not break supervision."""
    with contextlib.suppress(LeosuiteError):
        console.marker(text)


def child_environment(extra: dict[str, str], run_as: RunAs | None = None) -> dict[str, str]:
    """The daemon's environment without ``LEOSUITE_*`` (secrets), with the home and
    names of the user it runs as, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEOSUITE_")}
    if run_as is not None and not run_as.is_daemon:
        env.update(run_as.environment())
    env.update(extra)
    return env


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (best effort); return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def describe_exit(code: int) -> str:
    """``exited with code 3`` or ``killed by SIGKILL``."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exited with code {code}"


def _spawn_error(spec: LaunchSpec, exc: OSError, run_as: RunAs | None) -> ProcessError:
    program = spec.argv[0]
    switching = run_as is not None and not run_as.is_daemon
    if switching and exc.errno == errno.EPERM and exc.filename is None:
        message = f"cannot switch to user {spec.user}: the daemon needs CAP_SETUID and CAP_SETGID"
    elif exc.errno in (errno.EMFILE, errno.ENFILE):
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        message = (
            f"out of file descriptors ({errno.errorcode[exc.errno]}, soft limit {soft}): "
            "raise LimitNOFILE / ulimit -n"
        )
    elif isinstance(exc, FileNotFoundError) and exc.filename == spec.cwd:
        message = f"working directory does not exist: {spec.cwd}"
    elif isinstance(exc, FileNotFoundError):
        message = f"command not found: {program}"
    elif isinstance(exc, PermissionError) and switching:
        message = f"user {spec.user} may not use {exc.filename or program} (permission denied)"
    elif isinstance(exc, PermissionError):
        message = f"permission denied: {exc.filename or program}"
    else:
        message = f"cannot start {program}: {exc.strerror or exc}"
    return ProcessError(message)


def _check_launchable(spec: LaunchSpec, run_as: RunAs | None) -> None:
    if not spec.argv or not spec.argv[0]:
        raise ProcessError("the command is empty")
    if run_as is not None and not run_as.is_daemon:
        return  # the daemon's view of the directory is not the user's: the spawn tells
    if not os.path.isdir(spec.cwd):
        raise ProcessError(f"working directory does not exist: {spec.cwd}")
    if not os.access(spec.cwd, os.W_OK | os.X_OK):
        raise ProcessError(f"working directory is not writable: {spec.cwd}")


async def _prepare(spec: LaunchSpec) -> RunAs | None:
    """Repeat the launch checks; hand the server directory to the user it runs as."""
    try:
        run_as = check_launch(spec)
    except InvalidInput as exc:
        raise ProcessError(exc.message) from None
    if run_as is not None and spec.server_dir is not None:
        directory = Path(spec.server_dir)
        try:
            if spec.search_from is not None and not run_as.is_daemon:
                top = Path(spec.search_from)
                between = directory.relative_to(top).parents[:-1]
                add_search_bit(top, *(top / part for part in reversed(between)))
            await trio.to_thread.run_sync(reown_tree, directory, run_as.uid, run_as.gid)
        except OSError as exc:
            raise ProcessError(
                f"cannot hand the server directory to user {run_as.name}: "
                f"{exc.strerror or exc} (the daemon needs CAP_CHOWN, and to take it back "
                "from another user CAP_DAC_READ_SEARCH)"
            ) from exc
    _check_launchable(spec, run_as)
    return run_as


async def spawn(spec: LaunchSpec) -> trio.Process:
    """Spawn ``spec.argv`` in a new session with piped stdin and merged stdout/stderr,
    as ``spec.user`` if it names one."""
    run_as = await _prepare(spec)
    try:
        proc = await trio.lowlevel.open_process(
            list(spec.argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=spec.cwd,
            env=child_environment(spec.env, run_as),
            **spawn_options(run_as),
        )
    except OSError as exc:
        raise _spawn_error(spec, exc, run_as) from exc
    _grow_pipe(proc.stdout)
    return proc


def _grow_pipe(stream: Any) -> None:
    # best effort: capped by /proc/sys/fs/pipe-max-size and per-user pipe limits
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


class Child:
    """One spawned server process (the leader of its own process group)."""

    def __init__(self, proc: trio.Process, spec: LaunchSpec) -> None:
        self._proc = proc
        self.spec = spec
        self.pid: int = proc.pid
        self._ready = (
            compile_ready_pattern(spec.ready_pattern) if spec.ready_pattern is not None else None
        )
        #: Search the output for the ready pattern (cleared on a match or by the supervisor).
        self.want_ready = self._ready is not None
        self._group_gone = False
        self._stdin_closed = False
        self._stdin_lock = trio.Lock()
        self._eof = trio.Event()
        #: Bytes the console log refused (an I/O error), counted not retried.
        self.lost_bytes = 0

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    def signal(self, sig: int) -> bool:
        """Send ``sig`` to the whole process group; False when it is gone."""
        if self._group_gone:
            return False
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            return False
        except PermissionError as exc:
            of_user = f" of user {self.spec.user}" if self.spec.user else ""
            raise ProcessError(
                f"cannot signal process group {self.pid}{of_user}: the daemon needs CAP_KILL"
            ) from exc
        except OSError as exc:
            raise ProcessError(f"cannot signal process group {self.pid}: {exc}") from exc
        return True

    async def write_line(self, data: bytes) -> None:
        """Write ``data`` (a whole line with its newline) to stdin.

        Raises Conflict when the child has closed its stdin. The caller bounds the
        wait with a cancel scope: a child that never reads blocks once the pipe is full.
        """
        if self._stdin_closed or self._proc.stdin is None:
            raise Conflict("the server has closed its console input (stdin)")
        async with self._stdin_lock:
            try:
                await self._proc.stdin.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self._stdin_closed = True
                raise Conflict("the server has closed its console input (stdin)") from exc

    async def _capture(self, console: ConsoleSink, on_ready: Callable[[], None]) -> None:
        stream = self._proc.stdout
        assert stream is not None
        receive = stream.receive_some
        append = console.append
        tail: bytes | bytearray = b""
        try:
            while True:
                data = await receive(CHUNK_BYTES)
                if not data:
                    break
                try:
                    append(data)
                except LeosuiteError:
                    self.lost_bytes += len(data)  # never stall the child on a log error
                if self.want_ready:
                    tail = self._search_ready(tail, data, on_ready)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self._eof.set()

    def _search_ready(
        self, tail: bytes | bytearray, data: bytes | bytearray, on_ready: Callable[[], None]
    ) -> bytes | bytearray:
        assert self._ready is not None
        window = tail + data if tail else data
        if self._ready.search(window) is not None:
            self.want_ready = False
            on_ready()
            return b""
        return window[-READY_TAIL_BYTES:]


async def run_child(
    spec: LaunchSpec,
    console: ConsoleSink,
    *,
    on_spawn: Callable[[Child], None],
    on_ready: Callable[[], None],
    drain_timeout: float = 2.0,
    task_status: trio.TaskStatus[Child] = trio.TASK_STATUS_IGNORED,
) -> int:
    """Spawn, capture and wait for one server process; return its exit code.

    ``on_spawn(child)`` runs synchronously right after the spawn (before any output
    is read), then ``task_status.started(child)``. When the leader exits, whatever is
    left of its group is SIGKILLed and the output drained to EOF (at most
    ``drain_timeout``). If cancelled, or if anything after the spawn raises, the group
    gets ``spec.stop_signal``, then SIGKILL after ``spec.stop_timeout``: signals are
    best effort and the exit is always waited for. Spawn errors raise ProcessError
    before ``started()``.
    """
    proc = await spawn(spec)
    child = Child(proc, spec)
    try:
        as_user = f" as user {spec.user}" if spec.user else ""
        safe_marker(console, f"started pid {proc.pid}{as_user}")
        on_spawn(child)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(child._capture, console, on_ready)
            task_status.started(child)
            await proc.wait()
            _signal_best_effort(child, signal.SIGKILL, console)  # leftovers of the group
            child._group_gone = True
            with trio.move_on_after(drain_timeout):
                await child._eof.wait()
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await _end_child(child, proc, console)
    code = proc.returncode
    assert code is not None
    return code


def _signal_best_effort(child: Child, sig: int, console: ConsoleSink) -> bool:
    """Signal the group during cleanup; a failure is logged and marked, never raised,
    so that the wait for the exit still happens. True when the signal was sent."""
    try:
        return child.signal(sig)
    except ProcessError as exc:
        log.warning("server process %d: %s", child.pid, exc.message)
        safe_marker(console, exc.message)
        return False


async def _end_child(child: Child, proc: trio.Process, console: ConsoleSink) -> None:
    """Shielded cleanup: stop signal, wait, SIGKILL, wait for the leader's exit.

    The last wait is unbounded once SIGKILL is delivered (as ``trio.run_process``
    does); a leader that cannot be signalled at all is waited for one more stop
    timeout and then left, with an error in the log, rather than hang the daemon.
    """
    spec = child.spec
    if proc.returncode is None:
        _signal_best_effort(child, spec.stop_signal, console)
        with trio.move_on_after(spec.stop_timeout):
            await proc.wait()
    if proc.returncode is None:
        if _signal_best_effort(child, signal.SIGKILL, console):
            await proc.wait()
        else:
            with trio.move_on_after(spec.stop_timeout):
                await proc.wait()
            if proc.returncode is None:
                log.error("server process %d could not be killed: left running", child.pid)
                safe_marker(console, f"pid {child.pid} could not be killed: left running")
    else:
        _signal_best_effort(child, signal.SIGKILL, console)  # leftovers of the group
    child._group_gone = True
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                await stream.aclose()
    if proc.returncode is not None:
        safe_marker(console, describe_exit(proc.returncode))


def format_argv(argv: list[str]) -> str:
    return shlex.join(argv)


async def stop_group(
    child: Child,
    exited: trio.Event,
    console: ConsoleSink,
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
                await child.write_line(spec.stop_command.encode() + b"\n")
            except Conflict:
                safe_marker(console, "stdin is closed: cannot send the stop command")
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

"""One supervised server: its state machine, power actions, console commands and restarts.

Every power action goes through :meth:`Supervisor.request`, which fails fast with
``Conflict("busy: ...")`` while another action is in progress; ``force_kill`` bypasses
that and pre-empts a graceful stop. An action runs as a task in the supervisor's own
nursery, so a caller that gives up waiting (a cancelled HTTP request) never leaves
the server half-stopped. Why a process is stopping is recorded as it is asked for
(``stop_requested``), never inferred from the exit: an exit nobody asked for is a
crash, anything else is a stop.

An unexpected exception in one of the server's tasks (a bug, or a signal the daemon
may not send) ends only that server's task tree: its process is stopped and waited
for, the error is logged once with its traceback, and the server rests in CRASHED with
the reason in ``last_error``, startable again; the supervisor keeps serving.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections.abc import Callable
from functools import partial
from typing import Protocol

import trio

from leosuite.errors import Conflict, InvalidInput, LeosuiteError, ProcessError, TooLarge
from leosuite.supervision.child import Child, ChildConsole, run_child, stop_group
from leosuite.supervision.escapers import server_tag
from leosuite.supervision.handle import ProcessHandle, ProcessIdentity
from leosuite.supervision.process import StopStart, describe_exit, format_argv, safe_marker
from leosuite.supervision.spec import (
    LaunchSpec,
    ServerStatus,
    StateChange,
    StateChanges,
    check_launch,
    validate_spec,
)
from leosuite.supervision.states import (
    COMMAND_STATES,
    FAULT_STATE,
    POWER_ACTIONS,
    STARTABLE_STATES,
    STOPPABLE_STATES,
    STOPPED_STATES,
    Backoff,
    PowerAction,
    State,
    allowed_actions,
    decide_restart,
    transition,
)
from leosuite.supervision.stats import GroupStats
from leosuite.supervision.stdin_fifo import StdinFifo

__all__ = ["ACTIONS", "Action", "ProcessBook", "Supervisor"]

Action = PowerAction
ACTIONS: tuple[str, ...] = POWER_ACTIONS

log = logging.getLogger(__name__)


class ProcessBook(Protocol):
    """Where a server's live process is recorded, so that a restarted daemon finds it."""

    async def record(self, server: str, identity: ProcessIdentity, started_at: float) -> None: ...

    async def forget(self, server: str, pid: int) -> None: ...


class Supervisor:
    """Supervises one server. Start :meth:`run` with ``nursery.start`` before anything else."""

    def __init__(
        self,
        name: str,
        spec: LaunchSpec,
        console: ChildConsole,
        *,
        stdin: StdinFifo | None = None,
        book: ProcessBook | None = None,
        now: Callable[[], float] = time.time,
        backoff: Backoff = Backoff(),  # noqa: B008 (frozen)
        command_max_bytes: int = 4096,
        command_deadline: float = 5.0,
    ) -> None:
        validate_spec(spec)
        self.name = name
        self._spec = spec
        self._console = console
        self._stdin = stdin if stdin is not None else StdinFifo(console.directory / "stdin")
        self._book = book
        self._now = now
        self._backoff = backoff
        self._command_max_bytes = command_max_bytes
        self._command_deadline = command_deadline
        self._state = State.STOPPED
        self._changed = trio.Event()
        self._child: Child | None = None
        self._instance_done: trio.Event | None = None
        self._stop_requested: str | None = None
        self._busy: str | None = None
        self._closing = False
        #: close() or shutdown() was called: no start, even after a recovery.
        self._final = False
        self._quick_crashes = 0
        self._restarts = 0
        self._backoff_scope: trio.CancelScope | None = None
        self._backoff_deadline: float | None = None
        self._last_error: str | None = None
        self._exit_code: int | None = None
        self._started_wall: float | None = None
        self._started_clock = 0.0
        #: The wall-clock spawn time of the process being re-adopted.
        self._adopted_at: float | None = None
        #: leave() was called: the process is let go, not stopped.
        self._leaving = False
        self._stats: GroupStats | None = None
        #: Every state change of this server; see :meth:`subscribe`.
        self.changes = StateChanges()
        self._nursery: trio.Nursery | None = None
        self._scope: trio.CancelScope | None = None
        self._closed = trio.Event()

    # ------------------------------------------------------------ service

    async def run(
        self, *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Own this server's task tree until cancelled or :meth:`close`d.

        On the way out a live process gets its stop signal, then SIGKILL after its stop
        timeout (call :meth:`shutdown` first for a graceful stop).
        """
        if self._nursery is not None or self._closed.is_set():
            raise RuntimeError("Supervisor.run() called twice")
        try:
            with trio.CancelScope() as scope:
                self._scope = scope
                while True:
                    fault = await self._run_tree(task_status)
                    task_status = trio.TASK_STATUS_IGNORED
                    self._recover(fault)
        finally:
            self._nursery = None
            self._closing = True
            self.changes.close()
            self._closed.set()

    async def _run_tree(self, task_status: trio.TaskStatus[Supervisor]) -> Exception:
        """Own the task tree until one of its tasks raises; return what it raised."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started(self)
                await trio.sleep_forever()
        except Exception as exc:  # the group of the tasks' errors; Cancelled passes
            return exc
        finally:
            self._nursery = None
        raise AssertionError("unreachable: the tree only ends by an error or a cancel")

    def _recover(self, fault: Exception) -> None:
        """After a task raised: the tree is gone and its process was stopped and waited
        for by the process shell; log once, rest in FAULT_STATE with the reason."""
        leaf = fault
        while isinstance(leaf, BaseExceptionGroup) and isinstance(leaf.exceptions[0], Exception):
            leaf = leaf.exceptions[0]
        detail = leaf.message if isinstance(leaf, LeosuiteError) else type(leaf).__name__
        reason = f"internal error ({detail}): the server was stopped"
        log.error("server %s: %s", self.name, reason, exc_info=fault)
        self._last_error = reason
        self._stop_requested = None  # a fault, not a requested stop
        self._busy = None
        self._cancel_backoff()
        self._child = None
        self._stats = None
        if self._instance_done is not None:
            self._instance_done.set()
        self._closing = self._final
        safe_marker(self._console, reason)
        self._publish(self._state, FAULT_STATE, reason)

    def close(self) -> None:
        """Cancel :meth:`run` (see there); :meth:`wait_closed` waits for it."""
        self._closing = self._final = True
        if self._scope is not None:
            self._scope.cancel()

    def leave(self) -> None:
        """Cancel :meth:`run` and let the process run on without the daemon: it is not
        signalled, and its record stays so that the next daemon re-adopts it."""
        self._leaving = True
        if self._child is not None:
            self._child.detached = True
        self.close()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def shutdown(self) -> None:
        """Stop for good: no more starts; a live process is stopped gracefully (stop
        command, stop signal, SIGKILL, each step within the stop timeout). Returns when
        no process is left."""
        self._closing = self._final = True
        while True:
            if self._busy is None and self._state in STOPPED_STATES:
                return
            if self._busy is None and self._state in STOPPABLE_STATES:
                with contextlib.suppress(Conflict, ProcessError):  # a fault rests it
                    await self._request("stop", "daemon shutdown")
                continue
            await self._changed.wait()

    # ------------------------------------------------------------ observing

    @property
    def state(self) -> State:
        return self._state

    @property
    def spec(self) -> LaunchSpec:
        """The spec the next start will use."""
        return self._spec

    @property
    def busy(self) -> str | None:
        """The power action in progress, if any."""
        return self._busy

    @property
    def stop_requested(self) -> str | None:
        return self._stop_requested

    @property
    def pgid(self) -> int | None:
        """The process group to sample while a process is alive."""
        child = self._child
        return child.pid if child is not None and child.returncode is None else None

    def set_stats(self, stats: GroupStats | None) -> None:
        """Called by the fleet's sampler."""
        self._stats = stats if self._child is not None else None

    def status(self) -> ServerStatus:
        child = self._child
        stats = self._stats
        restart_in = None
        if self._state is State.BACKOFF and self._backoff_deadline is not None:
            restart_in = max(0.0, self._backoff_deadline - trio.current_time())
        return ServerStatus(
            name=self.name,
            state=self._state,
            pid=child.pid if child is not None else None,
            started_at=self._started_wall,
            uptime=trio.current_time() - self._started_clock if child is not None else None,
            exit_code=self._exit_code,
            restarts=self._restarts,
            last_error=self._last_error,
            stop_requested=self._stop_requested,
            cpu=stats.cpu_percent if stats is not None else None,
            memory=stats.rss_bytes if stats is not None else None,
            threads=stats.threads if stats is not None else None,
            restart_in=restart_in,
        )

    async def wait_state(self, *states: State) -> State:
        """Wait until the current state is one of ``states``. A state that is left in
        the same instant (CRASHED on its way to BACKOFF) may be missed: use
        :meth:`subscribe` to see every change."""
        while self._state not in states:
            await self._changed.wait()
        return self._state

    def subscribe(self, max_buffer: int = 64) -> trio.MemoryReceiveChannel[StateChange]:
        """A channel of every later state change (drop-if-full); close it to unsubscribe."""
        return self.changes.subscribe(max_buffer)

    def update_spec(self, spec: LaunchSpec) -> None:
        """New settings; they apply from the next start."""
        validate_spec(spec)
        self._spec = spec

    # ------------------------------------------------------------ power actions

    async def request(self, action: Action) -> State:
        """Perform one power action; return the state once it is done.

        ``start`` returns once the process is spawned (STARTING or RUNNING; CRASHED
        with ``last_error`` when it cannot be spawned); ``stop`` (stop command, wait,
        stop signal, wait, SIGKILL), ``kill`` (SIGTERM, wait, SIGKILL) and
        ``restart`` wait for the exit. Raises Conflict when the state does not allow
        the action, or ``busy`` while another one runs; InvalidInput (naming the
        setting) when a start finds a confined path leading out of the server's
        directory or its user gone. ``force_kill`` (SIGKILL to
        the group) is always allowed and pre-empts a graceful stop. If the caller is
        cancelled the action still completes.
        """
        if action not in ACTIONS:
            raise InvalidInput(f"unknown action {action!r}", field="action")
        if action == "force_kill":
            await self._force_kill()
            return self._state
        reason = "restart requested" if action == "restart" else f"{action} requested"
        await self._request(action, reason)
        return self._state

    async def _request(self, action: Action, reason: str) -> None:
        nursery = self._require_nursery()
        if self._busy is not None:
            raise Conflict(f"busy: {self._busy} in progress")
        self._check_allowed(action)
        if action in ("start", "restart"):
            check_launch(self._spec)  # a refusal names the setting; the spawn checks again
        self._busy = action
        done = trio.Event()
        failure: list[LeosuiteError] = []
        nursery.start_soon(self._run_action, action, reason, done, failure)
        await done.wait()
        if failure:
            raise failure[0]

    def _check_allowed(self, action: Action) -> None:
        """Refuse what :func:`allowed_actions` does not list for the current state."""
        state = self._state
        if self._closing and action in ("start", "restart"):
            raise Conflict("the server is shutting down")
        if action in allowed_actions(state):
            return
        if action == "start":
            raise Conflict(f"already {state.value}")
        if action == "restart":
            raise Conflict(state.value)
        raise Conflict(f"not running ({state.value})")

    async def _run_action(
        self, action: Action, reason: str, done: trio.Event, failure: list[LeosuiteError]
    ) -> None:
        try:
            if action == "start":
                await self._do_start(reason, manual=True)
            elif action == "stop":
                await self._do_stop(reason, first="command")
            elif action == "kill":
                await self._do_stop(reason, first="signal", sig=signal.SIGTERM)
            else:
                if self._state in STOPPABLE_STATES:
                    await self._do_stop(reason, first="command")
                self._check_allowed("start")
                await self._do_start(reason, manual=True)
        except ProcessError as exc:
            failure.append(exc)
            if self._state is State.STOPPING:
                raise  # a stop that cannot signal would stay STOPPING: a fault of the tree
        except LeosuiteError as exc:
            failure.append(exc)
        finally:
            self._release_busy()
            done.set()

    async def _do_start(self, reason: str, *, manual: bool) -> None:
        if self._state not in STARTABLE_STATES:
            raise Conflict(f"already {self._state.value}")
        self._cancel_backoff()
        if manual:
            self._quick_crashes = 0
            self._last_error = None
        spec = self._spec
        self._stop_requested = None
        self._exit_code = None
        done = self._instance_done = trio.Event()
        self._set_state(State.STARTING, reason)
        safe_marker(self._console, f"starting: {format_argv(spec.argv)}")
        try:
            await self._require_nursery().start(self._instance, spec, done)
        except ProcessError as exc:
            self._last_error = exc.message
            safe_marker(self._console, f"failed to start: {exc.message}")
            if self._state is State.STOPPING:  # force-killed while spawning
                self._set_state(State.STOPPED, f"stopped before start ({self._stop_requested})")
            else:
                self._set_state(State.CRASHED, f"failed to start: {exc.message}")
            done.set()

    async def _do_stop(self, reason: str, *, first: StopStart, sig: int | None = None) -> None:
        state = self._state
        if state is State.BACKOFF:
            self._cancel_backoff()
            self._stop_requested = reason
            self._set_state(State.STOPPED, f"{reason}: pending restart cancelled")
            return
        child, done = self._child, self._instance_done
        if state not in (State.STARTING, State.RUNNING) or child is None or done is None:
            raise Conflict(f"not running ({state.value})")
        self._stop_requested = reason
        self._set_state(State.STOPPING, reason)
        safe_marker(self._console, f"stopping ({reason})")
        await stop_group(child, done, self._console, first=first, sig=sig)

    async def _typed_stop(
        self, child: Child, done: trio.Event, first: StopStart, *, owns_busy: bool
    ) -> None:
        try:
            await stop_group(child, done, self._console, first=first)
        finally:
            if owns_busy:
                self._release_busy()

    async def _force_kill(self) -> None:
        state = self._state
        if state is State.BACKOFF:
            self._cancel_backoff()
            self._stop_requested = "force kill"
            self._set_state(State.STOPPED, "force kill: pending restart cancelled")
            return
        if state in STOPPED_STATES:
            return  # nothing alive to kill
        self._stop_requested = "force kill"
        if state is not State.STOPPING:
            self._set_state(State.STOPPING, "force kill")
        safe_marker(self._console, "force kill: sending SIGKILL to the process group")
        done = self._instance_done
        if self._child is not None:
            self._child.kill()  # else: still spawning; _on_spawn kills it
        if done is not None:
            await done.wait()

    # ------------------------------------------------------------ after a daemon restart

    async def adopt(self, identity: ProcessIdentity, started_at: float) -> bool:
        """Take over the server's process found still running when the daemon started;
        False (nothing changed) when that process is gone or the pid names another one.
        The server is then RUNNING with its uptime kept, as if this daemon had started it."""
        handle = ProcessHandle.adopt(identity, user=self._spec.user)
        if handle is None:
            return False
        try:
            nursery = self._require_nursery()
            if self._busy is not None or self._state is not State.STOPPED:
                raise Conflict(f"cannot re-adopt: already {self._state.value}")
        except BaseException:
            handle.close()
            raise
        self._busy = "start"
        try:
            self._stop_requested = None
            self._exit_code = None
            self._adopted_at = started_at
            done = self._instance_done = trio.Event()
            self._set_state(State.STARTING, f"re-adopting pid {handle.pid}")
            await nursery.start(partial(self._instance, self._spec, done, adopt=handle))
        finally:
            self._release_busy()
        return True

    def exited_while_away(self) -> None:
        """The server's process ended while the daemon was not running: CRASHED with the
        reason, then its restart policy applies (autostart too, once at rest)."""
        if self._state is not State.STOPPED:
            return
        how = "exited while the daemon was not running (exit code unknown)"
        safe_marker(self._console, how)
        self._last_error = how
        self._set_state(State.CRASHED, how)
        self._after_crash(self._spec, None, ran_for=self._backoff.stable_after)

    # ------------------------------------------------------------ console input

    async def send_command(self, line: str) -> None:
        """Write one line to the server's stdin.

        InvalidInput for a newline, carriage return or NUL; TooLarge over the size
        cap; Conflict when not running, when the child has closed its stdin, or when
        it does not read it within the command deadline. Typing the stop command is
        a requested stop (then escalated like ``stop`` if the server does not exit).
        """
        if not isinstance(line, str) or any(c in line for c in "\n\r\0"):
            raise InvalidInput(
                "a command is one line: no newline, carriage return or NUL", field="command"
            )
        try:
            data = line.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInput("the command is not valid text", field="command") from exc
        if len(data) > self._command_max_bytes:
            raise TooLarge(f"a command is at most {self._command_max_bytes} bytes")
        child, done = self._child, self._instance_done
        if self._state not in COMMAND_STATES or child is None or done is None:
            raise Conflict(f"not running ({self._state.value})")
        stop_command = child.spec.stop_command
        if stop_command is None or line.strip() != stop_command.strip():
            await self._write(child, data + b"\n")
            return
        # a typed stop command is a requested stop: record it before the write
        owns_busy = self._busy is None  # else: a start is just finishing its spawn
        if owns_busy:
            self._busy = "stop"
        self._stop_requested = "stop command typed"
        self._set_state(State.STOPPING, "stop command typed")
        safe_marker(self._console, "stopping (stop command typed)")
        first: StopStart = "signal"
        try:
            await self._write(child, data + b"\n")
            first = "wait"
        finally:
            self._require_nursery().start_soon(
                partial(self._typed_stop, child, done, first, owns_busy=owns_busy)
            )

    async def _write(self, child: Child, data: bytes) -> None:
        await child.write_line(data, deadline=self._command_deadline)

    # ------------------------------------------------------------ process lifecycle

    async def _instance(
        self,
        spec: LaunchSpec,
        done: trio.Event,
        *,
        adopt: ProcessHandle | None = None,
        task_status: trio.TaskStatus[Child],
    ) -> None:
        spawned: list[Child] = []

        def on_spawn(child: Child) -> None:
            spawned.append(child)
            if self._leaving:
                child.detached = True
            self._on_spawn(child)

        finished = False
        try:
            await run_child(
                spec,
                self._console,
                self._stdin,
                on_spawn=on_spawn,
                on_ready=self._on_ready,
                adopt=adopt,
                record=self._record,
                tag=server_tag(self.name, self._console.directory),
                task_status=task_status,
            )
            finished = True
        finally:
            if spawned:
                child = spawned[0]
                if not finished:  # cancelled: the supervisor is closing
                    self._closing = True
                    self._stop_requested = self._stop_requested or "supervisor closed"
                try:
                    if child.exited:
                        with trio.CancelScope(shield=True):
                            await self._forget(child)
                    if child.exited or not child.detached:
                        self._on_exit(child)
                finally:
                    done.set()

    async def _record(self, child: Child) -> None:
        """Record the live process so that a restarted daemon finds it (a failing store
        is logged: the server runs on, it just cannot be re-adopted)."""
        if self._book is None or child.adopted:
            return
        try:
            await self._book.record(self.name, child.handle.identity, self._started_wall or 0.0)
        except Exception:
            log.exception("server %s: cannot record its process %d", self.name, child.pid)

    async def _forget(self, child: Child) -> None:
        if self._book is None:
            return
        try:
            await self._book.forget(self.name, child.pid)
        except Exception:
            log.exception("server %s: cannot forget its process %d", self.name, child.pid)

    def _on_spawn(self, child: Child) -> None:
        self._child = child
        self._started_clock = trio.current_time()
        self._started_wall = self._now()
        if child.adopted and self._adopted_at is not None:
            ran = max(0.0, self._started_wall - self._adopted_at)
            self._started_wall = self._adopted_at
            self._started_clock -= ran
        self._adopted_at = None
        self._stats = None
        if self._state is State.STOPPING:  # force-killed while spawning
            child.kill()
        elif child.adopted:
            self._set_state(State.RUNNING, f"re-adopted pid {child.pid}")
        elif child.spec.ready_pattern is None:
            self._set_state(State.RUNNING, f"started pid {child.pid}")

    def _on_ready(self) -> None:
        if self._state is State.STARTING:
            self._set_state(State.RUNNING, "ready pattern seen")

    def _on_exit(self, child: Child) -> None:
        code = child.returncode
        ran_for = trio.current_time() - self._started_clock
        self._child = None
        self._stats = None
        self._exit_code = code
        how = describe_exit(code)
        if self._stop_requested is not None:
            if self._state is not State.STOPPING:
                self._set_state(State.STOPPING, self._stop_requested)
            self._set_state(State.STOPPED, f"{how} ({self._stop_requested})")
            return
        self._last_error = how
        self._set_state(State.CRASHED, how)
        self._after_crash(child.spec, code, ran_for=ran_for)

    def _after_crash(self, spec: LaunchSpec, code: int | None, *, ran_for: float) -> None:
        """Apply the restart policy to an exit nobody asked for."""
        if self._closing:
            return
        decision = decide_restart(
            mode=spec.restart,
            max_restarts=spec.max_restarts,
            quick_crashes=self._quick_crashes,
            exit_code=code,
            ran_for=ran_for,
            backoff=self._backoff,
        )
        self._quick_crashes = decision.quick_crashes
        if not decision.restart:
            safe_marker(self._console, f"not restarting: {decision.reason}")
            return
        safe_marker(self._console, decision.reason)
        self._set_state(State.BACKOFF, decision.reason)
        scope = self._backoff_scope = trio.CancelScope()
        deadline = self._backoff_deadline = trio.current_time() + decision.delay
        self._require_nursery().start_soon(self._restart_later, scope, deadline)

    async def _restart_later(self, scope: trio.CancelScope, deadline: float) -> None:
        with scope:
            await trio.sleep_until(deadline)
        if scope.cancel_called or self._backoff_scope is not scope:
            return
        self._backoff_scope = None
        if self._state is not State.BACKOFF or self._busy is not None or self._closing:
            return
        self._busy = "start"
        try:
            self._restarts += 1
            await self._do_start("automatic restart", manual=False)
        finally:
            self._release_busy()

    def _cancel_backoff(self) -> None:
        if self._backoff_scope is not None:
            self._backoff_scope.cancel()
        self._backoff_scope = None
        self._backoff_deadline = None

    # ------------------------------------------------------------ plumbing

    def _require_nursery(self) -> trio.Nursery:
        nursery = self._nursery
        if nursery is None:
            raise Conflict("the supervisor is not running")
        if nursery.cancel_scope.cancel_called:
            raise Conflict("busy: recovering from an internal error")
        return nursery

    def _release_busy(self) -> None:
        self._busy = None
        self._pulse()

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _set_state(self, new: State, reason: str) -> None:
        self._publish(self._state, transition(self._state, new), reason)

    def _publish(self, old: State, new: State, reason: str) -> None:
        self._state = new
        if new is not State.STARTING and self._child is not None:
            self._child.want_ready = False
        change = StateChange(
            server=self.name, old=old, new=new, reason=reason, timestamp=self._now()
        )
        self._pulse()
        self.changes.publish(change)

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

import logging
import signal
from functools import partial

import trio

from leosuite.errors import Conflict, InvalidInput, LeosuiteError, ProcessError, TooLarge
from leosuite.supervision.child import Child, stop_group
from leosuite.supervision.handle import ProcessHandle, ProcessIdentity
from leosuite.supervision.process import StopStart, format_argv, safe_marker
from leosuite.supervision.spec import (
    LaunchSpec,
    ServerStatus,
    StateChange,
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
    PowerAction,
    State,
    allowed_actions,
)
from leosuite.supervision.stats import GroupStats
from leosuite.supervision.supervisor_core import ProcessBook, SupervisorCore

__all__ = ["ACTIONS", "Action", "ProcessBook", "Supervisor"]

Action = PowerAction
ACTIONS: tuple[str, ...] = POWER_ACTIONS

log = logging.getLogger(__name__)


class Supervisor(SupervisorCore):
    """Supervises one server. Start :meth:`run` with ``nursery.start`` before anything else."""

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
            self._pulse()  # wakes a shutdown() waiting for a change

    async def _run_tree(self, task_status: trio.TaskStatus[Supervisor]) -> Exception:
        """Own the task tree until one of its tasks raises; return what it raised."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started(self)
                await trio.sleep_forever()
        except Exception as exc:  # the group of the tasks' errors; Cancelled passes
            return exc
        except BaseExceptionGroup as group:
            # The tree's own Cancelled can come out beside the error (a task that was
            # unwinding when it failed): the error is the fault; any outer cancel is
            # delivered again at the next checkpoint.
            _, errors = group.split(trio.Cancelled)
            if isinstance(errors, ExceptionGroup):
                return errors
            raise
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
        while not self._closed.is_set():  # closed: the tree ended, and its process with it
            if self.installing:
                await self._cancel_install("daemon shutdown")
                continue
            if self._busy is None and self._state in STOPPED_STATES:
                return
            if self._busy is None and self._state in STOPPABLE_STATES:
                try:
                    await self._request("stop", "daemon shutdown")
                    continue
                except (Conflict, ProcessError):  # a fault rests it; a tree ending closes it
                    pass
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

    async def wait_change(self) -> None:
        """Wait for the next change of state, of the action in progress or of an install."""
        await self._changed.wait()

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

        ``start`` returns once the process is spawned (STARTING or RUNNING; when it
        cannot be spawned, CRASHED with ``last_error``, then BACKOFF if the restart
        policy retries); ``stop`` (stop command, wait,
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
        if self.installing and action in ("stop", "kill", "force_kill"):
            await self._cancel_install(f"{action.replace('_', ' ')} requested")
            return self._state
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
        failed = await self._install(force=False)
        if failed is not None:
            self._not_installed(failed, done)
            return
        # The console shows the command as the type wrote it; the daemon log has it whole.
        log.info("server %s: starting %s", self.name, format_argv(spec.argv))
        safe_marker(self._console, f"starting: {format_argv(spec.shown or spec.argv)}")
        try:
            await self._require_nursery().start(self._instance, spec, done)
        except ProcessError as exc:
            self._last_error = exc.message
            safe_marker(self._console, f"failed to start: {exc.message}")
            if self._state is State.STOPPING:  # force-killed while spawning
                self._set_state(State.STOPPED, f"stopped before start ({self._stop_requested})")
                done.set()
                return
            self._set_state(State.CRASHED, f"failed to start: {exc.message}")
            done.set()
            # A launch that failed is a crash like any other: the restart policy applies.
            self._after_crash(spec, None, ran_for=0.0)

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

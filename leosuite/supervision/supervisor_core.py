"""The state and process lifecycle of one supervised server, under :class:`Supervisor`.

:class:`SupervisorCore` holds what a server's supervision knows (state, the live
child, restart bookkeeping) and what happens between a spawn and an exit: the
process shell runs, its spawn and exit move the state machine, an exit nobody asked
for meets the restart policy. :class:`~leosuite.supervision.supervisor.Supervisor`
adds the public surface (power actions, console input, re-adoption) on top.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Protocol

import trio

from leosuite.errors import Conflict, LeosuiteError
from leosuite.supervision.cgroups import Group
from leosuite.supervision.cgroups_limits import Limits, ServerLimits
from leosuite.supervision.child import Child, ChildConsole, run_child
from leosuite.supervision.escapers import server_tag
from leosuite.supervision.handle import ProcessHandle, ProcessIdentity
from leosuite.supervision.process import safe_marker
from leosuite.supervision.spec import (
    LaunchSpec,
    StateChange,
    StateChanges,
    validate_spec,
)
from leosuite.supervision.states import (
    STOPPED_STATES,
    Backoff,
    State,
    decide_restart,
    transition,
)
from leosuite.supervision.stats import GroupStats
from leosuite.supervision.stdin_fifo import StdinFifo

__all__ = ["ProcessBook", "SupervisorCore"]

log = logging.getLogger("leosuite.supervision.supervisor")


class ProcessBook(Protocol):
    """Where a server's live process is recorded, so that a restarted daemon finds it."""

    async def record(self, server: str, identity: ProcessIdentity, started_at: float) -> None: ...

    async def forget(self, server: str, pid: int) -> None: ...


class SupervisorCore:
    """State, lifecycle and plumbing of one server's supervision."""

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
        limits: ServerLimits | None = None,
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
        #: Where the server's cgroup is made (no limits, no cgroup when unavailable).
        self._limits = limits or ServerLimits()
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
        #: Runs the server's install (``force``: even when its steps are done already).
        self._installer: Callable[[bool], Awaitable[None]] | None = None
        #: The install under way: stop, kill, force kill and close cancel it.
        self._install_scope: trio.CancelScope | None = None

    # ------------------------------------------------------------ installs

    def set_installer(self, installer: Callable[[bool], Awaitable[None]] | None) -> None:
        """What runs before every start (an install whose steps are not done yet)."""
        self._installer = installer

    @property
    def stats(self) -> GroupStats | None:
        """The last resource sample of the running process group, if any."""
        return self._stats

    @property
    def cgroup(self) -> Group | None:
        """The cgroup of the live process, if it has one."""
        child = self._child
        return child.group if child is not None and child.returncode is None else None

    @property
    def installing(self) -> bool:
        return self._install_scope is not None

    async def install(self) -> str | None:
        """Run the install now, at rest only; the reason it failed ("" when cancelled),
        None when it is done. The server stays at rest throughout (its actions are
        ``busy``); a failure leaves it CRASHED with the reason in ``last_error``."""
        nursery = self._require_nursery()
        if self._busy is not None:
            raise Conflict(f"busy: {self._busy} in progress")
        if self._closing:
            raise Conflict("the server is shutting down")
        if self._state not in STOPPED_STATES:
            raise Conflict(f"stop the server first ({self._state.value})")
        self._busy = "install"
        done = trio.Event()
        outcome: list[str | None] = [""]  # cancelled, unless the install ends

        async def run() -> None:
            try:
                outcome[0] = failed = await self._install(force=True)
                if failed:
                    self._last_error = failed
                    if self._state is State.STOPPED:
                        self._set_state(State.CRASHED, failed)
                    else:  # already CRASHED: the new reason, on the same state
                        self._publish(self._state, self._state, failed)
            finally:
                self._release_busy()
                done.set()

        nursery.start_soon(run)
        await done.wait()
        return outcome[0]

    async def _install(self, *, force: bool) -> str | None:
        """The install hook; the reason it failed, "" when cancelled, None when done."""
        if self._installer is None:
            return None
        with trio.CancelScope() as scope:
            self._install_scope = scope
            self._pulse()  # ``installing`` changed: whoever waits on a change sees it
            try:
                await self._installer(force)
            except LeosuiteError as exc:
                message = exc.message
                return message if message.startswith("install") else f"install failed: {message}"
            finally:
                self._install_scope = None
        return "" if scope.cancelled_caught else None

    async def _cancel_install(self, reason: str) -> None:
        """Stop the install under way; a start it was part of ends STOPPED."""
        scope = self._install_scope
        if scope is None:
            return
        if self._state is State.STARTING:
            self._stop_requested = reason
            self._set_state(State.STOPPING, reason)
        scope.cancel()
        while self._busy is not None:
            await self._changed.wait()

    def _not_installed(self, failed: str, done: trio.Event) -> None:
        """A start whose install failed (CRASHED, no restart: it would fail again) or
        was cancelled (STOPPED)."""
        if failed:
            self._last_error = failed
            self._set_state(State.CRASHED, failed)
        else:
            if self._state is not State.STOPPING:
                self._set_state(State.STOPPING, "install cancelled")
            self._set_state(State.STOPPED, f"stopped before start ({self._stop_requested})")
        done.set()

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
        if adopt is None:
            wanted = Limits(spec.memory_mb, spec.cpu_percent, spec.pids_max)
            group = await self._limits.group_for_start(self.name, wanted)
        else:
            group = await self._limits.group_for_adopt(self.name)
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
                group=group,
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
        how = child.exit_description()
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

    async def _do_start(self, reason: str, *, manual: bool) -> None:
        """Spawn the server (the power action ``start``)."""
        raise NotImplementedError

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

    @contextlib.contextmanager
    def hold_at_rest(self, what: str) -> Iterator[None]:
        """Keep the server at rest for the block (its power actions and installs answer
        ``busy: <what>``); Conflict when it is not at rest or busy already."""
        if self._busy is not None:
            raise Conflict(f"busy: {self._busy} in progress")
        if self._closing:
            raise Conflict("the server is shutting down")
        if self._state not in STOPPED_STATES:
            raise Conflict(f"stop the server first ({self._state.value})")
        self._busy = what
        self._pulse()
        try:
            yield
        finally:
            self._release_busy()

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

"""The data the supervision engine takes (:class:`LaunchSpec`) and gives back
(:class:`ServerStatus`, :class:`StateChange`): frozen msgspec Structs, wire-ready;
:class:`StateChanges`, the bounded fan-out of state changes to subscribers; and
:func:`check_launch`, the checks every start repeats (confined paths, the user)."""

from __future__ import annotations

import functools
import os
import re
import signal
from collections.abc import Callable

import msgspec
import trio

from leosuite.errors import InvalidInput
from leosuite.supervision.fs import resolve_inside
from leosuite.supervision.run_as import RunAs, resolve_user
from leosuite.supervision.states import RESTART_MODES, State

__all__ = [
    "LaunchSpec",
    "ServerStatus",
    "StateChange",
    "StateChanges",
    "check_launch",
    "compile_ready_pattern",
    "validate_spec",
]


class LaunchSpec(msgspec.Struct, frozen=True, kw_only=True):
    """How to launch and stop one server; produced from its type and settings.

    ``env`` holds the variables added to the daemon's own environment (from which
    every ``LEOSUITE_*`` variable is removed before the child sees it).
    ``ready_pattern`` is a regex searched in the raw console bytes while starting.
    ``user`` is the system user to run as (None: the daemon's own); ``server_dir`` the
    server's own directory, which every path in ``confined`` (by the setting that names
    it) must resolve into, symlinks included, at every start.
    """

    argv: list[str]
    cwd: str
    env: dict[str, str] = msgspec.field(default_factory=dict)
    stop_command: str | None = None
    stop_signal: int = int(signal.SIGTERM)
    stop_timeout: float = 10.0
    ready_pattern: str | None = None
    restart: str = "on-failure"
    max_restarts: int = 5
    autostart: bool = False
    user: str | None = None
    server_dir: str | None = None
    #: The daemon's directory above ``server_dir``: from it down to ``server_dir``
    #: every directory is made passable (``o+x``) for a server with a ``user``.
    search_from: str | None = None
    confined: dict[str, str] = msgspec.field(default_factory=dict)
    #: The argv as the console's ``starting:`` line shows it (empty: ``argv``).
    shown: list[str] = msgspec.field(default_factory=list)
    #: Resource limits in the server's cgroup (0: none): memory in MiB, CPU in
    #: percent of one core, processes and threads.
    memory_mb: int = 0
    cpu_percent: int = 0
    pids_max: int = 0


class ServerStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of one supervised server."""

    name: str
    state: State
    pid: int | None = None
    #: Wall-clock unix time of the last spawn (None when never started).
    started_at: float | None = None
    #: Seconds since the current process was spawned (None when not running).
    uptime: float | None = None
    exit_code: int | None = None
    #: Automatic restarts since the supervisor was created.
    restarts: int = 0
    last_error: str | None = None
    #: Why the current / last stop was requested (None for a crash).
    stop_requested: str | None = None
    #: Summed over the process group; None until sampled.
    cpu: float | None = None
    memory: int | None = None
    threads: int | None = None
    #: Seconds until the pending automatic restart (BACKOFF only).
    restart_in: float | None = None


class StateChange(msgspec.Struct, frozen=True, kw_only=True):
    """One state change of one server, as delivered to subscribers."""

    server: str
    old: State
    new: State
    reason: str
    #: Wall-clock unix time.
    timestamp: float


class StateChanges:
    """Fan-out of :class:`StateChange` events: bounded channels (a full one drops the
    event and counts it, a slow subscriber never slows the supervisor) and sync
    callbacks (which must not raise or block)."""

    def __init__(self) -> None:
        self._channels: list[trio.MemorySendChannel[StateChange]] = []
        self._callbacks: list[Callable[[StateChange], None]] = []
        #: Events not delivered to a subscriber whose buffer was full.
        self.dropped = 0

    def subscribe(self, max_buffer: int = 64) -> trio.MemoryReceiveChannel[StateChange]:
        """A channel of every later change; close it to unsubscribe."""
        # Ended subscriptions are let go here too: a quiet fleet publishes nothing for days.
        self._channels = [c for c in self._channels if c.statistics().open_receive_channels]
        send, receive = trio.open_memory_channel[StateChange](max_buffer)
        self._channels.append(send)
        return receive

    def add_listener(self, callback: Callable[[StateChange], None]) -> Callable[[], None]:
        """Call ``callback(change)`` on every change; returns the remover."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    def publish(self, change: StateChange) -> None:
        for callback in list(self._callbacks):
            callback(change)
        for channel in list(self._channels):
            try:
                channel.send_nowait(change)
            except trio.WouldBlock:
                self.dropped += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._channels.remove(channel)

    def held(self) -> int:
        """How many subscriptions are held (an ended one until the next subscribe)."""
        return len(self._channels)

    def close(self) -> None:
        """End every subscription (their ``async for`` loops finish)."""
        for channel in self._channels:
            channel.close()
        self._channels.clear()


@functools.lru_cache(maxsize=256)
def compile_ready_pattern(pattern: str) -> re.Pattern[bytes]:
    """Compile a ready pattern (a regex over the raw console bytes)."""
    try:
        return re.compile(pattern.encode("utf-8", "surrogateescape"))
    except re.error as exc:
        raise InvalidInput(f"invalid ready pattern: {exc}", field="ready_pattern") from exc


def validate_spec(spec: LaunchSpec) -> None:
    """Raise InvalidInput when ``spec`` cannot be supervised."""
    if not spec.argv or not spec.argv[0]:
        raise InvalidInput("the command is empty", field="command")
    if any("\0" in arg for arg in spec.argv):
        raise InvalidInput("the command contains a NUL byte", field="command")
    if spec.restart not in RESTART_MODES:
        raise InvalidInput(f"restart must be one of {', '.join(RESTART_MODES)}", field="restart")
    if not spec.stop_timeout > 0:
        raise InvalidInput("stop_timeout must be positive", field="stop_timeout")
    if spec.max_restarts < 0:
        raise InvalidInput("max_restarts must be >= 0", field="max_restarts")
    try:
        signal.Signals(spec.stop_signal)
    except ValueError as exc:
        raise InvalidInput(f"unknown stop signal {spec.stop_signal}", field="stop_signal") from exc
    if spec.stop_command is not None and any(c in spec.stop_command for c in "\r\n\0"):
        raise InvalidInput("the stop command must be one line", field="stop_command")
    if spec.ready_pattern is not None:
        compile_ready_pattern(spec.ready_pattern)


def check_launch(spec: LaunchSpec) -> RunAs | None:
    """Repeat at a start what may have changed since the settings were accepted: every
    confined path still resolves inside the server directory (a symbolic link can be
    planted at any time) and the user still exists. InvalidInput names the setting."""
    if spec.confined:
        root = spec.server_dir or spec.cwd
        for name, path in spec.confined.items():
            if not resolve_inside(root, path):
                shown = os.path.relpath(path, root) if path.startswith(root) else path
                raise InvalidInput(
                    f"{name} must stay inside the server directory: {shown} leads out of it",
                    field=name,
                )
    return resolve_user(spec.user) if spec.user else None

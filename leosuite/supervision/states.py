"""Server states, the legal moves between them, and the restart policy: pure data and code.

This module imports no trio and does no I/O. The supervisor asks :func:`transition`
before every state change, :func:`allowed_actions` before every power action, and
:func:`decide_restart` after every unrequested exit; all are plain functions with
exhaustive unit tests. The status the API returns lists ``allowed_actions`` too, so
the dashboard offers exactly what the supervisor accepts.

::

    STOPPED ──start──> STARTING ──ready──> RUNNING
       ^                 │   │                │
       │                 │   └────stop────┐   │ stop / kill / force kill
       │              exit (unasked)      v   v
       │                 │            STOPPING ──exit──> STOPPED
       │                 v
       │              CRASHED <──exit (unasked)── RUNNING
       │                 │   ^
       │     policy: retry   │ spawn failed / quick crash
       │                 v   │
       └──stop─────── BACKOFF ──timer or start──> STARTING
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "ACTIVE_STATES",
    "COMMAND_STATES",
    "FAULT_STATE",
    "KILLABLE_STATES",
    "POWER_ACTIONS",
    "RESTARTABLE_STATES",
    "RESTART_MODES",
    "SIGNALLABLE_STATES",
    "STARTABLE_STATES",
    "STOPPABLE_STATES",
    "STOPPED_STATES",
    "Backoff",
    "IllegalTransition",
    "PowerAction",
    "RestartDecision",
    "State",
    "allowed_actions",
    "allowed_transitions",
    "decide_restart",
    "transition",
]


class State(enum.Enum):
    """A server's state; the value is the name on the wire."""

    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    CRASHED = "crashed"
    BACKOFF = "backoff"


#: A child process exists (spawned and not yet reaped).
ACTIVE_STATES = frozenset({State.STARTING, State.RUNNING, State.STOPPING})
#: Signals may be sent to the process group.
SIGNALLABLE_STATES = ACTIVE_STATES
#: No process and nothing scheduled: the server is at rest.
STOPPED_STATES = frozenset({State.STOPPED, State.CRASHED})
#: ``start`` is accepted (from BACKOFF it cancels the timer and starts at once).
STARTABLE_STATES = frozenset({State.STOPPED, State.CRASHED, State.BACKOFF})
#: ``stop`` and ``kill`` are accepted (from BACKOFF they cancel the pending restart).
STOPPABLE_STATES = frozenset({State.STARTING, State.RUNNING, State.BACKOFF})
#: Console commands are written to stdin.
COMMAND_STATES = frozenset({State.STARTING, State.RUNNING})
#: ``restart`` is accepted (from a rest state it is a start; STOPPING must finish first).
RESTARTABLE_STATES = frozenset(State) - {State.STOPPING}
#: ``force_kill`` has something to end: a process, or a pending restart.
KILLABLE_STATES = frozenset(State) - STOPPED_STATES

RESTART_MODES = ("never", "on-failure", "always")

#: Where an internal error in a server's supervision leaves it, from any state and
#: outside the transition table: at rest, startable, with the reason in ``last_error``.
FAULT_STATE = State.CRASHED


class IllegalTransition(RuntimeError):
    """A state change the table does not allow: always a bug in the supervisor."""


_ALLOWED: dict[State, frozenset[State]] = {
    State.STOPPED: frozenset(
        {
            State.STARTING,  # STOPPED -> STARTING: start requested
            State.CRASHED,  # STOPPED -> CRASHED: its process ended while the daemon was down
        }
    ),
    State.STARTING: frozenset(
        {
            State.RUNNING,  # STARTING -> RUNNING: ready pattern seen (or none configured)
            State.STOPPING,  # STARTING -> STOPPING: stop / kill / force kill while starting
            State.CRASHED,  # STARTING -> CRASHED: spawn failed, or exited unasked before ready
        }
    ),
    State.RUNNING: frozenset(
        {
            State.STOPPING,  # RUNNING -> STOPPING: stop / kill / force kill / typed stop command
            State.CRASHED,  # RUNNING -> CRASHED: exited without being asked
        }
    ),
    State.STOPPING: frozenset(
        {
            State.STOPPED,  # STOPPING -> STOPPED: the requested exit happened
        }
    ),
    State.CRASHED: frozenset(
        {
            State.BACKOFF,  # CRASHED -> BACKOFF: the restart policy schedules a retry
            State.STARTING,  # CRASHED -> STARTING: a user starts it again
        }
    ),
    State.BACKOFF: frozenset(
        {
            State.STARTING,  # BACKOFF -> STARTING: the timer fired, or a user started it
            State.STOPPED,  # BACKOFF -> STOPPED: stop / kill / force kill cancel the retry
        }
    ),
}


def transition(current: State, new: State) -> State:
    """Return ``new`` if ``current -> new`` is a legal move, else raise IllegalTransition."""
    if new not in _ALLOWED[current]:
        raise IllegalTransition(f"illegal transition {current.value} -> {new.value}")
    return new


def allowed_transitions(current: State) -> frozenset[State]:
    """The states reachable from ``current`` in one move."""
    return _ALLOWED[current]


# ---------------------------------------------------------------- power actions

PowerAction = Literal["start", "stop", "restart", "kill", "force_kill"]
#: Every power action, in the order the API lists them.
POWER_ACTIONS: tuple[PowerAction, ...] = get_args(PowerAction)

#: The states in which each power action is offered. ``force_kill`` is never refused
#: (it is a no-op at rest) but is offered only where it has something to end.
_ACTION_STATES: dict[PowerAction, frozenset[State]] = {
    "start": STARTABLE_STATES,
    "stop": STOPPABLE_STATES,
    "restart": RESTARTABLE_STATES,
    "kill": STOPPABLE_STATES,
    "force_kill": KILLABLE_STATES,
}

_ACTIONS_OF: dict[State, tuple[PowerAction, ...]] = {
    state: tuple(a for a in POWER_ACTIONS if state in _ACTION_STATES[a]) for state in State
}


def allowed_actions(state: State) -> tuple[PowerAction, ...]:
    """The power actions ``state`` allows, in :data:`POWER_ACTIONS` order."""
    return _ACTIONS_OF[state]


# ---------------------------------------------------------------- restart policy


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff timing (by default 1 s, 2 s, 4 s ... up to 60 s)."""

    initial: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    #: A run at least this long is "stable": it resets the quick-crash count.
    stable_after: float = 60.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.factor < 1 or self.cap < 0 or self.stable_after < 0:
            raise ValueError("initial >= 0, factor >= 1, cap >= 0 and stable_after >= 0")

    def delay(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (0-based): initial * factor**attempt, capped."""
        if attempt < 0:
            raise ValueError("attempt must be >= 0")
        delay = self.initial
        for _ in range(attempt):
            delay *= self.factor
            if delay >= self.cap:
                break
        return min(delay, self.cap)


@dataclass(frozen=True, slots=True)
class RestartDecision:
    restart: bool
    #: Seconds to wait in BACKOFF (0 when not restarting).
    delay: float
    #: The quick-crash count to keep after this decision.
    quick_crashes: int
    #: Why, for the console and the status (``"restart in 2 s (attempt 2 of 5)"``).
    reason: str


def decide_restart(
    *,
    mode: str,
    max_restarts: int,
    quick_crashes: int,
    exit_code: int | None,
    ran_for: float,
    backoff: Backoff,
) -> RestartDecision:
    """What to do after an exit nobody asked for.

    ``quick_crashes`` counts the automatic restarts since the last stable run (or the
    last manual start); a run of ``backoff.stable_after`` seconds or more resets it.
    Mode ``never`` never restarts; ``on-failure`` restarts unless the exit code is 0;
    ``always`` restarts on any exit. After ``max_restarts`` quick crashes it gives up.
    """
    if mode not in RESTART_MODES:
        raise ValueError(f"unknown restart mode {mode!r}")
    if ran_for >= backoff.stable_after:
        quick_crashes = 0
    if mode == "never":
        return RestartDecision(False, 0.0, quick_crashes, "restart policy is never")
    if mode == "on-failure" and exit_code == 0:
        return RestartDecision(False, 0.0, quick_crashes, "exited with code 0 (on-failure)")
    if quick_crashes >= max_restarts:
        return RestartDecision(
            False, 0.0, quick_crashes, f"gave up after {quick_crashes} quick restarts"
        )
    delay = backoff.delay(quick_crashes)
    attempt = quick_crashes + 1
    return RestartDecision(
        True, delay, attempt, f"restart in {delay:g} s (attempt {attempt} of {max_restarts})"
    )

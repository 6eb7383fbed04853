"""The state table and the restart policy: pure code, every case."""

from __future__ import annotations

import itertools

import pytest

from leosuite.supervision.states import (
    ACTIVE_STATES,
    COMMAND_STATES,
    POWER_ACTIONS,
    SIGNALLABLE_STATES,
    STARTABLE_STATES,
    STOPPABLE_STATES,
    STOPPED_STATES,
    Backoff,
    IllegalTransition,
    State,
    allowed_actions,
    allowed_transitions,
    decide_restart,
    transition,
)

S = State
LEGAL = {
    (S.STOPPED, S.STARTING),
    (S.STOPPED, S.CRASHED),  # its process ended while the daemon was down
    (S.STARTING, S.RUNNING),
    (S.STARTING, S.STOPPING),
    (S.STARTING, S.CRASHED),
    (S.RUNNING, S.STOPPING),
    (S.RUNNING, S.CRASHED),
    (S.STOPPING, S.STOPPED),
    (S.CRASHED, S.BACKOFF),
    (S.CRASHED, S.STARTING),
    (S.BACKOFF, S.STARTING),
    (S.BACKOFF, S.STOPPED),
}


def test_wire_names() -> None:
    assert [s.value for s in State] == [
        "stopped",
        "starting",
        "running",
        "stopping",
        "crashed",
        "backoff",
    ]


@pytest.mark.parametrize(("old", "new"), list(itertools.product(State, State)))
def test_transition_table(old: State, new: State) -> None:
    if (old, new) in LEGAL:
        assert transition(old, new) is new
        assert new in allowed_transitions(old)
    else:
        with pytest.raises(IllegalTransition, match=f"{old.value} -> {new.value}"):
            transition(old, new)
        assert new not in allowed_transitions(old)


def test_state_groups() -> None:
    assert {S.STARTING, S.RUNNING, S.STOPPING} == ACTIVE_STATES
    assert SIGNALLABLE_STATES == ACTIVE_STATES
    assert {S.STOPPED, S.CRASHED} == STOPPED_STATES
    assert {S.STOPPED, S.CRASHED, S.BACKOFF} == STARTABLE_STATES
    assert {S.STARTING, S.RUNNING, S.BACKOFF} == STOPPABLE_STATES
    assert {S.STARTING, S.RUNNING} == COMMAND_STATES
    # every state is either at rest, alive or waiting to restart
    assert ACTIVE_STATES | STOPPED_STATES | {S.BACKOFF} == set(State)
    # every startable state can actually move to STARTING, every stoppable one onwards
    for s in STARTABLE_STATES:
        assert S.STARTING in allowed_transitions(s)
    for s in STOPPABLE_STATES:
        assert {S.STOPPING, S.STOPPED} & allowed_transitions(s)


def test_backoff_delays() -> None:
    b = Backoff()
    assert [b.delay(i) for i in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert b.delay(10_000) == 60  # no overflow on huge attempts
    custom = Backoff(initial=0.1, factor=3, cap=1.0)
    assert [custom.delay(i) for i in range(4)] == pytest.approx([0.1, 0.3, 0.9, 1.0])
    assert Backoff(initial=5, cap=2).delay(0) == 2
    with pytest.raises(ValueError, match="attempt"):
        b.delay(-1)


@pytest.mark.parametrize(
    "kwargs",
    [{"initial": -1}, {"factor": 0.5}, {"cap": -1}, {"stable_after": -1}],
)
def test_backoff_rejects_bad_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=">="):
        Backoff(**kwargs)


def decide(**kw: object) -> tuple[bool, float, int]:
    args: dict[str, object] = {
        "mode": "on-failure",
        "max_restarts": 3,
        "quick_crashes": 0,
        "exit_code": 1,
        "ran_for": 0.5,
        "backoff": Backoff(),
    }
    args.update(kw)
    d = decide_restart(**args)  # type: ignore[arg-type]
    assert d.reason
    if not d.restart:
        assert d.delay == 0
    return d.restart, d.delay, d.quick_crashes


def test_never_restarts() -> None:
    assert decide(mode="never") == (False, 0, 0)
    assert decide(mode="never", exit_code=0) == (False, 0, 0)


def test_on_failure_restarts_only_on_failure() -> None:
    assert decide(exit_code=1) == (True, 1, 1)
    assert decide(exit_code=-9) == (True, 1, 1)  # killed by a signal from outside
    assert decide(exit_code=None) == (True, 1, 1)
    assert decide(exit_code=0) == (False, 0, 0)


def test_always_restarts_clean_exits_too() -> None:
    assert decide(mode="always", exit_code=0) == (True, 1, 1)
    assert decide(mode="always", exit_code=2) == (True, 1, 1)


def test_backoff_grows_then_gives_up_after_max_restarts() -> None:
    quick = 0
    delays = []
    for _ in range(3):
        restart, delay, quick = decide(quick_crashes=quick, max_restarts=3)
        assert restart
        delays.append(delay)
    assert delays == [1, 2, 4]
    restart, _, kept = decide(quick_crashes=quick, max_restarts=3)
    assert (restart, kept) == (False, 3)


def test_max_restarts_zero_never_restarts() -> None:
    assert decide(max_restarts=0) == (False, 0, 0)


def test_stable_run_resets_the_count() -> None:
    assert decide(quick_crashes=3, ran_for=60.0) == (True, 1, 1)
    assert decide(quick_crashes=3, ran_for=59.9) == (False, 0, 3)
    short = Backoff(stable_after=5)
    assert decide(quick_crashes=2, ran_for=5, backoff=short) == (True, 1, 1)
    assert decide(quick_crashes=2, ran_for=4.9, backoff=short) == (True, 4, 3)
    # a reset is reported even when the policy does not restart
    assert decide(mode="never", quick_crashes=2, ran_for=100) == (False, 0, 0)


def test_delay_is_capped() -> None:
    assert decide(quick_crashes=20, max_restarts=100) == (True, 60, 21)


def test_unknown_mode() -> None:
    with pytest.raises(ValueError, match="sometimes"):
        decide(mode="sometimes")


ACTIONS = {
    S.STOPPED: ("start", "restart"),
    S.STARTING: ("stop", "restart", "kill", "force_kill"),
    S.RUNNING: ("stop", "restart", "kill", "force_kill"),
    S.STOPPING: ("force_kill",),
    S.CRASHED: ("start", "restart"),
    S.BACKOFF: ("start", "stop", "restart", "kill", "force_kill"),
}


def test_power_actions_by_state() -> None:
    assert POWER_ACTIONS == ("start", "stop", "restart", "kill", "force_kill")
    assert {state: allowed_actions(state) for state in State} == ACTIONS
    for state in State:
        assert ("start" in allowed_actions(state)) is (state in STARTABLE_STATES)
        assert ("stop" in allowed_actions(state)) is (state in STOPPABLE_STATES)
        # force_kill is offered wherever something lives or waits to restart
        assert ("force_kill" in allowed_actions(state)) is (state not in STOPPED_STATES)

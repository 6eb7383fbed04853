"""The state-change and install-event fan-outs let go of ended subscriptions even when
nothing is published: subscribers that come and go on a quiet daemon hold nothing."""

from __future__ import annotations

from leosuite.supervision.install import InstallEvents
from leosuite.supervision.spec import StateChange, StateChanges
from leosuite.supervision.states import State


def change() -> StateChange:
    return StateChange(
        server="s", old=State.STOPPED, new=State.STARTING, reason="start", timestamp=0.0
    )


async def test_state_changes_let_go_of_ended_subscriptions_without_a_change() -> None:
    changes = StateChanges()
    for _ in range(100):
        with changes.subscribe():
            pass
    assert changes.held() == 1  # the last one, until the next subscribe
    live = changes.subscribe()
    assert changes.held() == 1
    changes.publish(change())
    assert live.receive_nowait().new is State.STARTING
    live.close()
    changes.publish(change())
    assert changes.held() == 0


async def test_install_events_let_go_of_ended_subscriptions_without_an_install() -> None:
    events = InstallEvents()
    kept = events.subscribe()
    for _ in range(100):
        with events.subscribe():
            pass
    assert events.held() == 2  # the open one and the last ended one
    events.publish({"kind": "install", "server": "s"})
    assert kept.receive_nowait() == {"kind": "install", "server": "s"}
    assert events.held() == 1

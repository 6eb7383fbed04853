"""The bus's own rules, without PostgreSQL: the local bus of a SQLite store, events
of this node never delivered back, the size limit, and a slow subscriber told to
re-read instead of slowing the bus or growing without bound."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from leosuite.cluster.bus import (
    MAX_PAYLOAD,
    SUBSCRIBER_BUFFER,
    ClusterEvent,
    LocalBus,
    create_bus,
    open_bus,
)
from tests.helpers.daemon import make_settings


def _event(node: str, n: int, kind: str = "ban") -> ClusterEvent:
    return ClusterEvent(kind=kind, node=node, data={"n": n})


def _drain(channel: trio.MemoryReceiveChannel[ClusterEvent]) -> list[ClusterEvent]:
    got: list[ClusterEvent] = []
    while True:
        try:
            got.append(channel.receive_nowait())
        except trio.WouldBlock:
            return got


async def test_a_sqlite_store_gets_the_local_bus_which_delivers_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    assert isinstance(create_bus(settings, "a"), LocalBus)
    with trio.fail_after(10):
        async with open_bus(settings, "a") as bus:
            assert bus.connected
            with bus.subscribe("ban") as events:
                await bus.publish("ban", {"id": 1})
                await trio.testing.wait_all_tasks_blocked()
                assert _drain(events) == []
            assert bus.published == 1


async def test_the_size_limit_holds_on_every_back_end() -> None:
    bus = LocalBus("a")
    overhead = len(bus.encode("ban", {"x": ""}))
    await bus.publish("ban", {"x": "y" * (MAX_PAYLOAD - overhead)})
    with pytest.raises(ValueError, match="exceeds"):
        await bus.publish("ban", {"x": "y" * (MAX_PAYLOAD - overhead + 1)})
    # Bytes count, not characters.
    with pytest.raises(ValueError, match="exceeds"):
        await bus.publish("ban", {"x": "é" * (MAX_PAYLOAD // 2)})
    assert bus.published == 1


def test_events_reach_the_subscribers_of_their_kind_from_other_nodes_only() -> None:
    bus = LocalBus("a")
    with bus.subscribe("ban") as bans, bus.subscribe("ban") as bans2, bus.subscribe("token") as tok:
        bus.deliver(_event("b", 1))
        bus.deliver(_event("a", 2))  # this node's own
        bus.deliver(_event("b", 3, kind="token"))
        bus.deliver(_event("b", 4, kind="chat"))  # nobody listens
        assert _drain(bans) == [_event("b", 1)]
        assert _drain(bans2) == [_event("b", 1)]
        assert _drain(tok) == [_event("b", 3, kind="token")]
    assert bus.received == 3
    # A closed subscription is forgotten.
    bus.deliver(_event("b", 5))
    assert bus._subscribers == {}


def test_a_subscriber_that_falls_behind_gets_one_resync_then_events_again() -> None:
    bus = LocalBus("a")
    with bus.subscribe("ban") as events:
        for n in range(SUBSCRIBER_BUFFER + 50):
            bus.deliver(_event("b", n))
        got = _drain(events)
        assert got[:SUBSCRIBER_BUFFER] == [_event("b", n) for n in range(SUBSCRIBER_BUFFER)]
        assert len(got) == SUBSCRIBER_BUFFER + 1
        assert got[-1].resync
        assert got[-1].kind == "ban"
        assert got[-1].node == ""
        assert bus.dropped == 50
        bus.deliver(_event("b", 1000))
        assert _drain(events) == [_event("b", 1000)]


def test_resync_all_reaches_every_subscriber_once_even_when_full() -> None:
    bus = LocalBus("a")
    with bus.subscribe("ban") as bans, bus.subscribe("settings") as settings:
        for n in range(SUBSCRIBER_BUFFER + 1):
            bus.deliver(_event("b", n))
        bus.resync_all()
        bus.resync_all()
        got = _drain(bans)
        assert [event.resync for event in got].count(True) == 1
        assert got[-1].resync
        assert [event.resync for event in _drain(settings)] == [True, True]


def test_a_forged_resync_needs_the_empty_node_name() -> None:
    assert not ClusterEvent(kind="ban", node="b", data={"resync": True}).resync
    assert not ClusterEvent(kind="ban", node="", data={"resync": 1}).resync
    assert ClusterEvent(kind="ban", node="", data={"resync": True}).resync

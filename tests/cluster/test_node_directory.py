"""The node directory's timing on trio's MockClock: a node is up while its heartbeat
moves, unreachable once it has not moved for ``node.heartbeat_timeout`` seconds (of the
reader's clock: the writer's clock may be off), at once when it says it stops, and up
again when it comes back. The store is a real SQLite file, called in the event loop's
thread so that the mock clock only moves when every task waits."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio
import trio.testing

from leosuite.clock import WallClock
from leosuite.cluster.bus import Bus, ClusterEvent
from leosuite.cluster.nodes import NodeDirectory, url_origin
from leosuite.settings import NodeSettings
from leosuite.store import Database
from leosuite.store import nodes as node_table
from leosuite.store.nodes import NodeRecord

T = TypeVar("T")
INTERVAL, TIMEOUT = 5.0, 15.0


class InLoopStore:
    """A store whose calls run in the event loop's thread (each after a checkpoint)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        await trio.lowlevel.checkpoint()
        return self.db.call_sync(fn)


class LinkedBus(Bus):
    """Buses of one process that deliver to each other at once."""

    def __init__(self, node: str, peers: list[LinkedBus]) -> None:
        super().__init__(node)
        self.connected = True
        self.peers = peers
        peers.append(self)

    async def publish(self, kind: str, data: Mapping[str, object]) -> None:
        self.encode(kind, data)
        for peer in self.peers:
            if peer is not self:
                peer.deliver(ClusterEvent(kind=kind, node=self.node, data=dict(data)))
        await trio.lowlevel.checkpoint()


@pytest.fixture
def mock_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[InLoopStore]:
    db = Database.open(tmp_path / "leosuite.db")
    yield InLoopStore(db)
    db.close()


def directory(
    store: InLoopStore, name: str, *, now: Callable[[], float] | None = None, bus: Bus | None = None
) -> NodeDirectory:
    settings = NodeSettings(name=name, heartbeat_interval=INTERVAL, heartbeat_timeout=TIMEOUT)
    return NodeDirectory(
        store,  # type: ignore[arg-type]
        settings,
        now=now or WallClock(),
        public_url=f"http://{name}.example:8975",
        bus=bus,
    )


@asynccontextmanager
async def running(node: NodeDirectory) -> AsyncIterator[trio.CancelScope]:
    """The node's heartbeat task, for the block or until its scope is cancelled (a crash)."""
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        yield nursery.cancel_scope
        nursery.cancel_scope.cancel()


async def test_a_node_is_unreachable_once_its_heartbeat_stops_for_the_timeout(
    store: InLoopStore, mock_clock: trio.testing.MockClock
) -> None:
    a, b = directory(store, "a"), directory(store, "b")
    async with running(a):
        assert a.state("a") == "up"
        assert a.state("nowhere") == "unreachable"
        async with running(b) as b_scope:
            await trio.sleep(INTERVAL + 0.1)  # a's next beat reads b's row
            assert a.state("b") == "up"
            assert a.url_of("b") == "http://b.example:8975"
            await trio.sleep(3 * INTERVAL)
            assert a.state("b") == "up"
            b_scope.cancel()  # b dies between two beats
        last_beat = b._own_beat
        # a saw that beat at its next read, at most one interval later.
        await trio.sleep_until(last_beat + TIMEOUT - 0.1)
        assert a.state("b") == "up"
        assert a.reachable("b")
        await trio.sleep_until(last_beat + TIMEOUT + INTERVAL + 0.1)
        assert a.state("b") == "unreachable"
        assert not a.reachable("b")
        views = {v.name: v for v in a.list()}
        assert views["b"].state == "unreachable"
        assert views["b"].heartbeat_age > TIMEOUT
        assert views["a"].state == "up"
        assert views["a"].this
        # b comes back: up at a's next read.
        async with running(directory(store, "b")):
            await trio.sleep(INTERVAL + 0.1)
            assert a.state("b") == "up"


async def test_the_first_sight_of_an_old_row_is_unreachable(
    store: InLoopStore, mock_clock: trio.testing.MockClock
) -> None:
    now = WallClock()
    old = NodeRecord(
        name="gone", public_url="http://gone:1", started_at=0.0, heartbeat_at=now() - 3600,
        version="0",
    )  # fmt: skip
    await store.call(lambda conn: node_table.register(conn, old))
    a = directory(store, "a", now=now)
    async with running(a):
        assert a.state("gone") == "unreachable"
        assert a.age("gone") == 10 * TIMEOUT  # bounded: the clocks may disagree
        assert [v.name for v in a.list()] == ["a", "gone"]


@pytest.mark.parametrize("skew", [3600.0, -3600.0, 100.0, -100.0])
async def test_a_writer_whose_clock_is_off_is_judged_by_the_readers_clock(
    store: InLoopStore, mock_clock: trio.testing.MockClock, skew: float
) -> None:
    wall = WallClock()
    a = directory(store, "a", now=wall)
    b = directory(store, "b", now=lambda: wall() + skew)
    async with running(a), running(b) as b_scope:
        # a has seen b's heartbeat move between two of its reads (a row far behind
        # a's clock is unreachable at first sight).
        await trio.sleep(3 * INTERVAL + 0.1)
        assert a.state("b") == "up"
        b_scope.cancel()
        last_beat = b._own_beat
    async with running(a):
        await trio.sleep_until(last_beat + TIMEOUT + INTERVAL + 0.1)
        assert a.state("b") == "unreachable"


async def test_a_node_that_says_it_stops_is_unreachable_at_once(
    store: InLoopStore, mock_clock: trio.testing.MockClock
) -> None:
    peers: list[LinkedBus] = []
    a = directory(store, "a", bus=LinkedBus("a", peers))
    b = directory(store, "b", bus=LinkedBus("b", peers))
    async with running(a), running(b):
        await trio.sleep(INTERVAL + 0.1)
        assert a.state("b") == "up"
        start = trio.current_time()
        await b.announce_stop()
        await trio.testing.wait_all_tasks_blocked()
        assert trio.current_time() == start  # through the bus, no beat waited for
        assert a.state("b") == "unreachable"
        # b stopped beating: it stays unreachable.
        await trio.sleep(3 * INTERVAL)
        assert a.state("b") == "unreachable"
    # Without the bus, the row's stop mark tells at the next read.
    c = directory(store, "c")
    async with running(c):
        assert c.state("b") == "unreachable"
        async with running(directory(store, "b")):
            await trio.sleep(INTERVAL + 0.1)
            assert c.state("b") == "up"


async def test_a_node_whose_row_was_removed_writes_it_again(
    store: InLoopStore, mock_clock: trio.testing.MockClock
) -> None:
    a = directory(store, "a")
    async with running(a):
        await store.call(lambda conn: conn.execute("DELETE FROM nodes"))
        await trio.sleep(INTERVAL + 0.1)
        rows: Any = await store.call(node_table.list_all)
        assert [r.name for r in rows] == ["a"]


async def test_only_reachable_other_nodes_name_origins(
    store: InLoopStore, mock_clock: trio.testing.MockClock
) -> None:
    """A page of another node's dashboard may read this node's consoles, and this node's
    pages may connect to the other nodes' WebSocket APIs, only while that node is up:
    an old row (a renamed host, a node gone for good) widens nothing."""
    now = WallClock()
    old = NodeRecord(
        name="gone", public_url="http://gone:1", started_at=0.0, heartbeat_at=now() - 3600,
        version="0", ws_url="ws://gone:2/",
    )  # fmt: skip
    await store.call(lambda conn: node_table.register(conn, old))
    a, b = directory(store, "a", now=now), directory(store, "b", now=now)
    b.ws_url = "ws://b.example:8976/"
    async with running(a):
        assert a.other_origins() == (frozenset(), frozenset())  # alone: nothing
        async with running(b) as b_scope:
            await trio.sleep(3 * INTERVAL + 0.1)
            assert a.other_origins() == (
                frozenset({"http://b.example:8975"}),
                frozenset({"ws://b.example:8976"}),
            )
            b_scope.cancel()
        await trio.sleep(TIMEOUT + 2 * INTERVAL)
        assert a.other_origins() == (frozenset(), frozenset())


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://127.0.0.1:80/", "http://127.0.0.1"),
        ("https://Node-1.Example:443/dashboard/", "https://node-1.example"),
        ("wss://node:8976", "wss://node:8976"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        # What no browser sends, or no origin header may hold: never an origin.
        ("https://x@node", ""),
        ("https://evil.example\\@node", ""),
        ("ws://a b;script-src *", ""),
        ("ftp://node", ""),
        ("http://[zz]:1", ""),
        ("http://node:99999", ""),
        ("node", ""),
        ("", ""),
    ],
)
def test_url_origin(url: str, origin: str) -> None:
    assert url_origin(url) == origin

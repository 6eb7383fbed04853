"""Anyone who may connect to the store's database may ``NOTIFY`` on the bus, so what
a ``node`` event says is not taken on its word: a forged "node b stops" makes the
others read the rows, and node b, whose row says it runs, stays up (otherwise a stream
of such notifications would keep b unreachable: every operation forwarded to it and
every console token for its servers refused)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from leosuite.store import Database
from tests.cluster.test_node_directory import INTERVAL, InLoopStore, LinkedBus, directory, running


@pytest.fixture
def mock_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[InLoopStore]:
    db = Database.open(tmp_path / "leosuite.db")
    yield InLoopStore(db)
    db.close()


async def test_a_forged_stop_of_a_running_node_changes_nothing(
    store: InLoopStore, mock_clock: trio.testing.MockClock
) -> None:
    peers: list[LinkedBus] = []
    a = directory(store, "a", bus=LinkedBus("a", peers))
    b = directory(store, "b", bus=LinkedBus("b", peers))
    evil = LinkedBus("b", peers)  # claims to be b, as a NOTIFY may
    async with running(a), running(b):
        await trio.sleep(INTERVAL + 0.1)
        assert a.state("b") == "up"
        for _ in range(5):
            await evil.publish("node", {"name": "b", "state": "stopping", "public_url": ""})
            await trio.testing.wait_all_tasks_blocked()
            assert a.state("b") == "up"
            await trio.sleep(INTERVAL / 10)
        # A real stop (its row marked first) still counts at once.
        await b.announce_stop()
        await trio.testing.wait_all_tasks_blocked()
        assert a.state("b") == "unreachable"

"""The other nodes' servers as a node knows them: a server this node just recorded for
another node is known at once, and a read of the store that began before it was
recorded (so did not see it) must not forget it until a later read has looked."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import trio

from leosuite.cluster.fleet_states import RemoteServers
from leosuite.store import Database, servers

T = TypeVar("T")


class HeldStore:
    """A store whose next call reads at once and then answers only when released."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.hold = False
        self.read = trio.Event()
        self.release = trio.Event()

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        await trio.lowlevel.checkpoint()
        answer = self.db.call_sync(fn)
        if self.hold:
            self.hold = False
            self.read.set()
            await self.release.wait()
        return answer


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HeldStore]:
    db = Database.open(tmp_path / "leosuite.db")
    yield HeldStore(db)
    db.close()


def record_for_b(store: HeldStore, name: str) -> servers.ServerRecord:
    return store.db.call_sync(
        lambda c: servers.create(c, name=name, type="command", settings={}, created_at=0, node="b")
    )


async def test_a_server_recorded_during_a_read_is_kept_until_a_later_read(
    store: HeldStore,
) -> None:
    remote = RemoteServers(store, "a")  # type: ignore[arg-type]
    record_for_b(store, "early")
    await remote.refresh()
    assert set(remote.records) == {"early"}

    store.hold = True
    async with trio.open_nursery() as nursery:
        nursery.start_soon(remote.refresh)
        await store.read.wait()  # the read is done: it did not see "far"
        remote.add(record_for_b(store, "far"))
        store.release.set()
    assert set(remote.records) == {"early", "far"}

    # A later read has the store's word: "far" destroyed elsewhere is gone.
    store.db.call_sync(lambda c: c.execute("DELETE FROM servers WHERE name = 'far'"))
    await remote.refresh()
    assert set(remote.records) == {"early"}


async def test_a_server_gone_from_the_store_before_a_read_is_forgotten(
    store: HeldStore,
) -> None:
    remote = RemoteServers(store, "a")  # type: ignore[arg-type]
    remote.add(record_for_b(store, "far"))
    assert remote.get("far") is not None
    store.db.call_sync(lambda c: c.execute("DELETE FROM servers WHERE name = 'far'"))
    await remote.refresh()
    assert remote.get("far") is None

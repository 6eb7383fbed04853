"""Taking on a server another node created for this one can fail with more than the
store's errors (its directory cannot be made: a full or read-only disk). A user who
creates a server for a node whose disk is full must not stop that node: the failure is
logged and taking on is tried again at the next interval."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from leosuite.cluster.fleet_states import RemoteServers, sync_fleet
from leosuite.store import Database
from tests.cluster.test_node_directory import InLoopStore


class FullDisk:
    """A manager whose every take-on fails as a full disk makes it fail."""

    node = "b"

    def __init__(self) -> None:
        self.calls = 0

    def names(self) -> list[str]:
        return []

    def status_of(self, name: str) -> None:
        return None

    def subscribe_states(self, max_buffer: int = 256) -> trio.MemoryReceiveChannel[object]:
        raise NotImplementedError

    async def take_assigned(self) -> list[str]:
        self.calls += 1
        raise OSError(28, "No space left on device")


@pytest.fixture
def mock_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[InLoopStore]:
    db = Database.open(tmp_path / "leosuite.db")
    yield InLoopStore(db)
    db.close()


async def test_a_take_on_that_fails_is_logged_and_tried_again(
    store: InLoopStore, mock_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "leosuite.cluster")
    manager = FullDisk()
    remote = RemoteServers(store, "b")  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(sync_fleet, manager, remote, None, 1.0)
        await trio.sleep(5.5)
        nursery.cancel_scope.cancel()
    assert manager.calls >= 4
    assert "No space left on device" in caplog.text

"""The daemon's side of cross-node events, in one process on a SQLite store: changes
made here are published once per burst, and an event from another node (handed to
the bus as PostgreSQL would) makes the services read the store again, without
publishing anything back."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from leosuite.api.grants import ServerGrants
from leosuite.clock import WallClock
from leosuite.cluster.bus import ClusterEvent, LocalBus
from leosuite.cluster.sync import run_cluster_sync
from leosuite.community.server_settings import store_server_settings
from leosuite.services import Services, open_services
from leosuite.store import bans as ban_table
from leosuite.store import tokens
from leosuite.store.db import Database
from tests.helpers.daemon import ADMIN_PASSWORD, make_settings


class Node:
    def __init__(self, db: Database, services: Services, grants: ServerGrants) -> None:
        self.db, self.services, self.grants = db, services, grants
        self.bus = services.bus
        assert isinstance(self.bus, LocalBus)

    async def from_other_node(self, kind: str, data: dict[str, object] | None = None) -> None:
        self.bus.deliver(ClusterEvent(kind=kind, node="other", data=data or {}))


async def until(condition: Callable[[], bool]) -> None:
    """Wait until the re-read (store calls in a worker thread) shows its effect."""
    while not condition():
        await trio.sleep(0.005)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    settings = make_settings(tmp_path / "data")
    settings.data_dir.mkdir(parents=True)
    db = Database.open(settings.db_path, data_dir=settings.data_dir, init=True)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(db.run_writer)
            services = await open_services(
                db,
                settings,
                bus=LocalBus("here"),
                now=WallClock(),
                environ={"LEOSUITE_ADMIN_PASSWORD": ADMIN_PASSWORD},
                out=io.StringIO(),
            )
            grants = ServerGrants()
            await nursery.start(
                lambda task_status: run_cluster_sync(
                    services.bus,
                    db=db,
                    auth=services.auth,
                    bans=services.bans,
                    chat=services.chat,
                    grants=grants,
                    task_status=task_status,
                )
            )
            with trio.fail_after(30):
                yield Node(db, services, grants)
            nursery.cancel_scope.cancel()
    finally:
        db.close()


async def test_changes_made_here_are_published_once_per_burst(node: Node) -> None:
    bans = node.services.bans
    first = await bans.add("192.0.2.1")
    await bans.add("192.0.2.2")
    await trio.testing.wait_all_tasks_blocked()
    assert 1 <= node.bus.published <= 2
    before = node.bus.published
    await bans.remove(first.id)
    node.grants.put(1, 1, frozenset({"console"}))
    node.services.chat.set_server_settings(node.services.chat.server_settings)
    await trio.testing.wait_all_tasks_blocked()
    assert node.bus.published == before + 2  # one "ban", one "settings"


async def test_a_ban_stored_by_another_node_applies_here(node: Node) -> None:
    bans = node.services.bans
    ban = await node.db.call(
        lambda conn: ban_table.create(
            conn, ip="198.51.100.7", subnet=32, expires=None, comment="", added=0.0
        )
    )
    assert bans.is_banned("198.51.100.7") is None
    await node.from_other_node("ban", {"hostile": "x" * 100})
    await until(lambda: bans.is_banned("198.51.100.7") == ban)
    await node.db.call(lambda conn: ban_table.delete(conn, ban.id))
    await node.from_other_node("ban")
    await until(lambda: bans.is_banned("198.51.100.7") is None)
    assert node.bus.published == 0  # taking a change never publishes it back


async def test_a_token_ended_by_another_node_ends_here(node: Node) -> None:
    auth = node.services.auth
    token, _principal = await auth.password_login("admin", ADMIN_PASSWORD, "127.0.0.1")
    ended: list[str] = []
    auth.on_token_revoked.append(lambda token_hash, reason: ended.append(reason))
    await auth.authenticate(token)
    await node.db.call(lambda conn: tokens.delete_for_account(conn, 1))
    await node.from_other_node("token")
    await until(lambda: bool(ended))
    assert ended == ["token destroyed"]
    assert node.bus.published == 0


async def test_settings_stored_by_another_node_apply_here(node: Node) -> None:
    chat = node.services.chat
    await store_server_settings(node.db, {"welcome_message": "from elsewhere"})
    changed = trio.Event()

    async def wait_grants() -> None:
        await node.grants.wait_changed()
        changed.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait_grants)
        await trio.testing.wait_all_tasks_blocked()
        await node.from_other_node("settings")
        await changed.wait()
    assert chat.server_settings.welcome_message == "from elsewhere"
    assert node.bus.published == 0


async def test_a_resync_rereads_everything(node: Node) -> None:
    await node.db.call(
        lambda conn: ban_table.create(
            conn, ip="203.0.113.9", subnet=32, expires=None, comment="", added=0.0
        )
    )
    await store_server_settings(node.db, {"welcome_message": "resynced"})
    node.bus.resync_all()
    await until(lambda: node.services.bans.is_banned("203.0.113.9") is not None)
    await until(lambda: node.services.chat.server_settings.welcome_message == "resynced")


async def test_a_grant_changed_here_while_grants_are_read_again_is_kept() -> None:
    grants = ServerGrants()
    reading = trio.Event()
    go_on = trio.Event()
    reads: list[dict[tuple[int, int], frozenset[str]]] = []

    class SlowStore:
        """The store as it was before the grant made here, on the first read only."""

        async def call(self, fn: object) -> dict[tuple[int, int], frozenset[str]]:
            if not reads:
                reads.append({})
                reading.set()
                await go_on.wait()
                return {}
            reads.append({(1, 2): frozenset({"console"})})
            return reads[-1]

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(grants.reload, SlowStore())
            await reading.wait()
            grants.put(1, 2, frozenset({"console"}))  # stored, then put (as share_ops does)
            go_on.set()
        assert len(reads) == 2  # read again: the first read missed the grant
        assert grants.rights(1, 2) == frozenset({"console"})

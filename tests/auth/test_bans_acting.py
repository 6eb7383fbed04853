"""BanList changes against cancellation and a changed caller: a ban stored while its
caller is cancelled is still in force, enforced and audited (a removal too), and the
acting account is checked again inside the change's transaction."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from leosuite.audit import Actor, AuditLog
from leosuite.auth.bans import BanList
from leosuite.errors import PermissionDenied
from leosuite.store import Database, accounts, audit, kv, tokens
from tests.helpers.store import open_test_store

NOW = 1_700_000_000.0


class _Conn:
    def __init__(self, ip: str) -> None:
        self.ip = ip
        self.closed = ""

    def close_policy(self, reason: str) -> None:
        self.closed = reason


class _Hub:
    def __init__(self, *ips: str) -> None:
        self.connections = [_Conn(ip) for ip in ips]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = open_test_store(tmp_path)
    yield database
    database.close()


def entries(db: Database, topic: str) -> list[str]:
    found = db.call_sync(lambda c: audit.page(c, limit=1000))
    return [e.message for e in found if e.topic == topic]


def blocker(name: str, started: threading.Event, release: threading.Event) -> Callable[..., None]:
    def block(conn: sqlite3.Connection) -> None:
        kv.set(conn, name, "1")
        started.set()
        assert release.wait(10)

    return block


async def cancelled_mid_transaction(db: Database, change: Callable[[], Awaitable[object]]) -> None:
    """Run ``change`` and cancel it while its transaction runs (in a batch behind
    another one); return once it has ended."""
    started_a, release_a = threading.Event(), threading.Event()
    started_b, release_b = threading.Event(), threading.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(db.run_writer)
        nursery.start_soon(db.call, blocker("a", started_a, release_a))
        await trio.to_thread.run_sync(started_a.wait)
        nursery.start_soon(db.call, blocker("b", started_b, release_b))
        await trio.testing.wait_all_tasks_blocked()
        scope = trio.CancelScope()
        done = trio.Event()

        async def run() -> None:
            with scope:
                await change()
            done.set()

        nursery.start_soon(run)
        await trio.testing.wait_all_tasks_blocked()
        assert db.statistics().tasks_waiting == 2  # the change's transaction waits behind b
        release_a.set()
        await trio.to_thread.run_sync(started_b.wait)  # b and the change run in one batch
        scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        release_b.set()
        await done.wait()
        nursery.cancel_scope.cancel()


async def test_a_ban_stored_while_its_caller_is_cancelled_is_enforced_and_audited(
    db: Database,
) -> None:
    hub = _Hub("192.0.2.7", "198.51.100.1")
    bans = BanList(db, AuditLog(db, lambda: NOW), lambda: NOW, ws_hub=hub)
    with trio.fail_after(30):
        await cancelled_mid_transaction(db, lambda: bans.add("192.0.2.0/24"))
        assert bans.is_banned("192.0.2.7") is not None
        assert [c.closed for c in hub.connections] == ["your address is banned", ""]
        (added,) = entries(db, "Ban")
        assert "192.0.2.0/24 added" in added

        (ban,) = bans.bans()
        await cancelled_mid_transaction(db, lambda: bans.remove(ban.id))
        assert bans.is_banned("192.0.2.7") is None
        assert bans.bans() == []
        assert entries(db, "Unban") == [f"ban #{ban.id} of 192.0.2.0/24 removed"]


async def test_the_acting_account_is_checked_inside_the_transaction(db: Database) -> None:
    bans = BanList(db, AuditLog(db, lambda: NOW), lambda: NOW)

    def make(username: str, flags: str, *, locked: bool = False) -> int:
        return db.call_sync(
            lambda c: accounts.create(
                c, username=username, password_hash="-", created_at=NOW, flags=flags, locked=locked
            )
        ).id

    admin, plain, locked = (
        make("admin", "ADMIN"),
        make("plain", "HOST"),
        make("lk", "ADMIN", locked=True),
    )
    db.call_sync(
        lambda c: tokens.insert(
            c, token_hash="ab" * 32, account_id=admin, created_at=NOW, expires_at=NOW + 60
        )
    )
    with trio.fail_after(30):
        for who in (plain, locked, 999):
            with pytest.raises(PermissionDenied):
                await bans.add("192.0.2.1", actor=Actor(id=who))
        with pytest.raises(PermissionDenied, match="session has ended"):
            await bans.add("192.0.2.1", actor=Actor(id=admin), token_hash="cd" * 32)
        with pytest.raises(PermissionDenied, match="session has ended"):
            await bans.add("192.0.2.1", actor=Actor(id=admin), logged_in=lambda: False)
        assert bans.bans() == []
        assert db.call_sync(lambda c: c.execute("SELECT count(*) FROM bans").fetchone()[0]) == 0

        ban = await bans.add("192.0.2.1", actor=Actor(id=admin), token_hash="ab" * 32)
        with pytest.raises(PermissionDenied):
            await bans.remove(ban.id, actor=Actor(id=plain))
        assert bans.is_banned("192.0.2.1") == ban
        await bans.remove(ban.id, actor=Actor(id=admin), token_hash="ab" * 32)
        assert bans.bans() == []
        assert len(entries(db, "Ban")) == 1
        assert len(entries(db, "Unban")) == 1

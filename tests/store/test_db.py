from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import trio
import trio.testing

from leosuite.errors import Conflict, StoreCorrupt, StoreError
from leosuite.store import SCHEMA_VERSION, Database, accounts, kv
from leosuite.store.opening import open_store
from leosuite.store.schema import MIGRATIONS
from tests.helpers.daemon import make_settings


def _pragma(db: Database, name: str) -> object:
    return db.call_sync(lambda c: c.execute(f"PRAGMA {name}").fetchone()[0])


@pytest.mark.sqlite_only
def test_open_creates_and_migrates_from_empty(db_path: Path) -> None:
    assert not db_path.exists()
    db = Database.open(db_path)
    try:
        assert db_path.exists()
        assert _pragma(db, "user_version") == SCHEMA_VERSION
        tables = db.call_sync(
            lambda c: {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        )
        assert {"accounts", "tokens", "audit_log", "servers", "kv"} <= tables
    finally:
        db.close()


@pytest.mark.sqlite_only
def test_pragmas_are_set(db: Database) -> None:
    assert _pragma(db, "journal_mode") == "wal"
    assert _pragma(db, "synchronous") == 2  # FULL
    assert _pragma(db, "foreign_keys") == 1
    assert _pragma(db, "busy_timeout") == 5000
    assert _pragma(db, "cache_size") == -2000  # KiB, SQLite's default


@pytest.mark.sqlite_only
def test_the_page_cache_is_the_configured_size(db_path: Path) -> None:
    """``store.cache_kib`` reaches the connection, and through the settings."""
    db = Database.open(db_path, cache_kib=256)
    try:
        assert _pragma(db, "cache_size") == -256
    finally:
        db.close()
    settings = make_settings(db_path.parent, store={"path": str(db_path), "cache_kib": 512})
    db = open_store(settings)
    try:
        assert _pragma(db, "cache_size") == -512
    finally:
        db.close()


@pytest.mark.sqlite_only
def test_reopen_keeps_data(db_path: Path) -> None:
    db = Database.open(db_path)
    db.call_sync(
        lambda c: accounts.create(
            c, username="Alice", password_hash="h", created_at=1.0, flags={"ADMIN"}
        )
    )
    db.close()
    db = Database.open(db_path)
    try:
        found = db.call_sync(lambda c: accounts.get_by_name(c, "alice"))
        assert found is not None
        assert found.username == "Alice"
        assert found.flags == frozenset({"ADMIN"})
        assert _pragma(db, "user_version") == SCHEMA_VERSION
    finally:
        db.close()


def _assert_refused_untouched(path: Path, *words: str) -> StoreCorrupt:
    before = path.read_bytes()
    with pytest.raises(StoreCorrupt) as info:
        Database.open(path)
    assert path.read_bytes() == before
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message
    return info.value


@pytest.mark.sqlite_only
def test_garbage_file_is_refused_and_left_untouched(db_path: Path) -> None:
    db_path.write_bytes(b"this is not a database\n" * 500)
    _assert_refused_untouched(db_path, "backup", "never replaces")
    assert sorted(p.name for p in db_path.parent.iterdir()) == [db_path.name]


@pytest.mark.sqlite_only
def test_damaged_database_is_refused(db_path: Path) -> None:
    def fill(conn: sqlite3.Connection) -> None:
        for i in range(2000):
            kv.set(conn, f"key{i:05}", "x" * 200)

    db = Database.open(db_path)
    db.call_sync(fill)
    db.close()
    data = bytearray(db_path.read_bytes())
    page_size = 4096
    assert len(data) > 20 * page_size
    # Overwrite a few pages in the middle of the b-tree with garbage.
    for offset in range(10 * page_size, 14 * page_size):
        data[offset] = 0xA5
    db_path.write_bytes(bytes(data))
    _assert_refused_untouched(db_path, "backup")


@pytest.mark.sqlite_only
def test_newer_schema_is_refused(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    conn.close()
    _assert_refused_untouched(
        db_path, f"newer leosuite (schema {SCHEMA_VERSION + 3}, this one knows {SCHEMA_VERSION})"
    )


@pytest.mark.sqlite_only
def test_foreign_database_is_refused(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.commit()
    conn.close()
    _assert_refused_untouched(db_path, "another program")


@pytest.mark.sqlite_only
def test_missing_directory_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        Database.open(tmp_path / "nope" / "leosuite.db")
    assert not isinstance(info.value, StoreCorrupt)


@pytest.mark.sqlite_only
def test_failed_migration_rolls_back_and_keeps_previous_version(db_path: Path) -> None:
    broken = (*MIGRATIONS, "CREATE TABLE extra (x); CREATE TABLE accounts (y);")
    with pytest.raises(StoreError, match=f"schema {SCHEMA_VERSION}"):
        Database.open(db_path, migrations=broken)
    db = Database.open(db_path)
    try:
        assert _pragma(db, "user_version") == SCHEMA_VERSION
        assert (
            db.call_sync(
                lambda c: c.execute(
                    "SELECT name FROM sqlite_master WHERE name = 'extra'"
                ).fetchall()
            )
            == []
        )
    finally:
        db.close()


@pytest.mark.sqlite_only
def test_later_migration_applies_on_reopen(db_path: Path) -> None:
    Database.open(db_path).close()
    db = Database.open(db_path, migrations=(*MIGRATIONS, "CREATE TABLE extra (x);"))
    try:
        assert _pragma(db, "user_version") == SCHEMA_VERSION + 1
        db.call_sync(lambda c: c.execute("INSERT INTO extra VALUES (1)"))
    finally:
        db.close()


async def test_failing_call_rolls_back(db: Database) -> None:
    def half_then_fail(conn: sqlite3.Connection) -> None:
        kv.set(conn, "a", "1")
        accounts.create(conn, username="bob", password_hash="h", created_at=0.0)
        raise Conflict("boom")

    with pytest.raises(Conflict, match="boom"):  # our errors pass through unchanged
        await db.call(half_then_fail)
    assert await db.call(lambda c: kv.get(c, "a")) is None
    assert await db.call(accounts.count) == 0
    # and the connection is usable again, not stuck in a transaction
    await db.call(lambda c: kv.set(c, "a", "2"))
    assert await db.call(lambda c: kv.get(c, "a")) == "2"


async def test_sqlite_errors_become_store_errors(db: Database) -> None:
    def bad(conn: sqlite3.Connection) -> None:
        kv.set(conn, "a", "1")
        conn.execute("SELECT * FROM no_such_table")

    with pytest.raises(StoreError) as info:
        await db.call(bad)
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    assert await db.call(lambda c: kv.get(c, "a")) is None


def test_call_sync_rolls_back_too(db: Database) -> None:
    def bad(conn: sqlite3.Connection) -> None:
        kv.set(conn, "a", "1")
        raise ValueError("bug")

    with pytest.raises(ValueError, match="bug"):
        db.call_sync(bad)
    assert db.call_sync(lambda c: kv.get(c, "a")) is None


def test_nested_call_is_refused(db: Database) -> None:
    with pytest.raises(StoreError, match="nested"):
        db.call_sync(lambda c: db.call_sync(lambda c2: None))


@pytest.mark.sqlite_only
async def test_closed_database_refuses_calls(db_path: Path) -> None:
    db = Database.open(db_path)
    db.close()
    db.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        await db.call(lambda c: None)


async def test_concurrent_calls_are_serialized(db: Database) -> None:
    await db.call(lambda c: kv.set(c, "counter", "0"))
    active = 0
    max_active = 0
    lock = threading.Lock()

    def increment(conn: sqlite3.Connection) -> None:
        nonlocal active, max_active
        with lock:
            active += 1
            max_active = max(max_active, active)
        # read-modify-write: only correct if no other transaction interleaves
        value = int(kv.get(conn, "counter") or "0")
        kv.set(conn, "counter", str(value + 1))
        with lock:
            active -= 1

    async with trio.open_nursery() as nursery:
        for _ in range(60):
            nursery.start_soon(db.call, increment)
    assert await db.call(lambda c: kv.get(c, "counter")) == "60"
    assert max_active == 1


async def test_waiting_calls_queue_in_trio_not_in_threads(db: Database) -> None:
    started = threading.Event()
    release = threading.Event()
    threads: set[int] = set()

    def blocker(conn: sqlite3.Connection) -> None:
        threads.add(threading.get_ident())
        started.set()
        assert release.wait(10)

    def quick(conn: sqlite3.Connection) -> None:
        threads.add(threading.get_ident())

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(db.call, blocker)
            await trio.to_thread.run_sync(started.wait)
            for _ in range(5):
                nursery.start_soon(db.call, quick)
            await trio.testing.wait_all_tasks_blocked()
            stats = db.statistics()
            assert (stats.borrowed_tokens, stats.tasks_waiting) == (1, 5)
            assert len(threads) == 1
            release.set()
    assert db.statistics().borrowed_tokens == 0


async def test_call_runs_off_the_trio_thread(db: Database) -> None:
    loop_thread = threading.get_ident()
    worker = await db.call(lambda c: threading.get_ident())
    assert worker != loop_thread


async def test_cancelled_caller_still_finishes_transaction(db: Database) -> None:
    started = threading.Event()
    release = threading.Event()
    finished = threading.Event()

    def slow(conn: sqlite3.Connection) -> None:
        kv.set(conn, "k", "v")
        started.set()
        assert release.wait(10)
        finished.set()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(db.call, slow)
            await trio.to_thread.run_sync(started.wait)
            nursery.cancel_scope.cancel()
            release.set()
    assert finished.is_set()  # the caller waited for the transaction to end
    assert await db.call(lambda c: kv.get(c, "k")) == "v"

"""The PostgreSQL back-end itself: opening, checks and migrations, text rules that match
SQLite's, hostile values, one writer at a time across connections, and lost
connections (run with ``--store=postgresql``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import trio
import trio.testing

from leosuite.errors import StoreCorrupt, StoreError
from leosuite.store import SCHEMA_VERSION, accounts, audit, bans, kv, servers
from leosuite.store.audit_search import LogQuery, search
from leosuite.store.postgres import PostgresDatabase, StoreUnavailable
from leosuite.store.schema import MIGRATIONS
from tests.helpers.postgres import PostgresServer, find_bin_dir

pytestmark = pytest.mark.postgresql_only


def _version(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT version FROM leosuite_schema").fetchone()
        assert row is not None
        return int(row[0])


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {str(row[0]) for row in rows}


def test_connect_creates_the_schema_and_reopening_keeps_data(postgres_url: str) -> None:
    db = PostgresDatabase.connect(postgres_url)
    try:
        assert _version(postgres_url) == SCHEMA_VERSION
        assert {"accounts", "tokens", "audit_log", "servers", "kv"} <= _tables(postgres_url)
        db.call_sync(
            lambda c: accounts.create(
                c, username="Alice", password_hash="h", created_at=1.0, flags={"ADMIN"}
            )
        )
    finally:
        db.close()
    db = PostgresDatabase.connect(postgres_url)
    try:
        found = db.call_sync(lambda c: accounts.get_by_name(c, "aLICE"))
        assert found is not None
        assert (found.username, found.flags) == ("Alice", frozenset({"ADMIN"}))
    finally:
        db.close()


def test_a_newer_schema_is_refused_and_left_alone(postgres_url: str) -> None:
    PostgresDatabase.connect(postgres_url).close()
    with psycopg.connect(postgres_url) as conn:
        conn.execute("UPDATE leosuite_schema SET version = %s", (SCHEMA_VERSION + 3,))
    with pytest.raises(StoreCorrupt, match=f"newer leosuite \\(schema {SCHEMA_VERSION + 3}"):
        PostgresDatabase.connect(postgres_url)
    assert _version(postgres_url) == SCHEMA_VERSION + 3


def test_another_programs_database_is_refused(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(StoreCorrupt, match="another program"):
        PostgresDatabase.connect(postgres_url)
    assert _tables(postgres_url) == {"photos"}


def test_a_database_without_the_c_locale_is_refused(postgres_server: PostgresServer) -> None:
    with postgres_server.admin() as conn:
        conn.execute("CREATE DATABASE ascii_store TEMPLATE template0 ENCODING 'SQL_ASCII'")
    url = postgres_server.url("ascii_store")
    try:
        with pytest.raises(StoreError, match="UTF-8 with the C locale"):
            PostgresDatabase.connect(url)
        assert _tables(url) == set()
    finally:
        postgres_server.drop_database(url)


def test_a_failed_migration_leaves_the_previous_schema(postgres_url: str) -> None:
    broken = (*MIGRATIONS, "CREATE TABLE extra (x INTEGER); CREATE TABLE accounts (y INTEGER);")
    with pytest.raises(StoreError, match=f"left at schema {SCHEMA_VERSION}"):
        PostgresDatabase.connect(postgres_url, migrations=broken)
    assert _version(postgres_url) == SCHEMA_VERSION
    assert "extra" not in _tables(postgres_url)
    later = (*MIGRATIONS, "CREATE TABLE extra (x INTEGER);")
    PostgresDatabase.connect(postgres_url, migrations=later).close()
    assert _version(postgres_url) == SCHEMA_VERSION + 1


def test_no_server_is_a_store_error(postgres_server: PostgresServer) -> None:
    closed = postgres_server.url().replace(f":{postgres_server.port}/", ":1/")
    with pytest.raises(StoreError, match="cannot connect") as info:
        PostgresDatabase.connect(closed)
    assert not isinstance(info.value, StoreCorrupt)


def test_an_empty_database_beside_earlier_data_needs_init(
    postgres_url: str, tmp_path: Path
) -> None:
    (tmp_path / "servers" / "world").mkdir(parents=True)
    (tmp_path / "servers" / "world" / "level.dat").write_bytes(b"x")
    with pytest.raises(StoreCorrupt, match=r"holds data of an earlier store \(servers/\)"):
        PostgresDatabase.connect(postgres_url, data_dir=tmp_path)
    assert _tables(postgres_url) == set()
    PostgresDatabase.connect(postgres_url, data_dir=tmp_path, init=True).close()
    with pytest.raises(StoreError, match="holds data: start without --init"):
        PostgresDatabase.connect(postgres_url, data_dir=tmp_path, init=True)
    PostgresDatabase.connect(postgres_url, data_dir=tmp_path).close()


def test_text_rules_match_sqlite(db: PostgresDatabase) -> None:
    keys = ["b", "B", "_", "a-b", "a.b", "é", "É", "z", "10", "9"]
    db.call_sync(lambda c: [kv.set(c, key, key) for key in keys])
    assert list(db.call_sync(kv.items)) == sorted(keys)  # code point order, as SQLite's
    db.call_sync(lambda c: accounts.create(c, username="Emile", password_hash="h", created_at=0.0))
    assert db.call_sync(lambda c: accounts.get_by_name(c, "EMILE")) is not None
    assert db.call_sync(lambda c: accounts.get_by_name(c, "Émile")) is None  # ASCII folding only
    assert db.call_sync(lambda c: accounts.get_by_name(c, "Em%")) is None


def test_hostile_values(db: PostgresDatabase) -> None:
    entry = db.call_sync(
        lambda c: audit.append(
            c, timestamp=1.0, level="info", topic="t?", message="a\x00b 100% '; --", session="?"
        )
    )
    (stored,) = db.call_sync(lambda c: audit.page(c, limit=5))
    assert (stored.id, stored.message, stored.topic) == (entry, "a\x00b 100% '; --", "t?")
    nul = db.call_sync(lambda c: search(c, LogQuery(contains="\x00"), offset=0, limit=5))
    assert [e.id for e in nul] == [entry]
    assert db.call_sync(lambda c: accounts.get_by_name(c, "a\x00")) is None
    found = db.call_sync(lambda c: search(c, LogQuery(contains="0% '"), offset=0, limit=5))
    assert [e.id for e in found] == [entry]
    assert db.call_sync(lambda c: search(c, LogQuery(contains="_"), offset=0, limit=5)) == []
    like = "SELECT id FROM audit_log WHERE message LIKE '%100\\% ''%' ESCAPE '\\' -- 5 %"
    assert db.call_sync(lambda c: c.execute(like).fetchall()) == [(entry,)]
    assert db.call_sync(lambda c: c.execute(like + "\nAND topic = ?", ("t?",)).fetchall()) == [
        (entry,)
    ]
    assert db.call_sync(lambda c: bans.get(c, 2**63 - 1)) is None
    assert db.call_sync(lambda c: accounts.get(c, 2**70)) is None
    db.call_sync(lambda c: servers.create(c, name="big", type="t", settings={}, created_at=0))
    assert db.call_sync(lambda c: servers.set_next_read_index(c, "big", 2**40)) == 2**40
    assert db.call_sync(lambda c: servers.set_next_read_index(c, "big", 5)) == 2**40


async def test_write_transactions_of_two_connections_run_one_at_a_time(postgres_url: str) -> None:
    first = PostgresDatabase.connect(postgres_url)
    second = PostgresDatabase.connect(postgres_url, lock_timeout_ms=200, retry_for=1.0)
    # The same lock wait retried for long enough to outlast the holder on a loaded machine.
    patient = PostgresDatabase.connect(postgres_url, lock_timeout_ms=200, retry_for=30.0)
    started, release = threading.Event(), threading.Event()

    def blocker(conn: object) -> None:
        started.set()
        assert release.wait(10)

    try:
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(first.call, blocker)
                await trio.to_thread.run_sync(started.wait)
                # Waiting for the lock is retried for retry_for, then fails.
                with pytest.raises(StoreUnavailable, match="busy: another process holds"):
                    await second.call(lambda c: kv.set(c, "k", "v"))
                # A call that waits while the holder finishes goes through.
                nursery.start_soon(patient.call, lambda c: kv.set(c, "k", "v"))
                await trio.sleep(0.5)
                release.set()
        assert await first.call(lambda c: kv.get(c, "k")) == "v"
    finally:
        first.close()
        second.close()
        patient.close()


async def test_a_process_frozen_inside_a_transaction_does_not_stall_the_others(
    postgres_url: str,
) -> None:
    # The first process stops (SIGSTOP, a paused host) while it holds the write lock:
    # PostgreSQL ends its session once it has been idle in the transaction too long.
    frozen = PostgresDatabase.connect(postgres_url, idle_in_transaction_ms=500)
    other = PostgresDatabase.connect(postgres_url, lock_timeout_ms=200, retry_for=30.0)
    started, release = threading.Event(), threading.Event()

    def freeze(conn: object) -> None:
        kv.set(conn, "frozen", "1")  # type: ignore[arg-type]
        started.set()
        assert release.wait(20)

    try:
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:

                async def frozen_call() -> None:
                    with pytest.raises(StoreError, match="was lost"):
                        await frozen.call(freeze)

                nursery.start_soon(frozen_call)
                await trio.to_thread.run_sync(started.wait)
                await other.call(lambda c: kv.set(c, "other", "1"))
                release.set()
        assert await other.call(lambda c: (kv.get(c, "frozen"), kv.get(c, "other"))) == (
            None,
            "1",
        )
        # The frozen process reconnects and works again once it runs.
        await frozen.call(lambda c: kv.set(c, "thawed", "1"))
        assert frozen.reconnects == 1
    finally:
        frozen.close()
        other.close()


def _terminate(url: str) -> int:
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'leosuite' AND datname = %s",
            (database,),
        ).fetchall()
    return len(rows)


async def test_a_lost_connection_is_found_again(db: PostgresDatabase, postgres_url: str) -> None:
    await db.call(lambda c: kv.set(c, "before", "1"))
    assert _terminate(postgres_url) == 1
    await db.call(lambda c: kv.set(c, "after", "1"))
    assert db.reconnects == 1
    assert await db.call(lambda c: (kv.get(c, "before"), kv.get(c, "after"))) == ("1", "1")
    assert _terminate(postgres_url) == 1
    assert db.call_sync(lambda c: kv.get(c, "after")) == "1"  # the CLI's calls too


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of this test's own, to stop and start."""
    bin_dir = find_bin_dir()
    assert bin_dir is not None
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


async def test_calls_wait_for_a_server_that_comes_back(own_server: PostgresServer) -> None:
    url = own_server.new_database()
    db = PostgresDatabase.connect(url, retry_for=60.0)
    try:
        await db.call(lambda c: kv.set(c, "k", "1"))
        await trio.to_thread.run_sync(own_server.pause)
        async with trio.open_nursery() as nursery:
            result: list[str | None] = []

            async def read() -> None:
                result.append(await db.call(lambda c: kv.get(c, "k")))

            nursery.start_soon(read)
            await trio.sleep(0.5)  # the call finds the server gone and retries
            await trio.to_thread.run_sync(own_server.resume)
        assert result == ["1"]
        assert db.reconnects >= 1
    finally:
        db.close()


async def test_calls_fail_once_the_server_stays_away(
    own_server: PostgresServer, autojump_clock: trio.testing.MockClock
) -> None:
    url = own_server.new_database()
    db = PostgresDatabase.connect(url, retry_for=5.0)
    try:
        await trio.to_thread.run_sync(own_server.pause)
        with pytest.raises(StoreUnavailable, match="cannot be reached"):
            await db.call(lambda c: kv.get(c, "k"))
        await trio.to_thread.run_sync(own_server.resume)
        assert await db.call(lambda c: kv.get(c, "k")) is None
    finally:
        db.close()


async def test_a_call_whose_connection_is_lost_under_way_fails_and_is_not_run_again(
    db: PostgresDatabase,
) -> None:
    runs: list[int] = []

    def lose_it(conn: object) -> None:
        runs.append(1)
        kv.set(conn, "lost", "1")  # type: ignore[arg-type]
        conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")  # type: ignore[attr-defined]

    with pytest.raises(StoreError, match=r"connection to the store .* was lost") as info:
        await db.call(lose_it)
    assert not isinstance(info.value, StoreUnavailable)
    assert runs == [1]
    assert await db.call(lambda c: kv.get(c, "lost")) is None
    assert db.reconnects == 1


def test_booleans_and_sums_come_back_as_sqlite_gives_them(db: PostgresDatabase) -> None:
    db.call_sync(lambda c: c.execute("INSERT INTO kv (key, value) VALUES (?, ?)", ("b", True)))
    assert db.call_sync(lambda c: kv.get(c, "b")) == "1"
    total = db.call_sync(lambda c: c.execute("SELECT sum(length(value)) FROM kv").fetchone()[0])
    assert (type(total), total) == (int, 1)
    half = db.call_sync(lambda c: c.execute("SELECT sum(0.5::numeric)").fetchone()[0])
    assert (type(half), half) == (float, 0.5)

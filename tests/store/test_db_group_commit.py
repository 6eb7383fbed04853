"""Group commit in Database.call: calls queued behind a running batch run together in
one transaction (one COMMIT), each in its own savepoint."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio
import trio.testing

from leosuite.errors import Conflict, DiskFull, StoreError
from leosuite.store import Database, kv


@contextmanager
def commits_counted(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []
    conn: Any = db._conn
    if isinstance(conn, sqlite3.Connection):
        conn.set_trace_callback(lambda sql: seen.append(sql) if sql == "COMMIT" else None)
        try:
            yield seen
        finally:
            conn.set_trace_callback(None)
        return
    execute = conn.execute  # PostgreSQL: count the COMMITs the store sends

    def counting(sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            seen.append(sql)
        return execute(sql, *args)

    conn.execute = counting
    try:
        yield seen
    finally:
        del conn.execute


def disk_full_error(db: Database) -> sqlite3.Error:
    """The error the back-end's driver gives when the store's disk is full."""
    exc = sqlite3.OperationalError("database or disk is full")
    if isinstance(db._conn, sqlite3.Connection):
        exc.sqlite_errorcode = sqlite3.SQLITE_FULL
    else:
        exc.sqlstate = "53100"  # type: ignore[attr-defined]
    return exc


async def behind_a_blocker(
    db: Database, calls: list[Callable[[sqlite3.Connection], Any]]
) -> list[Any]:
    """Run ``calls`` queued behind one blocked call, so they form one batch; return each
    call's result or exception."""
    started, release = threading.Event(), threading.Event()
    results: list[Any] = [None] * len(calls)

    def blocker(conn: sqlite3.Connection) -> None:
        started.set()
        assert release.wait(10)

    async def run(i: int, fn: Callable[[sqlite3.Connection], Any]) -> None:
        try:
            results[i] = await db.call(fn)
        except Exception as exc:
            results[i] = exc

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(db.call, blocker)
            await trio.to_thread.run_sync(started.wait)
            for i, fn in enumerate(calls):  # one at a time: the queue keeps this order
                nursery.start_soon(run, i, fn)
                await trio.testing.wait_all_tasks_blocked()
            assert db.statistics().tasks_waiting == len(calls)
            release.set()
    return results


def setter(key: str) -> Callable[[sqlite3.Connection], str]:
    def fn(conn: sqlite3.Connection) -> str:
        kv.set(conn, key, "1")
        return key

    return fn


async def test_queued_calls_share_one_commit(db: Database) -> None:
    with commits_counted(db) as commits:
        results = await behind_a_blocker(db, [setter(f"k{i}") for i in range(20)])
    assert results == [f"k{i}" for i in range(20)]
    assert len(commits) == 2  # the blocker's batch, then all twenty together
    for i in range(20):
        assert await db.call(lambda c, i=i: kv.get(c, f"k{i}")) == "1"


async def test_a_failing_call_is_rolled_back_alone(db: Database) -> None:
    def half_then_conflict(conn: sqlite3.Connection) -> None:
        kv.set(conn, "bad", "1")
        raise Conflict("boom")

    def half_then_sqlite_error(conn: sqlite3.Connection) -> None:
        kv.set(conn, "bad2", "1")
        conn.execute("SELECT * FROM no_such_table")

    results = await behind_a_blocker(
        db, [setter("a"), half_then_conflict, setter("b"), half_then_sqlite_error, setter("c")]
    )
    assert results[0::2] == ["a", "b", "c"]
    assert isinstance(results[1], Conflict)
    assert isinstance(results[3], StoreError)
    assert isinstance(results[3].__cause__, sqlite3.OperationalError)
    for key, value in (("a", "1"), ("b", "1"), ("c", "1"), ("bad", None), ("bad2", None)):
        assert await db.call(lambda c, key=key: kv.get(c, key)) == value


async def test_a_call_that_ends_the_transaction_fails_the_ones_before_it(db: Database) -> None:
    """Some SQLite errors (disk full, I/O) end the whole transaction: the calls whose
    work was in it are told so (nothing they wrote is kept), later ones still run."""

    def ends_the_transaction(conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")  # what SQLite does on its own after such an error

    results = await behind_a_blocker(db, [setter("a"), ends_the_transaction, setter("b")])
    assert isinstance(results[0], StoreError)
    assert "transaction lost" in str(results[0])
    assert results[2] == "b"
    assert await db.call(lambda c: kv.get(c, "a")) is None
    assert await db.call(lambda c: kv.get(c, "b")) == "1"


async def test_a_full_disk_that_ends_the_transaction_is_a_full_disk_for_every_call(
    db: Database,
) -> None:
    """When SQLITE_FULL ended the transaction, the calls whose work it took answer 507
    (disk full) like the call that hit it, not an internal error."""

    def hits_a_full_disk(conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")  # SQLite ends the transaction on SQLITE_FULL
        raise disk_full_error(db)

    results = await behind_a_blocker(db, [setter("a"), hits_a_full_disk, setter("b")])
    assert isinstance(results[0], DiskFull), results
    assert isinstance(results[1], DiskFull), results
    assert results[2] == "b"
    assert await db.call(lambda c: kv.get(c, "a")) is None


async def test_a_failed_commit_fails_every_call_of_the_batch(db: Database) -> None:
    def deferred_violation(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA defer_foreign_keys = ON")
        conn.execute(
            "INSERT INTO tokens (token_hash, account_id, created_at, expires_at)"
            " VALUES ('x', 999, 0, 0)"
        )

    results = await behind_a_blocker(db, [setter("a"), deferred_violation])
    assert all(isinstance(r, StoreError) for r in results), results
    assert await db.call(lambda c: kv.get(c, "a")) is None
    assert await db.call(lambda c: c.execute("SELECT count(*) FROM tokens").fetchone()[0]) == 0


async def test_a_call_cancelled_while_queued_never_runs(db: Database) -> None:
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def blocker(conn: sqlite3.Connection) -> None:
        started.set()
        assert release.wait(10)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(db.call, blocker)
            await trio.to_thread.run_sync(started.wait)
            nursery.start_soon(db.call, setter("kept"))
            scope = trio.CancelScope()

            async def doomed() -> None:
                with scope:
                    await db.call(lambda c: ran.append("doomed"))

            nursery.start_soon(doomed)
            await trio.testing.wait_all_tasks_blocked()
            assert db.statistics().tasks_waiting == 2
            scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert db.statistics().tasks_waiting == 1
            release.set()
    assert ran == []
    assert await db.call(lambda c: kv.get(c, "kept")) == "1"


@pytest.mark.parametrize("batch", [1, 50])
async def test_results_reach_their_own_callers(db: Database, batch: int) -> None:
    results = await behind_a_blocker(db, [lambda c, i=i: i * i for i in range(batch)])
    assert results == [i * i for i in range(batch)]

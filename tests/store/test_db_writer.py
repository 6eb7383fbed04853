"""The store's own writer task (Database.run_writer): batches run there, so a caller is
never held by other callers' work, cancelled callers are dropped or finished cleanly,
and calls queued when the writer stops still run."""

from __future__ import annotations

import sqlite3
import threading

import trio
import trio.testing

from leosuite.store import Database, kv


def blocking_call(started: threading.Event, release: threading.Event) -> object:
    def blocker(conn: sqlite3.Connection) -> None:
        kv.set(conn, "blocker", "1")
        started.set()
        assert release.wait(10)

    return blocker


async def test_a_caller_is_not_held_by_the_batches_after_its_own(db: Database) -> None:
    started_a, release_a = threading.Event(), threading.Event()
    started_b, release_b = threading.Event(), threading.Event()
    a_done = trio.Event()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(db.run_writer)

            async def a() -> None:
                await db.call(blocking_call(started_a, release_a))
                a_done.set()

            nursery.start_soon(a)
            await trio.to_thread.run_sync(started_a.wait)
            nursery.start_soon(db.call, blocking_call(started_b, release_b))
            await trio.testing.wait_all_tasks_blocked()
            assert db.statistics().tasks_waiting == 1
            release_a.set()
            # B's batch now runs (and blocks); A has its answer all the same.
            await trio.to_thread.run_sync(started_b.wait)
            await a_done.wait()
            release_b.set()
            nursery.cancel_scope.cancel()


async def test_a_cancelled_queued_call_is_dropped_and_a_running_one_finishes(
    db: Database,
) -> None:
    started, release = threading.Event(), threading.Event()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(db.run_writer)
            running = trio.CancelScope()
            queued = trio.CancelScope()

            async def run_in(scope: trio.CancelScope, fn: object) -> None:
                with scope:
                    await db.call(fn)  # type: ignore[arg-type]

            nursery.start_soon(run_in, running, blocking_call(started, release))
            await trio.to_thread.run_sync(started.wait)
            nursery.start_soon(run_in, queued, lambda c: kv.set(c, "dropped", "1"))
            await trio.testing.wait_all_tasks_blocked()
            queued.cancel()
            running.cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert db.statistics().tasks_waiting == 0
            release.set()
            nursery.cancel_scope.cancel()
    assert db.call_sync(lambda c: kv.get(c, "blocker")) == "1"  # committed, though cancelled
    assert db.call_sync(lambda c: kv.get(c, "dropped")) is None


async def test_calls_queued_when_the_writer_stops_still_run(db: Database) -> None:
    started, release = threading.Event(), threading.Event()
    results: list[str] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as outer:
            writer = trio.CancelScope()

            async def run_writer() -> None:
                with writer:
                    await db.run_writer()

            outer.start_soon(run_writer)
            await trio.testing.wait_all_tasks_blocked()
            outer.start_soon(db.call, blocking_call(started, release))
            await trio.to_thread.run_sync(started.wait)

            async def later(i: int) -> None:
                results.append(await db.call(lambda c: (kv.set(c, f"k{i}", "1"), f"k{i}")[1]))

            for i in range(3):
                outer.start_soon(later, i)
            await trio.testing.wait_all_tasks_blocked()
            writer.cancel()  # the writer stops with a batch under way and three queued
            release.set()
    assert sorted(results) == ["k0", "k1", "k2"]
    # With no writer running, a caller runs its own batch as before.
    assert await db.call(lambda c: kv.get(c, "k2")) == "1"

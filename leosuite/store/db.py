"""One SQLite connection, its start-up checks, migrations and transactions.

All database work goes through :meth:`Database.call` (from trio) or
:meth:`Database.call_sync` (from the CLI, with no trio loop): the function runs
with the connection inside ``BEGIN IMMEDIATE ... COMMIT``, is rolled back if it
raises, and ``sqlite3.Error`` comes out as :class:`~leosuite.errors.StoreError`
(:class:`~leosuite.errors.StoreCorrupt` when SQLite says the file is damaged,
:class:`~leosuite.errors.DiskFull` when its filesystem has no space left).
From trio the work runs in a worker thread, one batch at a time, so the event loop
never waits on the disk and transactions never interleave.

Group commit: calls that arrive while a batch runs wait in a queue and then run
together as the next batch, in one ``BEGIN IMMEDIATE ... COMMIT`` (one fsync),
each inside its own ``SAVEPOINT``: a call that raises is rolled back alone, and a
caller hears of its success only once the batch is committed. A burst of small
writes (audit entries of a bulk stop) costs one commit instead of one each. The
batches run in the store's own task (:meth:`Database.run_writer`, started by the
daemon), so no caller is held by other callers' work; without that task (tools and
tests that open a store alone) the first caller of a burst runs its batches.

The SQLite file's own checks, migrations and error mapping are in :mod:`.sqlite_file`.
:class:`~leosuite.store.postgres.PostgresDatabase` is this class over PostgreSQL
(``store.url``): the same calls, batches and errors, with its own connection, begin,
retries and error mapping.

The store holds password hashes and tokens: it is created 0600 (SQLite gives its
``-wal`` and ``-shm`` files the same mode), and an existing store that other users
may read is tightened to 0600 with a warning.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import outcome
import trio

from ..errors import DiskFull, LeosuiteError, StoreError
from .empty import check_existing_store
from .schema import MIGRATIONS
from .sqlite_file import CREATE_FLAGS, prepare, tighten, translate

__all__ = ["Database"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Job(Generic[T]):
    """One queued :meth:`Database.call`: its function, then its outcome."""

    __slots__ = ("done", "fn", "result")

    def __init__(self, fn: Callable[[sqlite3.Connection], T]) -> None:
        self.fn = fn
        self.result: outcome.Outcome[T] | None = None
        self.done = trio.Event()


class Database:
    """leosuite's store: one ``sqlite3.Connection`` in WAL mode.

    Open it with :meth:`open` (blocking; run it in a thread from async code),
    use it with :meth:`call` or :meth:`call_sync`, and :meth:`close` it.
    The functions passed in must not call back into the same ``Database``.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, name: str = "") -> None:
        self._conn = conn
        self._path = path
        #: How messages name the store (the file's path, or a server's address).
        self._name = name or str(path)
        self._lock = threading.RLock()
        self._queue: list[_Job[Any]] = []
        self._running: list[_Job[Any]] = []  # the batch in the worker thread
        #: Set by run_writer() while it runs; woken when a call is queued.
        self._writer: trio.Event | None = None
        self._closed = False
        #: Called with each batch's duration in seconds, queue to commit (the metrics).
        self.on_batch: Callable[[float], None] | None = None

    @property
    def path(self) -> Path:
        return self._path

    # -- opening -------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        busy_timeout_ms: int = 5000,
        migrations: Sequence[str] = MIGRATIONS,
        data_dir: Path | None = None,
        init: bool = False,
        cache_kib: int = 2000,
    ) -> Database:
        """Open or create the store at ``path``, check it and migrate it.

        Raises :class:`StoreCorrupt` for a damaged file, a file that is not a
        SQLite database or not leosuite's, a schema from a newer leosuite, or an
        empty file while ``data_dir`` (default: the store's directory) holds earlier
        data; the file is then left exactly as it was. ``init`` accepts that empty
        file as a fresh store and refuses one that holds data. Other failures
        (missing directory, permissions, a locked file) raise :class:`StoreError`.
        ``migrations`` exists for tests; the default is the real schema. ``cache_kib``
        bounds the connection's page cache (it grows with the file up to that).
        """
        existed = path.exists()
        if existed:
            check_existing_store(path, path.parent if data_dir is None else data_dir, init=init)
        else:
            try:
                os.close(os.open(path, CREATE_FLAGS, 0o600))
            except FileExistsError:
                existed = True
            except OSError as exc:
                raise StoreError(f"cannot create the database {path}: {exc.strerror}") from exc
        try:
            conn = sqlite3.connect(
                path,
                check_same_thread=False,
                isolation_level=None,
                timeout=busy_timeout_ms / 1000,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the database {path}: {exc}") from exc
        try:
            prepare(conn, path, existed, busy_timeout_ms, migrations)
            conn.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
        except BaseException:
            conn.close()
            raise
        tighten(path)
        return Database(conn, path)

    # -- transactions --------------------------------------------------------

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in a transaction in a worker thread, one batch at a time
        (see the module's note on group commit).

        Not cancellable once its batch has started: a transaction always finishes
        (committed or rolled back) before the caller sees a cancellation. A call
        cancelled while it still waits in the queue is dropped.
        """
        job: _Job[T] = _Job(fn)
        self._queue.append(job)
        if self._writer is not None:
            self._writer.set()
            await self._wait(job)
        elif not self._running:
            await self._drain()  # no batch under way: this caller runs them
        else:
            await self._wait(job)
        assert job.result is not None
        return job.result.unwrap()

    async def _drain(self) -> None:
        """Run batches until the queue is empty (shielded: the callers waiting for them
        must not be left hanging). One drainer at a time: another one under way
        takes what is queued."""
        with trio.CancelScope(shield=True):
            while self._queue and not self._running:
                self._running, self._queue = self._queue, []
                started = time.perf_counter()
                try:
                    await self._run_batch(self._running)
                finally:
                    for queued in self._running:
                        queued.done.set()
                    self._running = []
                    if self.on_batch is not None:
                        self.on_batch(time.perf_counter() - started)

    async def _run_batch(self, jobs: list[_Job[Any]]) -> None:
        """Run one batch in a worker thread (a back-end may retry it)."""
        await trio.to_thread.run_sync(self._batch, jobs)

    async def _wait(self, job: _Job[Any]) -> None:
        """Wait for ``job``'s batch; a cancellation drops it while still queued, else
        waits for its transaction to end first."""
        try:
            await job.done.wait()
        except trio.Cancelled:
            if job in self._queue:
                self._queue.remove(job)
                raise
            with trio.CancelScope(shield=True):
                await job.done.wait()
            raise

    async def run_writer(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run every batch, in this task, until cancelled; the batch under way and the
        calls queued when it is cancelled still run before it returns."""
        if self._writer is not None:
            raise RuntimeError("Database.run_writer() is running already")
        wake = self._writer = trio.Event()
        task_status.started()
        try:
            while True:
                await wake.wait()
                wake = self._writer = trio.Event()
                await self._drain()
        finally:
            self._writer = None
            await self._drain()

    def statistics(self) -> trio.CapacityLimiterStatistics:
        """Calls running in the current batch (``borrowed_tokens``) and waiting for the
        next one (``tasks_waiting``)."""
        return trio.CapacityLimiterStatistics(
            borrowed_tokens=len(self._running),
            total_tokens=1,
            borrowers=[],
            tasks_waiting=len(self._queue),
        )

    def call_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Like :meth:`call`, blocking the calling thread (for the CLI)."""
        return self._transaction(fn)

    def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._closed:
                raise StoreError(f"the database {self._name} is closed")
            conn = self._conn
            if conn.in_transaction:
                raise StoreError("nested Database call inside a transaction")
            self._begin()
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise self._error(exc) from exc
            except BaseException:
                # LeosuiteError subclasses (Conflict, NotFound, ...) and bugs
                # pass through unchanged, after the rollback.
                self._rollback()
                raise
            return result

    def _batch(self, jobs: list[_Job[Any]]) -> None:
        """Run ``jobs`` in one transaction, each in a savepoint; set their results."""
        with self._lock:
            try:
                if self._closed:
                    raise StoreError(f"the database {self._name} is closed")
                if self._conn.in_transaction:
                    raise StoreError("nested Database call inside a transaction")
                self._begin()
            except BaseException as exc:
                for job in jobs:
                    job.result = outcome.Error(exc)
                return
            done: list[_Job[Any]] = []  # succeeded, waiting for the commit
            cause: BaseException | None = None  # the error of the last call that failed
            for job in jobs:
                if not self._conn.in_transaction:
                    # An error made SQLite end the whole transaction: the work done
                    # so far is gone, so those calls failed; go on in a new one.
                    self._begin_after_loss(done, jobs, cause)
                    done = []
                if job.result is not None:
                    continue  # no new transaction could be begun for it
                job.result = self._in_savepoint(job.fn)
                if isinstance(job.result, outcome.Value):
                    done.append(job)
                elif isinstance(job.result, outcome.Error):
                    cause = job.result.error
            if not self._conn.in_transaction:
                self._begin_after_loss(done, jobs, cause)
                return
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                failure = self._caused(exc)
                for job in done:
                    job.result = outcome.Error(failure)

    def _caused(self, exc: sqlite3.Error) -> LeosuiteError:
        """The error for ``exc``, chained to it as ``raise ... from exc`` would."""
        failure = self._error(exc)
        failure.__cause__ = exc
        return failure

    def _error(self, exc: sqlite3.Error) -> LeosuiteError:
        """Our error for a driver's error (the one mapping of each back-end)."""
        return translate(exc, self._path)

    def _begin(self) -> None:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _begin_after_loss(
        self, done: list[_Job[Any]], jobs: list[_Job[Any]], cause: BaseException | None
    ) -> None:
        """Fail the calls whose work the ended transaction took with it, with the error
        that ended it when that is a full disk (so each answers 507, not 500)."""
        lost: LeosuiteError
        if isinstance(cause, DiskFull):
            lost = DiskFull("the change could not be saved", in_store=True)
        else:
            lost = StoreError(f"database operation on {self._name} failed: transaction lost")
        for job in done:
            job.result = outcome.Error(lost)
        if any(job.result is None for job in jobs):
            try:
                self._begin()
            except (StoreError, DiskFull) as exc:
                for job in jobs:
                    if job.result is None:
                        job.result = outcome.Error(exc)

    def _in_savepoint(self, fn: Callable[[sqlite3.Connection], T]) -> outcome.Outcome[T]:
        conn = self._conn
        conn.execute("SAVEPOINT job")
        try:
            result = fn(conn)
            conn.execute("RELEASE job")
        except sqlite3.Error as exc:
            self._undo_savepoint()
            return outcome.Error(self._caused(exc))
        except BaseException as exc:
            # LeosuiteError subclasses (Conflict, NotFound, ...) and bugs pass through
            # unchanged, after this call's work is undone.
            self._undo_savepoint()
            return outcome.Error(exc)
        return outcome.Value(result)

    def _undo_savepoint(self) -> None:
        if not self._conn.in_transaction:
            return
        try:
            self._conn.execute("ROLLBACK TO job")
            self._conn.execute("RELEASE job")
        except sqlite3.Error:
            log.exception("rollback to a savepoint on %s failed", self._path)
            self._rollback()

    def _rollback(self) -> None:
        if not self._conn.in_transaction:
            return
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.exception("rollback on %s failed", self._path)

    # -- closing -------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent). SQLite checkpoints the WAL."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._conn.close()
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

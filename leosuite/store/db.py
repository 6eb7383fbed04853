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

The store holds password hashes and tokens: it is created 0600 (SQLite gives its
``-wal`` and ``-shm`` files the same mode), and an existing store that other users
may read is tightened to 0600 with a warning.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import outcome
import trio

from ..disk_watch import note_disk_full
from ..errors import DiskFull, LeosuiteError, StoreCorrupt, StoreError
from .empty import check_existing_store
from .schema import MIGRATIONS

__all__ = ["Database"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_CORRUPT_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


def _is_corruption(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in _CORRUPT_CODES


def _corrupt_message(path: Path, what: str) -> str:
    return (
        f"the database {path} is damaged or is not a SQLite database ({what}); "
        f"stop leosuite and restore it from a backup, or move it away to start "
        f"with an empty store (leosuite never replaces or repairs it)"
    )


class _Job(Generic[T]):
    """One queued :meth:`Database.call`: its function, then its outcome."""

    __slots__ = ("done", "fn", "result")

    def __init__(self, fn: Callable[[sqlite3.Connection], T]) -> None:
        self.fn = fn
        self.result: outcome.Outcome[T] | None = None
        self.done = trio.Event()


_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _tighten(path: Path) -> None:
    """Take every permission of other users away from the store and its side files."""
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = stat.S_IMODE(os.stat(file).st_mode)
            if mode & 0o077:
                os.chmod(file, mode & 0o700)
                log.warning("%s was open to other users (mode %04o): now %04o", file, mode,
                            mode & 0o700)  # fmt: skip
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("%s: cannot take other users' permissions away: %s", file, exc.strerror)


def _out_of_space(exc: sqlite3.Error, path: Path) -> bool:
    """SQLITE_FULL, or an I/O error while the store's filesystem has no block left
    (SQLite does not say which errno an I/O error had)."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return True
    if code != sqlite3.SQLITE_IOERR:
        return False
    try:
        return os.statvfs(path.parent).f_bavail < 1
    except OSError:
        return False


def _translate(exc: sqlite3.Error, path: Path) -> LeosuiteError:
    if _is_corruption(exc):
        return StoreCorrupt(_corrupt_message(path, str(exc)))
    if _out_of_space(exc, path):
        note_disk_full(path)
        return DiskFull("the change could not be saved", in_store=True)
    return StoreError(f"database operation on {path} failed: {exc}")


class Database:
    """leosuite's store: one ``sqlite3.Connection`` in WAL mode.

    Open it with :meth:`open` (blocking; run it in a thread from async code),
    use it with :meth:`call` or :meth:`call_sync`, and :meth:`close` it.
    The functions passed in must not call back into the same ``Database``.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._path = path
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
    ) -> Database:
        """Open or create the store at ``path``, check it and migrate it.

        Raises :class:`StoreCorrupt` for a damaged file, a file that is not a
        SQLite database or not leosuite's, a schema from a newer leosuite, or an
        empty file while ``data_dir`` (default: the store's directory) holds earlier
        data; the file is then left exactly as it was. ``init`` accepts that empty
        file as a fresh store and refuses one that holds data. Other failures
        (missing directory, permissions, a locked file) raise :class:`StoreError`.
        ``migrations`` exists for tests; the default is the real schema.
        """
        existed = path.exists()
        if existed:
            check_existing_store(path, path.parent if data_dir is None else data_dir, init=init)
        else:
            try:
                os.close(os.open(path, _CREATE_FLAGS, 0o600))
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
            cls._prepare(conn, path, existed, busy_timeout_ms, migrations)
        except BaseException:
            conn.close()
            raise
        _tighten(path)
        return cls(conn, path)

    @staticmethod
    def _prepare(
        conn: sqlite3.Connection,
        path: Path,
        existed: bool,
        busy_timeout_ms: int,
        migrations: Sequence[str],
    ) -> None:
        known = len(migrations)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            # Reading the header first: a foreign file fails here, before
            # anything (the WAL switch, a migration) could write to it.
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > known:
                raise StoreCorrupt(
                    f"the database {path} was created by a newer leosuite "
                    f"(schema {version}, this one knows {known}); run that version "
                    f"or restore a backup made by this one"
                )
            if existed:
                problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
                if problems != ["ok"]:
                    raise StoreCorrupt(_corrupt_message(path, "; ".join(problems)))
            if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise StoreCorrupt(
                    f"the database {path} has tables but no leosuite schema version: "
                    f"it looks like another program's database; point leosuite at "
                    f"another data directory (leosuite never replaces it)"
                )
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"cannot switch the database {path} to WAL mode (got {mode!r}); "
                    f"is it on a file system without shared memory support?"
                )
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            for index in range(version, known):
                Database._migrate(conn, path, index + 1, migrations[index])
        except sqlite3.Error as exc:
            raise _translate(exc, path) from exc

    @staticmethod
    def _migrate(conn: sqlite3.Connection, path: Path, target: int, script: str) -> None:
        # executescript() commits any open transaction first, so the
        # transaction lives inside the script, with the version bump.
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\n;PRAGMA user_version = {int(target)};\nCOMMIT;"
            )
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if _is_corruption(exc):
                raise
            raise StoreError(
                f"migrating the database {path} to schema {target} failed: {exc}; "
                f"it is left at schema {target - 1}"
            ) from exc
        log.info("store %s migrated to schema %d", path, target)

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
                    await trio.to_thread.run_sync(self._batch, self._running)
                finally:
                    for queued in self._running:
                        queued.done.set()
                    self._running = []
                    if self.on_batch is not None:
                        self.on_batch(time.perf_counter() - started)

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
                raise StoreError(f"the database {self._path} is closed")
            conn = self._conn
            if conn.in_transaction:
                raise StoreError("nested Database call inside a transaction")
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _translate(exc, self._path) from exc
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise _translate(exc, self._path) from exc
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
                    raise StoreError(f"the database {self._path} is closed")
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
        failure = _translate(exc, self._path)
        failure.__cause__ = exc
        return failure

    def _begin(self) -> None:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _translate(exc, self._path) from exc

    def _begin_after_loss(
        self, done: list[_Job[Any]], jobs: list[_Job[Any]], cause: BaseException | None
    ) -> None:
        """Fail the calls whose work the ended transaction took with it, with the error
        that ended it when that is a full disk (so each answers 507, not 500)."""
        lost: LeosuiteError
        if isinstance(cause, DiskFull):
            lost = DiskFull("the change could not be saved", in_store=True)
        else:
            lost = StoreError(f"database operation on {self._path} failed: transaction lost")
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
                raise _translate(exc, self._path) from exc

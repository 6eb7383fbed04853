"""The PostgreSQL back-end of the store (``store.url = "postgresql://..."``).

:class:`PostgresDatabase` is a :class:`~leosuite.store.db.Database`: the same calls,
group commit, savepoints and error mapping, over one psycopg connection driven from a
worker thread (one batch at a time, under a limiter of its own), with the table
modules' SQL translated by :mod:`.pg_dialect`. What differs:

* a transaction begins with ``BEGIN`` and a transaction-level advisory lock, so write
  transactions of every process on the store run one at a time, as SQLite's
  ``BEGIN IMMEDIATE`` makes them; a batch that waits longer than ``lock_timeout_ms``
  for it is retried like one that finds the connection lost (below), and the server
  ends the session of a process that stays idle inside a transaction for
  ``idle_in_transaction_ms`` (a node stopped or frozen while it held the lock), so
  one hung node cannot stall the store of every node;
* the schema version lives in the table ``leosuite_schema``; each migration runs in
  its own transaction with the version bump (PostgreSQL's DDL is transactional);
* the database must be UTF-8 with the ``C`` locale (SQLite's text order and ``lower``),
  and may hold no other program's tables;
* a lost connection: a batch that finds it lost before any call ran reconnects and is
  retried, with backoff, for up to ``retry_for`` seconds, and each loss and recovery is
  logged; calls whose work the lost transaction took fail with a StoreError (a
  client sees an internal error with a correlation id, never a traceback);
* an error aborts PostgreSQL's transaction up to the call's savepoint: a call that
  catches a database error and goes on with more statements fails (none does).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import outcome
import psycopg
import psycopg.conninfo
import trio

from ..errors import DiskFull, LeosuiteError, StoreCorrupt, StoreError
from .db import Database, _Job
from .empty import earlier_data
from .pg_conn import ConnectionLost, PgConnection
from .pg_dialect import SCHEMA_TABLE, schema, tables_of
from .schema import MIGRATIONS

__all__ = ["PostgresDatabase", "StoreUnavailable", "display_url", "read_store", "retry_delays"]

T = TypeVar("T")

log = logging.getLogger(__name__)

#: The advisory lock every write transaction takes ("leosuite" in ASCII).
LOCK_KEY = int.from_bytes(b"leosuite", "big")

_CORRUPT_STATES = frozenset({"XX001", "XX002"})  # data_corrupted, index_corrupted
_LOCK_NOT_AVAILABLE = "55P03"
_DISK_FULL = "53100"


class StoreUnavailable(StoreError):
    """The PostgreSQL server could not be reached to begin a transaction: no call of
    the batch ran, so the batch is retried (for ``retry_for`` seconds)."""


def display_url(url: str) -> str:
    """``url`` without its password or options: ``postgresql://user@host:port/db``."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unreadable URL)"
    user = f"{info['user']}@" if info.get("user") else ""
    port = f":{info['port']}" if info.get("port") else ""
    return f"postgresql://{user}{info.get('host', '')}{port}/{info.get('dbname', '')}"


def retry_delays(total: float, *, first: float = 0.1, cap: float = 5.0) -> Iterator[float]:
    """Pauses between attempts: doubling from ``first`` up to ``cap``, while they add
    up to at most ``total`` seconds."""
    spent, delay = 0.0, first
    while spent + delay <= total:
        yield delay
        spent += delay
        delay = min(delay * 2, cap)


#: Connection parameters a URL does not set itself.
_DEFAULTS: dict[str, str | int] = {
    "connect_timeout": 10,
    "application_name": "leosuite",
    "keepalives": 1,
    "keepalives_idle": 15,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


def _connect(url: str, lock_timeout_ms: int, idle_ms: int) -> psycopg.Connection[Any]:
    given = psycopg.conninfo.conninfo_to_dict(url)
    extra = {key: value for key, value in _DEFAULTS.items() if key not in given}
    conn = psycopg.connect(psycopg.conninfo.make_conninfo(url, **extra), autocommit=True)
    try:
        conn.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
        conn.execute(f"SET idle_in_transaction_session_timeout = {int(idle_ms)}")
    except BaseException:
        conn.close()
        raise
    return conn


class PostgresDatabase(Database):
    """The store in a PostgreSQL database; open it with :meth:`connect`."""

    def __init__(
        self,
        conn: PgConnection,
        url: str,
        *,
        lock_timeout_ms: int,
        idle_in_transaction_ms: int,
        retry_for: float,
    ) -> None:
        shown = display_url(url)
        super().__init__(cast(sqlite3.Connection, conn), Path(shown), shown)
        self._pg = conn
        self._url = url
        self._lock_timeout_ms = lock_timeout_ms
        self._idle_ms = idle_in_transaction_ms
        self._retry_for = retry_for
        self._limiter = trio.CapacityLimiter(1)
        self._lost_at: float | None = None
        #: How many times the connection was lost and found again.
        self.reconnects = 0

    @property
    def url(self) -> str:
        """Where the store is, without its password."""
        return self._name

    @property
    def lost_since(self) -> float | None:
        """Since when (``time.monotonic()``) the connection is found lost and not yet
        found again; None while it works."""
        return self._lost_at

    # -- opening -------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        data_dir: Path | None = None,
        init: bool = False,
        lock_timeout_ms: int = 5000,
        idle_in_transaction_ms: int = 10_000,
        retry_for: float = 30.0,
        migrations: Sequence[str] = MIGRATIONS,
    ) -> PostgresDatabase:
        """Connect, check the database and migrate it (blocking: run it in a thread).

        Raises :class:`StoreCorrupt` for another program's database or a schema from a
        newer leosuite, and for an empty database while ``data_dir`` holds earlier data
        (unless ``init``, which in turn refuses a database that holds a store);
        :class:`StoreError` when it cannot connect or the database is not UTF-8 with
        the ``C`` locale.
        """
        shown = display_url(url)
        try:
            raw = _connect(url, lock_timeout_ms, idle_in_transaction_ms)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to the store {shown}: {exc}") from exc
        conn = PgConnection(raw, tables_of(migrations))
        try:
            _prepare(conn, shown, migrations, data_dir=data_dir, init=init)
        except BaseException:
            raw.close()
            raise
        return cls(
            conn,
            url,
            lock_timeout_ms=lock_timeout_ms,
            idle_in_transaction_ms=idle_in_transaction_ms,
            retry_for=retry_for,
        )

    # -- transactions --------------------------------------------------------

    def _error(self, exc: sqlite3.Error) -> LeosuiteError:
        return _translate(exc, self._name)

    def _begin(self) -> None:
        for attempt in (1, 2):
            try:
                if self._pg.broken:
                    self._reconnect()
                self._pg.script(f"BEGIN; SELECT pg_advisory_xact_lock({LOCK_KEY})")
                return
            except ConnectionLost as exc:
                if attempt == 2:
                    raise StoreUnavailable(
                        f"the store {self._name} cannot be reached: {exc}"
                    ) from exc
                self._note_lost(exc)
            except StoreUnavailable:
                raise
            except sqlite3.Error as exc:
                self._rollback()  # BEGIN went through, the lock did not (lock_timeout)
                if getattr(exc, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                    # No call ran: retried while the holder finishes or its session ends.
                    log.warning("store %s: the write lock is held by another process for "
                                "over %d ms", self._name, self._lock_timeout_ms)  # fmt: skip
                    raise StoreUnavailable(
                        f"the store {self._name} is busy: another process holds its write lock"
                    ) from exc
                raise self._error(exc) from exc

    def _reconnect(self) -> None:
        self._note_lost("the connection broke")
        try:
            self._pg.replace(_connect(self._url, self._lock_timeout_ms, self._idle_ms))
        except psycopg.Error as exc:
            raise StoreUnavailable(f"the store {self._name} cannot be reached: {exc}") from exc
        if self._lost_at is not None:
            log.warning("store %s reached again after %.1f s", self._name,
                        time.monotonic() - self._lost_at)  # fmt: skip
            self._lost_at = None
        self.reconnects += 1

    def _note_lost(self, exc: object) -> None:
        if self._lost_at is None:
            self._lost_at = time.monotonic()
            log.warning("connection to the store %s lost (%s): reconnecting", self._name, exc)

    async def _run_batch(self, jobs: list[_Job[Any]]) -> None:
        delays = retry_delays(self._retry_for)
        while True:
            await trio.to_thread.run_sync(self._batch, jobs, limiter=self._limiter)
            if not all(_unavailable(job) for job in jobs):
                return
            delay = next(delays, None)
            if delay is None:
                log.error("store %s unreachable or busy for %.0f s: %d calls failed", self._name,
                          self._retry_for, len(jobs))  # fmt: skip
                return
            for job in jobs:
                job.result = None
            await trio.sleep(delay)


def read_store(url: str, fn: Callable[[sqlite3.Connection], T]) -> T | None:
    """``fn`` on the store at ``url`` in a read-only transaction, the database neither
    checked nor migrated (blocking); None when it holds no store yet. StoreError when
    it cannot be reached or read."""
    shown = display_url(url)
    try:
        raw = _connect(url, 5000, 10_000)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to the store {shown}: {exc}") from exc
    conn = PgConnection(raw, tables_of(MIGRATIONS))
    try:
        if _scalar(conn, "SELECT to_regclass(?)::text", (SCHEMA_TABLE,)) is None:
            return None
        conn.script("BEGIN READ ONLY")
        return fn(cast(sqlite3.Connection, conn))
    except sqlite3.Error as exc:
        raise _translate(exc, shown) from exc
    finally:
        raw.close()  # ends the transaction: nothing was written


def _unavailable(job: _Job[Any]) -> bool:
    return isinstance(job.result, outcome.Error) and isinstance(job.result.error, StoreUnavailable)


def _translate(exc: sqlite3.Error, shown: str) -> LeosuiteError:
    state = getattr(exc, "sqlstate", None)
    if isinstance(exc, ConnectionLost):
        # Not StoreUnavailable: work was under way, so the call is never run again.
        return StoreError(f"the connection to the store {shown} was lost: {exc}")
    if state in _CORRUPT_STATES:
        return StoreCorrupt(
            f"the store {shown} reports damaged data ({exc}); restore it from a backup"
        )
    if state == _DISK_FULL:
        return DiskFull("the change could not be saved", in_store=True)
    return StoreError(f"database operation on {shown} failed: {exc}")


# -- checks and migrations ----------------------------------------------------------


def _scalar(conn: PgConnection, sql: str, params: Sequence[object] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def _prepare(
    conn: PgConnection,
    shown: str,
    migrations: Sequence[str],
    *,
    data_dir: Path | None,
    init: bool,
) -> None:
    try:
        _check_database(conn, shown)
        version = _version(conn, shown, len(migrations))
        holds_data = version > 0
        if init and holds_data:
            raise StoreError(
                f"the store {shown} holds data: start without --init (it creates a fresh "
                f"store only in an empty database; leosuite never replaces a store)"
            )
        if not holds_data and not init and data_dir is not None:
            leftovers = earlier_data(data_dir / ".postgresql", data_dir)
            if leftovers:
                listed = ", ".join(leftovers[:5]) + (", ..." if len(leftovers) > 5 else "")
                raise StoreCorrupt(
                    f"the store {shown} is empty but the data directory {data_dir} holds "
                    f"data of an earlier store ({listed}); point store.url at that store, "
                    f"or run 'leosuite serve --init' to start with a fresh store on purpose"
                )
        for index in range(version, len(migrations)):
            _migrate(conn, shown, index + 1, migrations[index])
    except sqlite3.Error as exc:
        raise _translate(exc, shown) from exc


def _check_database(conn: PgConnection, shown: str) -> None:
    encoding, c_order, c_lower = conn.execute(
        "SELECT pg_encoding_to_char(encoding), 'B' < 'a', lower(chr(201)) = chr(201) "
        "FROM pg_database WHERE datname = current_database()"
    ).fetchone()
    if encoding != "UTF8" or not (c_order and c_lower):
        raise StoreError(
            f"the database of {shown} must be UTF-8 with the C locale (its text order "
            f"and case rules are the store's); create it with: CREATE DATABASE <name> "
            f"TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C' OWNER <role>"
        )


def _version(conn: PgConnection, shown: str, known: int) -> int:
    if _scalar(conn, "SELECT to_regclass(?)::text", (SCHEMA_TABLE,)) is None:
        others = _scalar(conn, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")
        if others:
            raise StoreCorrupt(
                f"the database of {shown} has tables but no leosuite schema version: it "
                f"looks like another program's database; point store.url at another "
                f"database (leosuite never replaces it)"
            )
        return 0
    version = int(_scalar(conn, f"SELECT version FROM {SCHEMA_TABLE}") or 0)  # noqa: S608
    if version > known:
        raise StoreCorrupt(
            f"the store {shown} was created by a newer leosuite (schema {version}, this "
            f"one knows {known}); run that version or restore a backup made by this one"
        )
    return version


def _migrate(conn: PgConnection, shown: str, target: int, script: str) -> None:
    setup = (
        "CREATE EXTENSION IF NOT EXISTS citext;\n"
        f"CREATE TABLE {SCHEMA_TABLE} (version BIGINT NOT NULL);\n"
        f"INSERT INTO {SCHEMA_TABLE} (version) VALUES (0);\n"
    )
    try:
        conn.script(f"BEGIN; SELECT pg_advisory_xact_lock({LOCK_KEY})")
        exists = _scalar(conn, "SELECT to_regclass(?)::text", (SCHEMA_TABLE,)) is not None
        current = int(_scalar(conn, f"SELECT version FROM {SCHEMA_TABLE}")) if exists else 0  # noqa: S608
        if current >= target:  # another process migrated it meanwhile
            conn.script("COMMIT")
            return
        bump = f"UPDATE {SCHEMA_TABLE} SET version = {int(target)}"  # noqa: S608
        conn.script(f"{'' if exists else setup}{schema(script)}\n;{bump};")
        conn.script("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.script("ROLLBACK")
        if isinstance(exc, ConnectionLost):
            raise
        raise StoreError(
            f"migrating the store {shown} to schema {target} failed: {exc}; "
            f"it is left at schema {target - 1}"
        ) from exc
    log.info("store %s migrated to schema %d", shown, target)

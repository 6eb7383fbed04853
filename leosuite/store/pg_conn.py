"""A psycopg connection that the table modules use as they use a ``sqlite3.Connection``.

The table modules call ``execute``/``executemany`` with SQLite's SQL and read
``fetchone``, ``fetchall``, iteration, ``rowcount`` and ``lastrowid``; the transaction
code reads ``in_transaction``. :class:`PgConnection` gives them exactly that over one
psycopg connection in autocommit mode (the store writes ``BEGIN``/``COMMIT`` itself),
translating each statement with :mod:`.pg_dialect` and each psycopg error into the
``sqlite3`` error of the same kind, so every caller's error handling (a unique
violation caught as ``sqlite3.IntegrityError`` becoming a Conflict) holds on both
back-ends. An error that lost the connection is :class:`ConnectionLost`.

PostgreSQL text cannot hold the NUL character: one in a string parameter is stored
as the noncharacter U+FFFF and read back as NUL (so a U+FFFF stored comes back as NUL).
A boolean parameter is passed as 0 or 1, as SQLite stores it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import psycopg
import psycopg.adapt
from psycopg.pq import TransactionStatus
from psycopg.types.string import TextLoader

from .pg_dialect import Tables, UnsupportedPragma, statement

__all__ = ["ConnectionLost", "PgConnection", "PgCursor"]

_IN_TRANSACTION = frozenset({TransactionStatus.INTRANS, TransactionStatus.INERROR,
                             TransactionStatus.ACTIVE})  # fmt: skip


class ConnectionLost(sqlite3.OperationalError):
    """The connection to PostgreSQL broke (server gone, restarted, network)."""


class _NumericLoader(psycopg.adapt.Loader):
    """``numeric`` results (``sum`` of integers) as int when whole, else float, as
    SQLite answers them."""

    def load(self, data: Any) -> int | float:
        value = Decimal(bytes(data).decode("ascii"))
        return int(value) if value == value.to_integral_value() else float(value)


#: What stands for NUL in PostgreSQL's text.
_NUL = "\uffff"


class _TextLoader(TextLoader):
    """Text results with NUL where :func:`_param` stored it."""

    def load(self, data: Any) -> bytes | str:
        value = super().load(data)
        if isinstance(value, str) and _NUL in value:
            return value.replace(_NUL, "\x00")
        return value


def _param(value: object) -> object:
    """A parameter as SQLite would store it: booleans as 0/1 (the schema's integers)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", _NUL)
    return value


def _register(conn: psycopg.Connection[Any]) -> None:
    conn.adapters.register_loader("numeric", _NumericLoader)
    conn.adapters.register_loader("text", _TextLoader)


class PgCursor:
    """The part of ``sqlite3.Cursor`` the table modules read."""

    def __init__(self, cursor: psycopg.Cursor[Any] | None, lastrowid: int | None = None):
        self._cursor = cursor
        self.lastrowid = lastrowid
        self.rowcount = -1 if cursor is None else cursor.rowcount
        self._rows: list[tuple[Any, ...]] | None = None
        if lastrowid is not None or (cursor is not None and cursor.description is None):
            self._rows = []

    def fetchone(self) -> Any:
        if self._rows is not None:
            return self._rows.pop(0) if self._rows else None
        assert self._cursor is not None
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        if self._rows is not None:
            rows, self._rows = self._rows, []
            return rows
        assert self._cursor is not None
        return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class PgConnection:
    """One psycopg connection behind ``sqlite3.Connection``'s interface (see the module)."""

    def __init__(self, conn: psycopg.Connection[Any], tables: Tables) -> None:
        self._pg = conn
        self._tables = tables
        _register(conn)

    @property
    def pg(self) -> psycopg.Connection[Any]:
        return self._pg

    def replace(self, conn: psycopg.Connection[Any]) -> None:
        """Go on with a new connection (after the old one was lost)."""
        old, self._pg = self._pg, conn
        _register(conn)
        with contextlib.suppress(psycopg.Error):
            old.close()

    @property
    def in_transaction(self) -> bool:
        return self._pg.info.transaction_status in _IN_TRANSACTION

    @property
    def broken(self) -> bool:
        return self._pg.broken or self._pg.closed

    def _fail(self, exc: psycopg.Error) -> sqlite3.Error:
        """The ``sqlite3`` error for ``exc``, with its SQLSTATE as ``sqlstate``."""
        message = str(exc).strip() or type(exc).__name__
        failure: sqlite3.Error
        if self.broken:
            failure = ConnectionLost(message)
        elif isinstance(exc, psycopg.IntegrityError):
            failure = sqlite3.IntegrityError(message)
        else:
            failure = sqlite3.OperationalError(message)
        setattr(failure, "sqlstate", exc.sqlstate)  # noqa: B010
        return failure

    def execute(self, sql: str, params: Sequence[object] = ()) -> PgCursor:
        try:
            query, wants_id = statement(sql, self._tables)
        except UnsupportedPragma as exc:
            raise sqlite3.OperationalError(str(exc)) from exc
        try:
            cursor = self._pg.execute(query, [_param(p) for p in params])
            if query == "COMMIT" and cursor.statusmessage != "COMMIT":
                # PostgreSQL ends a transaction that had an error with ROLLBACK here.
                raise sqlite3.OperationalError("the transaction was rolled back, not committed")
            if wants_id:
                row = cursor.fetchone()
                return PgCursor(cursor, None if row is None else int(row[0]))
            return PgCursor(cursor)
        except psycopg.Error as exc:
            raise self._fail(exc) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> PgCursor:
        query, _ = statement(sql, self._tables)
        batch = [[_param(p) for p in row] for row in rows]
        if not batch:
            return PgCursor(None)
        try:
            with self._pg.cursor() as cursor:
                cursor.executemany(query, batch)
                result = PgCursor(None)
                result.rowcount = cursor.rowcount
                return result
        except psycopg.Error as exc:
            raise self._fail(exc) from exc

    def script(self, sql: str) -> None:
        """Run statements as they are (PostgreSQL's dialect, no parameters)."""
        try:
            self._pg.execute(sql)
        except psycopg.Error as exc:
            raise self._fail(exc) from exc

    def close(self) -> None:
        try:
            self._pg.close()
        except psycopg.Error as exc:
            raise self._fail(exc) from exc

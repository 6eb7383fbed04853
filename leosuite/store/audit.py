"""The ``audit_log`` table: who did what, when, in which session.

One entry per login, failed login, server action, moderation action or bad
input. Entries are ordered by id (insertion order), so paging is stable even
if the wall clock steps back; ``after`` and the age limit of :func:`purge`
compare timestamps. The session filter is case-insensitive (``str.casefold``).
Over-long fields are cut to a bounded size, never refused: logging must not fail.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Literal, get_args

import msgspec

from ..errors import InvalidInput

__all__ = [
    "LEVELS",
    "MAX_FIELD_CHARS",
    "MAX_MESSAGE_CHARS",
    "AuditEntry",
    "Level",
    "SELECT_ENTRIES",
    "append",
    "count",
    "entry_of",
    "page",
    "purge",
]

Level = Literal["debug", "info", "warning", "error"]
LEVELS: tuple[str, ...] = get_args(Level)

#: The columns :func:`entry_of` reads, in its order (a ``WHERE`` may follow).
SELECT_ENTRIES = (
    "SELECT id, timestamp, level, topic, session, user_id, user_ip, user_name, message "
    "FROM audit_log"
)

MAX_MESSAGE_CHARS = 4000
MAX_FIELD_CHARS = 200


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    timestamp: float
    level: str
    topic: str
    session: str
    user_id: int | None
    user_ip: str
    user_name: str
    message: str

    @property
    def user_triple(self) -> str:
        """``"id;ip;name"``, each part empty when unknown (``";127.0.0.1;"``)."""
        user_id = "" if self.user_id is None else str(self.user_id)
        return f"{user_id};{self.user_ip};{self.user_name}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def entry_of(row: tuple[Any, ...]) -> AuditEntry:
    """An entry from a row of :data:`SELECT_ENTRIES`."""
    return AuditEntry(
        id=row[0],
        timestamp=row[1],
        level=row[2],
        topic=row[3],
        session=row[4],
        user_id=row[5],
        user_ip=row[6],
        user_name=row[7],
        message=row[8],
    )


def append(
    conn: sqlite3.Connection,
    *,
    timestamp: float,
    level: str,
    topic: str,
    message: str,
    session: str = "",
    user_id: int | None = None,
    user_ip: str = "",
    user_name: str = "",
) -> int:
    """Add an entry; returns its id. An unknown level is InvalidInput (a bug)."""
    if level not in LEVELS:
        raise InvalidInput(f"audit level must be one of {', '.join(LEVELS)}", field="level")
    session = _cut(session, MAX_FIELD_CHARS)
    cursor = conn.execute(
        "INSERT INTO audit_log (timestamp, level, topic, session, session_fold, user_id, "
        "user_ip, user_name, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            timestamp,
            level,
            _cut(topic, MAX_FIELD_CHARS),
            session,
            session.casefold(),
            user_id,
            _cut(user_ip, MAX_FIELD_CHARS),
            _cut(user_name, MAX_FIELD_CHARS),
            _cut(message, MAX_MESSAGE_CHARS),
        ),
    )
    entry_id = cursor.lastrowid
    assert entry_id is not None
    return entry_id


def _where(session: str | None, after: float | None) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if session is not None:
        clauses.append("session_fold = ?")
        params.append(session.casefold())
    if after is not None:
        clauses.append("timestamp > ?")
        params.append(after)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def page(
    conn: sqlite3.Connection,
    *,
    offset: int = 0,
    limit: int = 100,
    newest_first: bool = True,
    session: str | None = None,
    after: float | None = None,
) -> list[AuditEntry]:
    """Up to ``limit`` entries from ``offset``, optionally only one session's
    (any letter case) and only those with ``timestamp > after``."""
    if offset < 0 or limit < 0:
        raise InvalidInput("offset and limit must not be negative", field="page")
    where, params = _where(session, after)
    order = "DESC" if newest_first else "ASC"
    rows = conn.execute(
        f"{SELECT_ENTRIES}{where} ORDER BY id {order} LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    return [entry_of(row) for row in rows]


def count(conn: sqlite3.Connection, session: str | None = None, after: float | None = None) -> int:
    """How many entries :func:`page` could return with the same filters."""
    where, params = _where(session, after)
    query = f"SELECT count(*) FROM audit_log{where}"  # noqa: S608
    return int(conn.execute(query, params).fetchone()[0])


def purge(
    conn: sqlite3.Connection, *, older_than: float | None = None, keep_last: int | None = None
) -> int:
    """Delete entries with ``timestamp < older_than`` and all but the newest
    ``keep_last``; how many were deleted. ``None`` disables a limit."""
    deleted = 0
    if older_than is not None:
        deleted += conn.execute("DELETE FROM audit_log WHERE timestamp < ?", (older_than,)).rowcount
    if keep_last is not None:
        if keep_last < 0:
            raise InvalidInput("keep_last must not be negative", field="keep_last")
        deleted += conn.execute(
            "DELETE FROM audit_log WHERE id NOT IN "
            "(SELECT id FROM audit_log ORDER BY id DESC LIMIT ?)",
            (keep_last,),
        ).rowcount
    return deleted

"""Searching the ``audit_log`` table as the admin API's ``GET /log/`` filters it.

Every filter is optional and they all apply together:

* ``sessions``: entries whose session is one of these (any letter case);
* ``session_names``: entries of the chat sessions once opened under one of these
  names, found through the entry the chat core writes when it opens a session
  (topic ``Status``, ``session <name> created``, with the session's id), so a closed
  session's entries are found by its name too (ASCII letters in any case);
* ``user``: text within the entry's ``id;ip;name`` triple (ASCII letters in any case);
* ``contains``: text within the message (ASCII letters in any case);
* ``after``: only entries with ``timestamp > after``;
* ``before``: only entries with ``timestamp < before``;
* ``levels``: entries of one of these levels;
* ``topic``: entries of this topic (ASCII letters in any case).

Texts are matched with ``instr``, never ``LIKE``, so ``%`` and ``_`` are plain
characters. Newest first, by id (oldest first on request).
"""

from __future__ import annotations

import sqlite3

import msgspec

from ..errors import InvalidInput
from .audit import SELECT_ENTRIES, AuditEntry, entry_of

__all__ = ["CREATED", "LogQuery", "count", "search"]

#: The message of the entry the chat core writes when it opens a session.
CREATED = "session {name} created"

_TRIPLE = "coalesce(user_id, '') || ';' || user_ip || ';' || user_name"


class LogQuery(msgspec.Struct, frozen=True, kw_only=True):
    sessions: tuple[str, ...] = ()
    session_names: tuple[str, ...] = ()
    user: str = ""
    contains: str = ""
    after: float | None = None
    before: float | None = None
    levels: tuple[str, ...] = ()
    topic: str = ""


def _where(query: LogQuery) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if query.sessions or query.session_names:
        either: list[str] = []
        if query.sessions:
            either.append(f"session_fold IN ({', '.join('?' * len(query.sessions))})")
            params.extend(s.casefold() for s in query.sessions)
        for name in query.session_names:
            either.append(
                "session_fold IN (SELECT session_fold FROM audit_log "
                "WHERE topic = 'Status' AND lower(message) = lower(?) AND session_fold != '')"
            )
            params.append(CREATED.format(name=name))
        clauses.append("(" + " OR ".join(either) + ")")
    if query.user:
        clauses.append(f"instr(lower({_TRIPLE}), lower(?)) > 0")
        params.append(query.user)
    if query.contains:
        clauses.append("instr(lower(message), lower(?)) > 0")
        params.append(query.contains)
    if query.after is not None:
        clauses.append("timestamp > ?")
        params.append(query.after)
    if query.before is not None:
        clauses.append("timestamp < ?")
        params.append(query.before)
    if query.levels:
        clauses.append(f"level IN ({', '.join('?' * len(query.levels))})")
        params.extend(query.levels)
    if query.topic:
        clauses.append("lower(topic) = lower(?)")
        params.append(query.topic)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def search(
    conn: sqlite3.Connection,
    query: LogQuery,
    *,
    offset: int,
    limit: int,
    newest_first: bool = True,
) -> list[AuditEntry]:
    """Up to ``limit`` entries from ``offset`` that ``query`` keeps, newest first
    unless ``newest_first`` is false."""
    if offset < 0 or limit < 0:
        raise InvalidInput("offset and limit must not be negative", field="page")
    where, params = _where(query)
    order = "DESC" if newest_first else "ASC"
    rows = conn.execute(
        f"{SELECT_ENTRIES}{where} ORDER BY id {order} LIMIT ? OFFSET ?", (*params, limit, offset)
    )
    return [entry_of(row) for row in rows]


def count(conn: sqlite3.Connection, query: LogQuery) -> int:
    """How many entries :func:`search` could return for ``query``."""
    where, params = _where(query)
    sql = f"SELECT count(*) FROM audit_log{where}"  # noqa: S608
    return int(conn.execute(sql, params).fetchone()[0])

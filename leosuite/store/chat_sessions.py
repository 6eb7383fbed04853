"""The ``chat_sessions`` tables: persistent chat sessions (schema 2; flags: schema 5).

One row per session whose ``persistent`` flag is set, with its properties, its
password and operator password hashes, the names of its operators, muted and banned
users (``chat_session_names``) and its history as an opaque blob that
:mod:`leosuite.community.persistence` encodes (``history_format`` says how). Members
are never stored. Rows are addressed by the session's uuid.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import msgspec

__all__ = ["StoredSession", "delete", "ids", "list_all", "upsert"]

ROLES = ("op", "muted", "banned")


class StoredSession(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    alias: str = ""
    title: str = ""
    founder: str = ""
    password_hash: str | None = None
    opword_hash: str | None = None
    closed: bool = False
    nsfm: bool = False
    auth_only: bool = False
    idle_override: bool = False
    preserve_chat: bool = True
    max_user_count: int
    start_time: float
    last_activity: float
    next_id: int = 1
    ops: tuple[str, ...] = ()
    muted: tuple[str, ...] = ()
    banned: tuple[str, ...] = ()
    history_format: int = 1
    history: bytes = b""
    saved_at: float = 0.0


_COLUMNS = (
    "id, name, alias, title, founder, password_hash, opword_hash, closed, nsfm, "
    "preserve_chat, max_user_count, start_time, last_activity, next_id, "
    "history_format, history, saved_at, auth_only, idle_override"
)


def upsert(conn: sqlite3.Connection, session: StoredSession) -> None:
    """Insert or replace one session (its names too)."""
    conn.execute(
        f"INSERT INTO chat_sessions ({_COLUMNS}) "  # noqa: S608
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET name = excluded.name, alias = excluded.alias, "
        "title = excluded.title, founder = excluded.founder, "
        "password_hash = excluded.password_hash, opword_hash = excluded.opword_hash, "
        "closed = excluded.closed, nsfm = excluded.nsfm, "
        "preserve_chat = excluded.preserve_chat, max_user_count = excluded.max_user_count, "
        "start_time = excluded.start_time, last_activity = excluded.last_activity, "
        "next_id = excluded.next_id, history_format = excluded.history_format, "
        "history = excluded.history, saved_at = excluded.saved_at, "
        "auth_only = excluded.auth_only, idle_override = excluded.idle_override",
        (
            session.id,
            session.name,
            session.alias,
            session.title,
            session.founder,
            session.password_hash,
            session.opword_hash,
            int(session.closed),
            int(session.nsfm),
            int(session.preserve_chat),
            session.max_user_count,
            session.start_time,
            session.last_activity,
            session.next_id,
            session.history_format,
            session.history,
            session.saved_at,
            int(session.auth_only),
            int(session.idle_override),
        ),
    )
    conn.execute("DELETE FROM chat_session_names WHERE session_id = ?", (session.id,))
    conn.executemany(
        "INSERT OR IGNORE INTO chat_session_names (session_id, role, name) VALUES (?, ?, ?)",
        [
            (session.id, role, name)
            for role, names in zip(ROLES, (session.ops, session.muted, session.banned), strict=True)
            for name in names
        ],
    )


def delete(conn: sqlite3.Connection, session_ids: Iterable[str]) -> int:
    """Delete these sessions' rows; returns how many existed."""
    return sum(
        conn.execute("DELETE FROM chat_sessions WHERE id = ?", (sid,)).rowcount
        for sid in session_ids
    )


def ids(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT id FROM chat_sessions")}


def list_all(conn: sqlite3.Connection) -> list[StoredSession]:
    """Every stored session, oldest first."""
    names: dict[str, dict[str, list[str]]] = {}
    for sid, role, name in conn.execute(
        "SELECT session_id, role, name FROM chat_session_names ORDER BY session_id, role, name"
    ):
        names.setdefault(sid, {}).setdefault(role, []).append(name)
    query = f"SELECT {_COLUMNS} FROM chat_sessions ORDER BY start_time, id"  # noqa: S608
    out: list[StoredSession] = []
    for row in conn.execute(query):
        roles = names.get(row[0], {})
        out.append(
            StoredSession(
                id=row[0],
                name=row[1],
                alias=row[2],
                title=row[3],
                founder=row[4],
                password_hash=row[5],
                opword_hash=row[6],
                closed=bool(row[7]),
                nsfm=bool(row[8]),
                preserve_chat=bool(row[9]),
                max_user_count=row[10],
                start_time=row[11],
                last_activity=row[12],
                next_id=row[13],
                history_format=row[14],
                # not a blob (hand-edited?): kept as bytes for the decoder to refuse
                history=row[15] if isinstance(row[15], bytes) else str(row[15]).encode(),
                saved_at=row[16],
                auth_only=bool(row[17]),
                idle_override=bool(row[18]),
                ops=tuple(roles.get("op", ())),
                muted=tuple(roles.get("muted", ())),
                banned=tuple(roles.get("banned", ())),
            )
        )
    return out

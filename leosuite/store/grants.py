"""The ``server_grants`` table: rights on one server given to another account.

A row gives ``account_id`` the ``rights`` (comma-separated, sorted names; which names
exist is :data:`leosuite.auth.permissions.RIGHTS`) on ``server_id``. Granting an empty
set deletes the row. A row goes with its server and with its account (``ON DELETE
CASCADE``); ids are never reused, so a grant never passes to a later server or account.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import msgspec

__all__ = ["Grant", "format_rights", "list_all", "of_server", "parse_rights", "set_rights"]


class Grant(msgspec.Struct, frozen=True, kw_only=True):
    """One account's rights on one server, with who granted them and when."""

    server_id: int
    account_id: int
    username: str
    locked: bool
    rights: frozenset[str]
    granted_by: int | None
    granted_at: float


def parse_rights(text: str) -> frozenset[str]:
    return frozenset(r for r in text.split(",") if r)


def format_rights(rights: Iterable[str]) -> str:
    return ",".join(sorted(set(rights)))


def list_all(conn: sqlite3.Connection) -> dict[tuple[int, int], frozenset[str]]:
    """Every grant as ``{(server_id, account_id): rights}``."""
    rows = conn.execute("SELECT server_id, account_id, rights FROM server_grants")
    return {(server, account): parse_rights(rights) for server, account, rights in rows}


def of_server(conn: sqlite3.Connection, server_id: int) -> list[Grant]:
    """The grants on one server, by username."""
    rows = conn.execute(
        "SELECT g.server_id, g.account_id, a.username, a.locked, g.rights, g.granted_by, "
        "g.granted_at FROM server_grants AS g JOIN accounts AS a ON a.id = g.account_id "
        "WHERE g.server_id = ? ORDER BY a.username COLLATE NOCASE",
        (server_id,),
    )
    return [
        Grant(
            server_id=row[0],
            account_id=row[1],
            username=row[2],
            locked=bool(row[3]),
            rights=parse_rights(row[4]),
            granted_by=row[5],
            granted_at=row[6],
        )
        for row in rows
    ]


def set_rights(
    conn: sqlite3.Connection,
    *,
    server_id: int,
    account_id: int,
    rights: Iterable[str],
    granted_by: int | None,
    now: float,
) -> frozenset[str]:
    """Give ``account_id`` exactly ``rights`` on ``server_id`` (none: revoke); return the
    rights it had before (empty if none)."""
    row = conn.execute(
        "SELECT rights FROM server_grants WHERE server_id = ? AND account_id = ?",
        (server_id, account_id),
    ).fetchone()
    before = frozenset() if row is None else parse_rights(row[0])
    text = format_rights(rights)
    if not text:
        conn.execute(
            "DELETE FROM server_grants WHERE server_id = ? AND account_id = ?",
            (server_id, account_id),
        )
    else:
        conn.execute(
            "INSERT INTO server_grants (server_id, account_id, rights, granted_by, granted_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (server_id, account_id) DO UPDATE SET "
            "rights = excluded.rights, granted_by = excluded.granted_by, "
            "granted_at = excluded.granted_at",
            (server_id, account_id, text, granted_by, now),
        )
    return before

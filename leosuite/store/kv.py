"""The ``kv`` table: small named values (runtime settings changed at run time)."""

from __future__ import annotations

import sqlite3

__all__ = ["delete", "get", "insert_absent", "items", "set"]


def get(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Insert or replace."""
    conn.execute(
        "INSERT INTO kv (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def insert_absent(conn: sqlite3.Connection, key: str, value: str) -> str:
    """Insert ``value`` unless ``key`` has one; return the value stored (the first
    writer's, so that daemons sharing the store agree on it)."""
    conn.execute(
        "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, value)
    )
    stored = get(conn, key)
    assert stored is not None  # inserted, or there before, in this transaction
    return stored


def delete(conn: sqlite3.Connection, key: str) -> bool:
    """True if the key existed."""
    return conn.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount > 0


def items(conn: sqlite3.Connection, prefix: str = "") -> dict[str, str]:
    """Every key starting with ``prefix`` and its value."""
    rows = conn.execute(
        "SELECT key, value FROM kv WHERE substr(key, 1, ?) = ? ORDER BY key",
        (len(prefix), prefix),
    )
    return {str(key): str(value) for key, value in rows}

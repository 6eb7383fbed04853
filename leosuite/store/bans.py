"""The ``bans`` table: server-wide IP bans (seed 002's banlist).

A row is an address (``ip``, compressed text form) and a prefix length
(``subnet``; 0 bans the single address), an optional expiry (unix seconds,
``None`` never expires), a comment and when it was added. The values are
validated by :mod:`leosuite.auth.ban_rules` before they get here; this module only
stores them. Ids are never reused.
"""

from __future__ import annotations

import sqlite3

import msgspec

from ..errors import InvalidInput

__all__ = ["BanRecord", "create", "delete", "get", "list_all", "purge_expired"]

#: SQLite integers are signed 64-bit: a larger id cannot exist.
MAX_ID = 2**63 - 1


class BanRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    ip: str
    subnet: int
    expires: float | None
    comment: str
    added: float

    def expired(self, now: float) -> bool:
        return self.expires is not None and self.expires <= now


_COLUMNS = "id, ip, subnet, expires, comment, added"


def _row(row: tuple[int, str, int, float | None, str, float]) -> BanRecord:
    return BanRecord(
        id=row[0], ip=row[1], subnet=row[2], expires=row[3], comment=row[4], added=row[5]
    )


def create(
    conn: sqlite3.Connection,
    *,
    ip: str,
    subnet: int,
    expires: float | None,
    comment: str,
    added: float,
) -> BanRecord:
    """Insert a ban and return it with its new id."""
    if not 0 <= subnet <= 128:
        raise InvalidInput("subnet must be 0-128", field="subnet")
    cursor = conn.execute(
        "INSERT INTO bans (ip, subnet, expires, comment, added) VALUES (?, ?, ?, ?, ?)",
        (ip, subnet, expires, comment, added),
    )
    ban_id = cursor.lastrowid
    assert ban_id is not None
    return BanRecord(id=ban_id, ip=ip, subnet=subnet, expires=expires, comment=comment, added=added)


def get(conn: sqlite3.Connection, ban_id: int) -> BanRecord | None:
    if not 0 < ban_id <= MAX_ID:
        return None
    query = f"SELECT {_COLUMNS} FROM bans WHERE id = ?"  # noqa: S608
    row = conn.execute(query, (ban_id,)).fetchone()
    return None if row is None else _row(row)


def list_all(conn: sqlite3.Connection) -> list[BanRecord]:
    """Every ban (expired ones too, until purged), oldest first."""
    query = f"SELECT {_COLUMNS} FROM bans ORDER BY id"  # noqa: S608
    return [_row(row) for row in conn.execute(query)]


def delete(conn: sqlite3.Connection, ban_id: int) -> BanRecord | None:
    """Delete a ban; the deleted record, or None if there was none."""
    if not 0 < ban_id <= MAX_ID:
        return None
    query = f"DELETE FROM bans WHERE id = ? RETURNING {_COLUMNS}"  # noqa: S608
    row = conn.execute(query, (ban_id,)).fetchone()
    return None if row is None else _row(row)


def purge_expired(conn: sqlite3.Connection, now: float) -> list[BanRecord]:
    """Delete every ban that expired at or before ``now``; the deleted records."""
    query = (
        f"DELETE FROM bans WHERE expires IS NOT NULL AND expires <= ? "  # noqa: S608
        f"RETURNING {_COLUMNS}"
    )
    return sorted((_row(row) for row in conn.execute(query, (now,))), key=lambda b: b.id)

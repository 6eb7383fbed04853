"""The ``tokens`` table: access tokens, by hash, with a sliding expiry and the address
each was last used from (``last_ip``).

The store never sees a token, only :func:`hash_token` of it (lowercase hex
sha256). Timestamps are unix seconds from the caller's clock. Deleting an
account deletes its tokens (``ON DELETE CASCADE``).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable

import msgspec

from ..errors import Conflict, NotFound

__all__ = [
    "Token",
    "delete_by_hash",
    "delete_for_account",
    "delete_used_from",
    "get_by_hash",
    "hash_token",
    "insert",
    "live_hashes",
    "list_for_account",
    "purge_expired",
    "set_expiry",
]


class Token(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    token_hash: str
    account_id: int
    created_at: float
    expires_at: float
    last_ip: str


def hash_token(token: str) -> str:
    """The stored form of a token: lowercase hex sha256 of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


_COLUMNS = "id, token_hash, account_id, created_at, expires_at, last_ip"


def _row(row: tuple[int, str, int, float, float, str]) -> Token:
    return Token(
        id=row[0],
        token_hash=row[1],
        account_id=row[2],
        created_at=row[3],
        expires_at=row[4],
        last_ip=row[5],
    )


def insert(
    conn: sqlite3.Connection,
    *,
    token_hash: str,
    account_id: int,
    created_at: float,
    expires_at: float,
    last_ip: str = "",
) -> Token:
    """Store a new token. An unknown account is NotFound; a reused hash, Conflict."""
    if conn.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone() is None:
        raise NotFound(f"no account with id {account_id}", field="account")
    try:
        cursor = conn.execute(
            "INSERT INTO tokens (token_hash, account_id, created_at, expires_at, last_ip) "
            "VALUES (?, ?, ?, ?, ?)",
            (token_hash, account_id, created_at, expires_at, last_ip),
        )
    except sqlite3.IntegrityError as exc:
        raise Conflict("this token exists already", field="token") from exc
    token_id = cursor.lastrowid
    assert token_id is not None
    return Token(
        id=token_id,
        token_hash=token_hash,
        account_id=account_id,
        created_at=created_at,
        expires_at=expires_at,
        last_ip=last_ip,
    )


def get_by_hash(conn: sqlite3.Connection, token_hash: str) -> Token | None:
    """The token with this hash, expired or not (the caller compares with its clock)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM tokens WHERE token_hash = ?",  # noqa: S608
        (token_hash,),
    ).fetchone()
    return None if row is None else _row(row)


def list_for_account(conn: sqlite3.Connection, account_id: int) -> list[Token]:
    return [
        _row(row)
        for row in conn.execute(
            f"SELECT {_COLUMNS} FROM tokens WHERE account_id = ? ORDER BY id",  # noqa: S608
            (account_id,),
        )
    ]


def set_expiry(
    conn: sqlite3.Connection, token_hash: str, expires_at: float, *, last_ip: str | None = None
) -> bool:
    """Slide a token's expiry (and record the address it was used from); False if gone."""
    if last_ip is None:
        cursor = conn.execute(
            "UPDATE tokens SET expires_at = ? WHERE token_hash = ?", (expires_at, token_hash)
        )
    else:
        cursor = conn.execute(
            "UPDATE tokens SET expires_at = ?, last_ip = ? WHERE token_hash = ?",
            (expires_at, last_ip, token_hash),
        )
    return cursor.rowcount > 0


def delete_by_hash(conn: sqlite3.Connection, token_hash: str) -> bool:
    """Delete one token (logout); True if it existed."""
    return conn.execute("DELETE FROM tokens WHERE token_hash = ?", (token_hash,)).rowcount > 0


def delete_for_account(conn: sqlite3.Connection, account_id: int) -> int:
    """Delete every token of an account (password change, lock); how many."""
    return conn.execute("DELETE FROM tokens WHERE account_id = ?", (account_id,)).rowcount


def purge_expired(conn: sqlite3.Connection, now: float) -> int:
    """Delete the tokens whose expiry is at or before ``now``; how many."""
    return conn.execute("DELETE FROM tokens WHERE expires_at <= ?", (now,)).rowcount


def delete_used_from(conn: sqlite3.Connection, covered: Callable[[str], bool]) -> list[str]:
    """Delete the tokens whose last address ``covered`` accepts (an IP ban); their hashes."""
    rows = conn.execute("SELECT token_hash, last_ip FROM tokens WHERE last_ip != ''").fetchall()
    hashes: list[str] = [token_hash for token_hash, last_ip in rows if covered(last_ip)]
    conn.executemany("DELETE FROM tokens WHERE token_hash = ?", [(h,) for h in hashes])
    return hashes


def live_hashes(conn: sqlite3.Connection, hashes: list[str]) -> set[str]:
    """Which of ``hashes`` are stored tokens of unlocked accounts."""
    live: set[str] = set()
    for start in range(0, len(hashes), 500):  # within SQLite's limit on parameters
        chunk = hashes[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        rows = conn.execute(
            "SELECT t.token_hash FROM tokens t JOIN accounts a ON a.id = t.account_id "  # noqa: S608
            f"WHERE a.locked = 0 AND t.token_hash IN ({marks})",
            chunk,
        )
        live.update(row[0] for row in rows)
    return live

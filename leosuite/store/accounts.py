"""The ``accounts`` table: usernames, password hashes, lock state and flags.

Usernames are 1-32 ASCII letters, digits, ``_``, ``-`` or ``.``; they are
unique regardless of case and stored as given. Flags are a subset of
``ADMIN``, ``HOST`` and ``MOD``, which grant rights, and the Drawpile server's own
``GHOST``, ``BANEXEMPT``, ``WEB``, ``WEBHOST``, ``WEBSESSION`` and ``PERSIST``, which
are kept and shown for its web admin and grant nothing here. Functions that change
an account by id raise :class:`~leosuite.errors.NotFound` when it does not exist;
:func:`delete` answers whether it did.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable

import msgspec

from ..errors import Conflict, InvalidInput, NotFound, PermissionDenied

__all__ = [
    "ADMIN",
    "DRAWPILE_FLAGS",
    "FLAGS",
    "HOST",
    "MOD",
    "Account",
    "count",
    "create",
    "delete",
    "format_flags",
    "get",
    "get_by_name",
    "list_all",
    "parse_flags",
    "require_admin",
    "set_flags",
    "set_locked",
    "set_password_hash",
    "validate_username",
]

ADMIN = "ADMIN"
HOST = "HOST"
MOD = "MOD"
#: The Drawpile server's account flags: kept and shown, they grant nothing in leosuite.
DRAWPILE_FLAGS: frozenset[str] = frozenset(
    {"GHOST", "BANEXEMPT", "WEB", "WEBHOST", "WEBSESSION", "PERSIST"}
)
#: Every flag an account may carry.
FLAGS: frozenset[str] = frozenset({ADMIN, HOST, MOD}) | DRAWPILE_FLAGS

_USERNAME_RE = re.compile(r"[A-Za-z0-9_.\-]{1,32}", re.ASCII)
_USERNAME_RULE = "1-32 characters, each an ASCII letter, a digit, '_', '-' or '.'"


class Account(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    username: str
    password_hash: str
    locked: bool
    flags: frozenset[str]
    created_at: float


def validate_username(name: object) -> str:
    """Return ``name`` unchanged if it is a valid username, else raise InvalidInput."""
    if not isinstance(name, str):
        raise InvalidInput(f"username must be a string of {_USERNAME_RULE}", field="username")
    if _USERNAME_RE.fullmatch(name) is None:
        raise InvalidInput(f"username must be {_USERNAME_RULE}", field="username")
    return name


def parse_flags(flags: str | Iterable[str]) -> frozenset[str]:
    """``"host, mod"`` or ``["HOST", "MOD"]`` -> ``frozenset({"HOST", "MOD"})``.

    Case-insensitive; empty items are ignored; an unknown flag is InvalidInput.
    """
    items = flags.split(",") if isinstance(flags, str) else flags
    result: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise InvalidInput("flags must be strings", field="flags")
        flag = item.strip().upper()
        if not flag:
            continue
        if flag not in FLAGS:
            allowed = ", ".join(sorted(FLAGS - DRAWPILE_FLAGS))
            kept = ", ".join(sorted(DRAWPILE_FLAGS))
            raise InvalidInput(
                f"unknown flag {item.strip()[:40]!r}; allowed: {allowed}, and Drawpile's {kept}",
                field="flags",
            )
        result.add(flag)
    return frozenset(result)


def format_flags(flags: str | Iterable[str]) -> str:
    """The stored form: sorted, comma-separated (``"ADMIN,HOST"``)."""
    return ",".join(sorted(parse_flags(flags)))


_SELECT = "SELECT id, username, password_hash, locked, flags, created_at FROM accounts"
_UPDATES = {
    column: f"UPDATE accounts SET {column} = ? WHERE id = ?"  # noqa: S608
    for column in ("password_hash", "locked", "flags")
}


def _row(row: tuple[int, str, str, int, str, float]) -> Account:
    return Account(
        id=row[0],
        username=row[1],
        password_hash=row[2],
        locked=bool(row[3]),
        flags=parse_flags(row[4]),
        created_at=row[5],
    )


def create(
    conn: sqlite3.Connection,
    *,
    username: str,
    password_hash: str,
    created_at: float,
    flags: str | Iterable[str] = (),
    locked: bool = False,
) -> Account:
    """Insert an account; a username taken in any letter case is a Conflict."""
    validate_username(username)
    stored_flags = format_flags(flags)
    try:
        cursor = conn.execute(
            "INSERT INTO accounts (username, password_hash, locked, flags, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (username, password_hash, int(locked), stored_flags, created_at),
        )
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"the username {username!r} is taken", field="username") from exc
    account_id = cursor.lastrowid
    assert account_id is not None
    return Account(
        id=account_id,
        username=username,
        password_hash=password_hash,
        locked=locked,
        flags=parse_flags(stored_flags),
        created_at=created_at,
    )


def get(conn: sqlite3.Connection, account_id: int) -> Account | None:
    row = conn.execute(_SELECT + " WHERE id = ?", (account_id,)).fetchone()
    return None if row is None else _row(row)


def get_by_name(conn: sqlite3.Connection, username: str) -> Account | None:
    """Look an account up by username, in any letter case."""
    row = conn.execute(_SELECT + " WHERE username = ?", (username,)).fetchone()
    return None if row is None else _row(row)


def list_all(conn: sqlite3.Connection) -> list[Account]:
    """Every account, oldest first."""
    return [_row(row) for row in conn.execute(_SELECT + " ORDER BY id")]


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM accounts").fetchone()[0])


def _update(conn: sqlite3.Connection, account_id: int, column: str, value: object) -> None:
    cursor = conn.execute(_UPDATES[column], (value, account_id))
    if cursor.rowcount == 0:
        raise NotFound(f"no account with id {account_id}", field="account")


def set_password_hash(conn: sqlite3.Connection, account_id: int, password_hash: str) -> None:
    _update(conn, account_id, "password_hash", password_hash)


def set_locked(conn: sqlite3.Connection, account_id: int, locked: bool) -> None:
    _update(conn, account_id, "locked", int(locked))


def set_flags(conn: sqlite3.Connection, account_id: int, flags: str | Iterable[str]) -> None:
    _update(conn, account_id, "flags", format_flags(flags))


def require_admin(conn: sqlite3.Connection, account_id: int, token_hash: str = "") -> None:
    """PermissionDenied unless ``account_id`` is an unlocked ADMIN account and, when
    ``token_hash`` is given, that token of it is still stored: an administrative change
    checks who asks again inside its own transaction."""
    account = get(conn, account_id)
    if account is None or account.locked or ADMIN not in account.flags:
        raise PermissionDenied("your account is no longer an unlocked ADMIN account")
    sql = "SELECT 1 FROM tokens WHERE token_hash = ? AND account_id = ?"
    if token_hash and conn.execute(sql, (token_hash, account_id)).fetchone() is None:
        raise PermissionDenied("your session has ended")


def delete(conn: sqlite3.Connection, account_id: int) -> bool:
    """Delete an account and (by cascade) its tokens; True if it existed."""
    cursor = conn.execute("DELETE FROM accounts WHERE id = ?", (account_id,))
    return cursor.rowcount > 0

"""Account operations shared by the daemon and the CLI (``leosuite user ...``).

They work on a :class:`~leosuite.store.db.Database` directly, so ``leosuite user``
works when the daemon is down. The daemon notices changes made this way only for
new logins; use the admin API to lock an account of a running daemon at once.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import Conflict, InvalidInput, NotFound
from ..store import accounts, tokens
from ..store.db import Database
from .passwords import PasswordHasher

__all__ = [
    "INITIAL_PASSWORD_FILE",
    "check_password",
    "create_account",
    "ensure_first_admin",
    "lock_account",
    "set_password",
]

INITIAL_PASSWORD_FILE = "initial-admin-password"  # noqa: S105 - a file name


def check_password(password: str, min_length: int) -> None:
    if len(password) < min_length:
        raise InvalidInput(f"password must be at least {min_length} characters", field="password")
    if len(password) > 1024 or "\x00" in password:
        raise InvalidInput(
            "password must be at most 1024 characters, without NUL", field="password"
        )


def create_account(
    db: Database,
    hasher: PasswordHasher,
    username: str,
    password: str,
    *,
    flags: Iterable[str] = (),
    min_length: int = 8,
    now: float | None = None,
) -> accounts.Account:
    username = accounts.validate_username(username)
    check_password(password, min_length)
    flag_set = accounts.parse_flags(list(flags))
    password_hash = hasher.hash_sync(password)
    created = time.time() if now is None else now
    return db.call_sync(
        lambda conn: accounts.create(
            conn, username=username, password_hash=password_hash, created_at=created, flags=flag_set
        )
    )


def _require(conn: sqlite3.Connection, username: str) -> accounts.Account:
    account = accounts.get_by_name(conn, username)
    if account is None:
        raise NotFound(f"no account named {username!r}", field="username")
    return account


def set_password(
    db: Database, hasher: PasswordHasher, username: str, password: str, *, min_length: int = 8
) -> int:
    """Change a password and destroy the account's tokens; returns tokens destroyed."""
    check_password(password, min_length)
    password_hash = hasher.hash_sync(password)

    def change(conn: sqlite3.Connection) -> int:
        account = _require(conn, username)
        accounts.set_password_hash(conn, account.id, password_hash)
        return tokens.delete_for_account(conn, account.id)

    return db.call_sync(change)


def lock_account(db: Database, username: str, locked: bool) -> int:
    """Lock (destroying its tokens) or unlock an account; the last unlocked admin stays."""

    def change(conn: sqlite3.Connection) -> int:
        account = _require(conn, username)
        if locked and "ADMIN" in account.flags and not account.locked:
            admins = [a for a in accounts.list_all(conn) if "ADMIN" in a.flags and not a.locked]
            if len(admins) <= 1:
                raise Conflict("cannot lock the last unlocked ADMIN account")
        accounts.set_locked(conn, account.id, locked)
        return tokens.delete_for_account(conn, account.id) if locked else 0

    return db.call_sync(change)


def ensure_first_admin(
    db: Database,
    hasher: PasswordHasher,
    data_dir: Path,
    environ: Mapping[str, str],
    *,
    min_length: int = 8,
    now: float | None = None,
) -> str | None:
    """With no accounts at all, create ``admin``.

    Its password is ``LEOSUITE_ADMIN_PASSWORD`` if set; else a generated one,
    written to ``<data>/initial-admin-password`` (mode 0600) and returned so the
    caller prints it once. Returns ``None`` when nothing was generated.
    """
    if db.call_sync(accounts.count) > 0:
        return None
    given = environ.get("LEOSUITE_ADMIN_PASSWORD")
    password = given or secrets.token_urlsafe(18)
    create_account(
        db,
        hasher,
        "admin",
        password,
        flags=["ADMIN"],
        min_length=min_length if given else 8,
        now=now,
    )
    if given:
        return None
    path = data_dir / INITIAL_PASSWORD_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    os.chmod(path, 0o600)
    return password

"""The SQLite file under the store: its start-up checks, migrations and error mapping.

:meth:`leosuite.store.db.Database.open` creates the file 0600 (:data:`CREATE_FLAGS`),
:func:`prepare` checks it (a foreign or damaged file, a newer schema) and migrates it,
:func:`tighten` takes other users' permissions away, and :func:`translate` maps
``sqlite3.Error`` into the store's errors.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Sequence
from pathlib import Path

from ..disk_watch import note_disk_full
from ..errors import DiskFull, LeosuiteError, StoreCorrupt, StoreError

__all__ = ["CREATE_FLAGS", "is_corruption", "migrate", "prepare", "tighten", "translate"]

log = logging.getLogger("leosuite.store.db")

_CORRUPT_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


def is_corruption(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in _CORRUPT_CODES


def _corrupt_message(path: Path, what: str) -> str:
    return (
        f"the database {path} is damaged or is not a SQLite database ({what}); "
        f"stop leosuite and restore it from a backup, or move it away to start "
        f"with an empty store (leosuite never replaces or repairs it)"
    )


CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def tighten(path: Path) -> None:
    """Take every permission of other users away from the store and its side files."""
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = stat.S_IMODE(os.stat(file).st_mode)
            if mode & 0o077:
                os.chmod(file, mode & 0o700)
                log.warning("%s was open to other users (mode %04o): now %04o", file, mode,
                            mode & 0o700)  # fmt: skip
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("%s: cannot take other users' permissions away: %s", file, exc.strerror)


def _out_of_space(exc: sqlite3.Error, path: Path) -> bool:
    """SQLITE_FULL, or an I/O error while the store's filesystem has no block left
    (SQLite does not say which errno an I/O error had)."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return True
    if code != sqlite3.SQLITE_IOERR:
        return False
    try:
        return os.statvfs(path.parent).f_bavail < 1
    except OSError:
        return False


def translate(exc: sqlite3.Error, path: Path) -> LeosuiteError:
    if is_corruption(exc):
        return StoreCorrupt(_corrupt_message(path, str(exc)))
    if _out_of_space(exc, path):
        note_disk_full(path)
        return DiskFull("the change could not be saved", in_store=True)
    return StoreError(f"database operation on {path} failed: {exc}")


def prepare(
    conn: sqlite3.Connection,
    path: Path,
    existed: bool,
    busy_timeout_ms: int,
    migrations: Sequence[str],
) -> None:
    known = len(migrations)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        # Reading the header first: a foreign file fails here, before
        # anything (the WAL switch, a migration) could write to it.
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > known:
            raise StoreCorrupt(
                f"the database {path} was created by a newer leosuite "
                f"(schema {version}, this one knows {known}); run that version "
                f"or restore a backup made by this one"
            )
        if existed:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                raise StoreCorrupt(_corrupt_message(path, "; ".join(problems)))
        if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise StoreCorrupt(
                f"the database {path} has tables but no leosuite schema version: "
                f"it looks like another program's database; point leosuite at "
                f"another data directory (leosuite never replaces it)"
            )
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(
                f"cannot switch the database {path} to WAL mode (got {mode!r}); "
                f"is it on a file system without shared memory support?"
            )
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        for index in range(version, known):
            migrate(conn, path, index + 1, migrations[index])
    except sqlite3.Error as exc:
        raise translate(exc, path) from exc


def migrate(conn: sqlite3.Connection, path: Path, target: int, script: str) -> None:
    # executescript() commits any open transaction first, so the
    # transaction lives inside the script, with the version bump.
    try:
        conn.executescript(
            f"BEGIN IMMEDIATE;\n{script}\n;PRAGMA user_version = {int(target)};\nCOMMIT;"
        )
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if is_corruption(exc):
            raise
        raise StoreError(
            f"migrating the database {path} to schema {target} failed: {exc}; "
            f"it is left at schema {target - 1}"
        ) from exc
    log.info("store %s migrated to schema %d", path, target)

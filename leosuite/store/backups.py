"""The ``server_backups`` table: a server's backups (:mod:`leosuite.backups`).

Rows go with their server (``ON DELETE CASCADE``); a backup's name is unique on its
server. A row is written only once its archive file is complete under its final name.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from ..backups.model import Backup

__all__ = ["add", "all_backups", "delete", "get", "names_of_server", "of_server", "used_by_owner"]

_SELECT = (
    "SELECT id, server_id, name, created_at, size, sha256, files, source_bytes, compression, "
    "by_name, note FROM server_backups"
)


def _backup(row: tuple[Any, ...]) -> Backup:
    return Backup(
        id=row[0],
        server_id=row[1],
        name=row[2],
        created_at=row[3],
        size=row[4],
        sha256=row[5],
        files=row[6],
        source_bytes=row[7],
        compression=row[8],
        by=row[9],
        note=row[10],
    )


def all_backups(conn: sqlite3.Connection) -> list[Backup]:
    return [_backup(r) for r in conn.execute(_SELECT + " ORDER BY id")]


def of_server(conn: sqlite3.Connection, server_id: int) -> list[Backup]:
    """The server's backups, newest first."""
    rows = conn.execute(
        _SELECT + " WHERE server_id = ? ORDER BY created_at DESC, id DESC", (server_id,)
    )
    return [_backup(r) for r in rows]


def names_of_server(conn: sqlite3.Connection, server_id: int) -> set[str]:
    rows = conn.execute("SELECT name FROM server_backups WHERE server_id = ?", (server_id,))
    return {r[0] for r in rows}


def get(conn: sqlite3.Connection, server_id: int, backup_id: int) -> Backup | None:
    """The backup ``backup_id`` if it is one of ``server_id``'s."""
    row = conn.execute(
        _SELECT + " WHERE server_id = ? AND id = ?", (server_id, backup_id)
    ).fetchone()
    return None if row is None else _backup(row)


def used_by_owner(conn: sqlite3.Connection, owner_id: int) -> int:
    """Bytes of backups of every server ``owner_id`` owns."""
    row = conn.execute(
        "SELECT coalesce(sum(b.size), 0) FROM server_backups b "
        "JOIN servers s ON s.id = b.server_id WHERE s.owner_id = ?",
        (owner_id,),
    ).fetchone()
    return int(row[0])


def add(conn: sqlite3.Connection, backup: Backup) -> Backup:
    """Insert ``backup`` (its ``id`` is ignored); the stored backup. A server that is
    gone or a taken name raises ``sqlite3.IntegrityError``."""
    cursor = conn.execute(
        "INSERT INTO server_backups (server_id, name, created_at, size, sha256, files, "
        "source_bytes, compression, by_name, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            backup.server_id,
            backup.name,
            backup.created_at,
            backup.size,
            backup.sha256,
            backup.files,
            backup.source_bytes,
            backup.compression,
            backup.by,
            backup.note,
        ),
    )
    assert cursor.lastrowid is not None
    return msgspec.structs.replace(backup, id=cursor.lastrowid)


def delete(conn: sqlite3.Connection, backup_id: int) -> None:
    conn.execute("DELETE FROM server_backups WHERE id = ?", (backup_id,))

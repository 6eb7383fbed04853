"""The ``server_processes`` table: the live process of each running server.

A row is written right after the spawn and removed once the daemon has seen the
process exit, so after a daemon restart (a crash, ``kill -9``, a reload) the rows
name exactly the servers that may still be running. The process id alone is not
enough to find a process again (pids are reused): ``start_time`` and ``boot_id``
tell the same process from another one with that pid.
"""

from __future__ import annotations

import sqlite3

import msgspec

__all__ = ["ProcessRecord", "forget", "list_all", "record"]


class ProcessRecord(msgspec.Struct, frozen=True, kw_only=True):
    server: str
    pid: int
    start_time: int
    boot_id: str
    started_at: float


def record(conn: sqlite3.Connection, entry: ProcessRecord) -> None:
    """Store the process of ``entry.server`` (replacing an older one); a server that
    no longer exists is ignored."""
    conn.execute(
        "INSERT OR REPLACE INTO server_processes "
        "(server_id, pid, start_time, boot_id, started_at) "
        "SELECT id, ?, ?, ?, ? FROM servers WHERE name = ?",
        (entry.pid, entry.start_time, entry.boot_id, entry.started_at, entry.server),
    )


def forget(conn: sqlite3.Connection, server: str, pid: int | None = None) -> None:
    """Remove the server's process (only if it is ``pid``, when given)."""
    if pid is None:
        conn.execute(
            "DELETE FROM server_processes WHERE server_id = "
            "(SELECT id FROM servers WHERE name = ?)",
            (server,),
        )
    else:
        conn.execute(
            "DELETE FROM server_processes WHERE pid = ? AND server_id = "
            "(SELECT id FROM servers WHERE name = ?)",
            (pid, server),
        )


def list_all(conn: sqlite3.Connection) -> dict[str, ProcessRecord]:
    """Every recorded process, by server name."""
    rows = conn.execute(
        "SELECT servers.name, pid, start_time, boot_id, started_at FROM server_processes "
        "JOIN servers ON servers.id = server_processes.server_id"
    )
    return {
        name: ProcessRecord(
            server=name, pid=pid, start_time=start_time, boot_id=boot_id, started_at=started_at
        )
        for name, pid, start_time, boot_id, started_at in rows
    }

"""The ``server_schedules`` table: a server's schedules (:mod:`leosuite.schedules`).

Rows go with their server (``ON DELETE CASCADE``); a schedule's name is unique on its
server. The caller checks every value (:mod:`leosuite.schedules.model`) before writing.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from ..schedules.model import Schedule, Step, Timing

__all__ = [
    "add",
    "count_of_server",
    "delete",
    "get",
    "list_all",
    "of_server",
    "replace",
    "set_last",
]

#: Every column, in the order :func:`_schedule` reads them.
_SELECT = (
    "SELECT id, server_id, name, cron, interval, zone, steps_json, enabled, only_if_running, "
    "only_if_players, created_by, anchor_at, last_due, last_result FROM server_schedules"
)


def _schedule(row: tuple[Any, ...]) -> Schedule:
    lines: list[list[str]] = msgspec.json.decode(row[6])
    return Schedule(
        id=row[0],
        server_id=row[1],
        name=row[2],
        timing=Timing(cron=row[3], interval=row[4], zone=row[5]),
        steps=tuple(Step(kind, arg) for kind, arg in lines),  # type: ignore[arg-type]
        enabled=bool(row[7]),
        only_if_running=bool(row[8]),
        only_if_players=bool(row[9]),
        created_by=row[10],
        anchor_at=row[11],
        last_due=row[12],
        last_result=row[13],
    )


def _values(s: Schedule) -> tuple[Any, ...]:
    steps = msgspec.json.encode([[step.kind, step.arg] for step in s.steps]).decode()
    return (
        s.name,
        s.timing.cron,
        s.timing.interval,
        s.timing.zone,
        steps,
        int(s.enabled),
        int(s.only_if_running),
        int(s.only_if_players),
        s.anchor_at,
    )


def list_all(conn: sqlite3.Connection) -> list[Schedule]:
    return [_schedule(r) for r in conn.execute(_SELECT)]


def of_server(conn: sqlite3.Connection, server_id: int) -> list[Schedule]:
    rows = conn.execute(
        _SELECT + " WHERE server_id = ? ORDER BY name",
        (server_id,),
    )
    return [_schedule(r) for r in rows]


def get(conn: sqlite3.Connection, server_id: int, name: str) -> Schedule | None:
    row = conn.execute(
        _SELECT + " WHERE server_id = ? AND name = ?",
        (server_id, name),
    ).fetchone()
    return None if row is None else _schedule(row)


def count_of_server(conn: sqlite3.Connection, server_id: int) -> int:
    row = conn.execute(
        "SELECT count(*) FROM server_schedules WHERE server_id = ?", (server_id,)
    ).fetchone()
    return int(row[0])


def add(conn: sqlite3.Connection, s: Schedule) -> Schedule:
    """Insert ``s`` (its ``id`` is ignored); the stored schedule. A taken name raises
    ``sqlite3.IntegrityError``."""
    cursor = conn.execute(
        "INSERT INTO server_schedules (name, cron, interval, zone, steps_json, enabled, "
        "only_if_running, only_if_players, anchor_at, server_id, created_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*_values(s), s.server_id, s.created_by),
    )
    assert cursor.lastrowid is not None
    return msgspec.structs.replace(s, id=cursor.lastrowid)


def replace(conn: sqlite3.Connection, s: Schedule) -> None:
    """Store every changeable field of ``s`` (by id); its last run is forgotten."""
    conn.execute(
        "UPDATE server_schedules SET name = ?, cron = ?, interval = ?, zone = ?, "
        "steps_json = ?, enabled = ?, only_if_running = ?, only_if_players = ?, "
        "anchor_at = ?, last_due = NULL, last_result = '' WHERE id = ?",
        (*_values(s), s.id),
    )


def delete(conn: sqlite3.Connection, schedule_id: int) -> None:
    conn.execute("DELETE FROM server_schedules WHERE id = ?", (schedule_id,))


def set_last(conn: sqlite3.Connection, schedule_id: int, due: float | None, result: str) -> None:
    """Record a run's outcome and the due time it handled (None: a run on demand)."""
    conn.execute(
        "UPDATE server_schedules SET last_due = coalesce(?, last_due), last_result = ? "
        "WHERE id = ?",
        (due, result[:300], schedule_id),
    )

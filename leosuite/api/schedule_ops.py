"""A server's schedules, as every API surface offers them (HTTP
``/api/server_schedule_*``, WebSocket ``schedule.*``, the CLI through them).

Who may do what: whoever sees the server (its owner, an ADMIN, a grantee with any
right) lists its schedules; only its owner or an ADMIN creates, changes, deletes and
runs them (:meth:`ServerOps.managed`: 404 for whoever does not see the server, 403 for a
grantee), since a schedule acts later without anyone present. On a server of an
admin-only type that is an ADMIN only. "Only if players online" is refused when the
server's type does not say how to ask. Each change and each run on demand is audited.
"""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any

import msgspec

from ..errors import Conflict, InvalidInput, NotFound
from ..schedules.actions import players_query
from ..schedules.model import (
    MAX_LINE,
    MAX_SCHEDULES_PER_SERVER,
    MAX_STEPS,
    Schedule,
    check_name,
    parse_steps,
    parse_timing,
)
from ..schedules.scheduler import Scheduler
from ..store import schedules as schedule_table
from ..store.servers import ServerRecord
from .server_ops import ServerOps

__all__ = ["ScheduleDefinition", "ScheduleOps", "StepList"]

#: The steps a request lists, each one line of text.
StepList = Annotated[
    list[Annotated[str, msgspec.Meta(max_length=MAX_LINE + 20)]],
    msgspec.Meta(max_length=MAX_STEPS),
]


class ScheduleDefinition(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What a create or an update gives (an update replaces the whole definition)."""

    server: str
    name: str
    #: Five crontab fields (minute hour day-of-month month day-of-week); or ``interval``.
    cron: str | None = None
    #: Seconds between runs, counted from the create or the last update.
    interval: float | None = None
    #: A zoneinfo name the cron fields are read in; default UTC.
    zone: str | None = None
    steps: StepList
    enabled: bool = True
    only_if_running: bool = False
    only_if_players: bool = False


class ScheduleOps:
    """One caller's management of server schedules (``ops``: who asks, from where)."""

    def __init__(self, ops: ServerOps) -> None:
        self.ops = ops

    @property
    def _scheduler(self) -> Scheduler:
        scheduler = self.ops.ctx.schedules
        if scheduler is None:
            raise Conflict("schedules are not running yet")
        return scheduler

    def _managed(self, server: str) -> ServerRecord:
        record = self.ops.managed(server)
        self.ops.may_operate(record, "command")
        return record

    def view(self, s: Schedule) -> dict[str, Any]:
        scheduler = self._scheduler
        return {
            "name": s.name,
            "cron": s.timing.cron,
            "interval": s.timing.interval,
            "zone": s.timing.zone,
            "steps": [step.text() for step in s.steps],
            "enabled": s.enabled,
            "only_if_running": s.only_if_running,
            "only_if_players": s.only_if_players,
            "next_run": scheduler.next_run(s.id),
            "last_due": s.last_due,
            "last_result": s.last_result,
            "running": scheduler.running(s.id),
        }

    async def listing(self, server: str) -> dict[str, Any]:
        record = self.ops.visible(server)
        rows = await self.ops.ctx.db.call(lambda conn: schedule_table.of_server(conn, record.id))
        return {
            "server": server,
            "players_query": players_query(self.ops.manager, record.type) is not None,
            "schedules": [self.view(s) for s in rows],
        }

    def _schedule(self, record: ServerRecord, given: ScheduleDefinition) -> Schedule:
        timing = parse_timing(given.cron, given.interval, given.zone)
        steps = parse_steps(given.steps)
        if given.only_if_players and players_query(self.ops.manager, record.type) is None:
            raise InvalidInput(
                f"servers of type {record.type!r} do not say how many players are online "
                "(their type declares no players_command), so a schedule cannot run "
                "only if players are online",
                field="only_if_players",
            )
        return Schedule(
            id=0,
            server_id=record.id,
            name=check_name(given.name),
            timing=timing,
            steps=steps,
            enabled=given.enabled,
            only_if_running=given.only_if_running,
            only_if_players=given.only_if_players,
            created_by=self.ops.principal.account_id,
            anchor_at=self.ops.ctx.now(),
        )

    async def create(self, given: ScheduleDefinition) -> dict[str, Any]:
        record = self._managed(given.server)
        wanted = self._schedule(record, given)

        def write(conn: sqlite3.Connection) -> Schedule:
            _server_exists(conn, record)
            if schedule_table.count_of_server(conn, record.id) >= MAX_SCHEDULES_PER_SERVER:
                raise Conflict(f"a server has at most {MAX_SCHEDULES_PER_SERVER} schedules")
            if schedule_table.get(conn, record.id, wanted.name) is not None:
                raise Conflict(f"server {record.name!r} has a schedule named {wanted.name!r}")
            return schedule_table.add(conn, wanted)

        stored = await self.ops.ctx.db.call(write)
        self._scheduler.put(stored)
        await self.ops.audit(given.server, f"schedule {stored.name} created: {_summary(stored)}")
        return {"server": given.server, "schedule": self.view(stored)}

    async def update(self, given: ScheduleDefinition) -> dict[str, Any]:
        record = self._managed(given.server)
        wanted = self._schedule(record, given)

        def write(conn: sqlite3.Connection) -> Schedule:
            _server_exists(conn, record)
            found = _existing(conn, record, wanted.name)
            changed = msgspec.structs.replace(wanted, id=found.id, created_by=found.created_by)
            schedule_table.replace(conn, changed)
            return changed

        stored = await self.ops.ctx.db.call(write)
        self._scheduler.put(stored)
        await self.ops.audit(given.server, f"schedule {stored.name} changed: {_summary(stored)}")
        return {"server": given.server, "schedule": self.view(stored)}

    async def delete(self, server: str, name: str) -> None:
        record = self.ops.managed(server)

        def write(conn: sqlite3.Connection) -> int:
            found = _existing(conn, record, name)
            schedule_table.delete(conn, found.id)
            return found.id

        schedule_id = await self.ops.ctx.db.call(write)
        self._scheduler.remove(schedule_id)
        await self.ops.audit(server, f"schedule {name} deleted")

    async def run(self, server: str, name: str) -> dict[str, Any]:
        record = self._managed(server)
        found = await self.ops.ctx.db.call(lambda conn: _existing(conn, record, name))
        if not self._scheduler.run_now(found.id):
            raise Conflict(f"schedule {name!r} is running or waiting to run already")
        await self.ops.audit(server, f"schedule {name} run now")
        return {"server": server, "name": name, "started": True}


def _server_exists(conn: sqlite3.Connection, record: ServerRecord) -> None:
    if conn.execute("SELECT 1 FROM servers WHERE id = ?", (record.id,)).fetchone() is None:
        raise NotFound(f"no server named {record.name!r}", field="server")


def _existing(conn: sqlite3.Connection, record: ServerRecord, name: str) -> Schedule:
    found = schedule_table.get(conn, record.id, name)
    if found is None:
        raise NotFound(f"server {record.name!r} has no schedule named {name[:64]!r}", field="name")
    return found


def _summary(s: Schedule) -> str:
    when = (
        f"cron {s.timing.cron} ({s.timing.zone})"
        if s.timing.cron
        else f"every {s.timing.interval:g} s"
    )
    flags = [
        f
        for f, on in (
            ("only if running", s.only_if_running),
            ("only if players online", s.only_if_players),
            ("disabled", not s.enabled),
        )
        if on
    ]
    steps = "; ".join(step.text() for step in s.steps)
    return f"{when}{''.join(', ' + f for f in flags)}: {steps}"[:300]

"""WebSocket ``schedule.list {server}``, ``schedule.create`` and ``schedule.update``
(a schedule definition), ``schedule.delete {server, name}`` and ``schedule.run {server,
name}``: the same calls and answers as HTTP ``/api/server_schedule_*``; the rules are
:mod:`leosuite.api.schedule_ops`'s."""

from __future__ import annotations

from typing import Any

import msgspec

from ..schedule_ops import ScheduleDefinition, ScheduleOps
from ..server_ops import ServerOps
from .api import WsApi
from .conn import WsConnection
from .protocol import decode_content

__all__ = ["install_schedule_calls"]


class _List(msgspec.Struct, forbid_unknown_fields=True):
    server: str


class _Named(msgspec.Struct, forbid_unknown_fields=True):
    server: str
    name: str


def install_schedule_calls(api: WsApi) -> None:
    ctx = api.ctx

    def schedules(conn: WsConnection) -> ScheduleOps:
        assert conn.principal is not None
        return ScheduleOps(ServerOps(ctx, conn.principal, conn.ip))

    async def listing(conn: WsConnection, content: Any) -> Any:
        return await schedules(conn).listing(decode_content(content, _List).server)

    async def create(conn: WsConnection, content: Any) -> Any:
        return await schedules(conn).create(decode_content(content, ScheduleDefinition))

    async def update(conn: WsConnection, content: Any) -> Any:
        return await schedules(conn).update(decode_content(content, ScheduleDefinition))

    async def delete(conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, _Named)
        await schedules(conn).delete(query.server, query.name)
        return {"server": query.server, "name": query.name, "deleted": True}

    async def run(conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, _Named)
        return await schedules(conn).run(query.server, query.name)

    api.add("schedule.list", listing)
    api.add("schedule.create", create)
    api.add("schedule.update", update)
    api.add("schedule.delete", delete)
    api.add("schedule.run", run)

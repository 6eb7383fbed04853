"""``/api/server_schedule_list|create|update|delete|run``: a server's schedules; the
rules are :mod:`leosuite.api.schedule_ops`'s."""

from __future__ import annotations

from quart import Blueprint, Response

from ..context import ApiContext
from ..requests import Body, authenticate, decode_body, peer_ip
from ..schedule_ops import ScheduleDefinition, ScheduleOps
from ..server_ops import ServerOps
from .auth import json_response

__all__ = [
    "ScheduleBody",
    "ScheduleDefinitionBody",
    "ScheduleListBody",
    "schedules_blueprint",
]


class ScheduleListBody(Body, kw_only=True, forbid_unknown_fields=True):
    server: str


class ScheduleBody(ScheduleListBody, kw_only=True, forbid_unknown_fields=True):
    #: The schedule's name (unique on its server).
    name: str


class ScheduleDefinitionBody(ScheduleDefinition, kw_only=True, forbid_unknown_fields=True):
    token: str | None = None


def schedules_blueprint(ctx: ApiContext) -> Blueprint:
    bp = Blueprint("schedules", __name__, url_prefix="/api")
    max_body = ctx.settings.http.max_body_bytes

    async def caller(token: str | None) -> ScheduleOps:
        return ScheduleOps(ServerOps(ctx, await authenticate(ctx.auth, token), peer_ip()))

    @bp.post("/server_schedule_list")
    async def schedule_list() -> Response:
        body = await decode_body(ScheduleListBody, max_body)
        return json_response(await (await caller(body.token)).listing(body.server))

    @bp.post("/server_schedule_create")
    async def schedule_create() -> Response:
        body = await decode_body(ScheduleDefinitionBody, max_body)
        return json_response(await (await caller(body.token)).create(body))

    @bp.post("/server_schedule_update")
    async def schedule_update() -> Response:
        body = await decode_body(ScheduleDefinitionBody, max_body)
        return json_response(await (await caller(body.token)).update(body))

    @bp.post("/server_schedule_delete")
    async def schedule_delete() -> Response:
        body = await decode_body(ScheduleBody, max_body)
        await (await caller(body.token)).delete(body.server, body.name)
        return Response(b"", status=204)

    @bp.post("/server_schedule_run")
    async def schedule_run() -> Response:
        body = await decode_body(ScheduleBody, max_body)
        return json_response(await (await caller(body.token)).run(body.server, body.name))

    return bp

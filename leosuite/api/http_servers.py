"""``/api/server_*``: the server endpoints of seed 001 (SPEC §3).

Permissions: ADMIN does everything; HOST may create servers (not of an admin-only
type such as ``command``); a server's creator may operate and read it; to anyone
else it does not exist (404). Every change is written to the audit log.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from quart import Blueprint, Response

from ..auth.service import Principal
from ..errors import NotFound, PermissionDenied
from ..store.servers import ServerRecord
from ..supervision.manager import ServerManager
from ..supervision.types import validate_server_name
from .context import ApiContext
from .http_auth import json_response
from .requests import Body, authenticate, decode_body, peer_ip

__all__ = ["servers_blueprint"]


class CreateOptionsBody(Body, kw_only=True, forbid_unknown_fields=True):
    type: str | None = None


class ServerBody(Body, kw_only=True, forbid_unknown_fields=True):
    server: str


class CreateBody(ServerBody, kw_only=True, forbid_unknown_fields=True):
    type: str
    settings: dict[str, Any] = msgspec.field(default_factory=dict)


class DestroyBody(ServerBody, kw_only=True, forbid_unknown_fields=True):
    delete_files: bool = False


class StatusBody(Body, kw_only=True, forbid_unknown_fields=True):
    server: str | None = None


class LogBody(ServerBody, kw_only=True, forbid_unknown_fields=True):
    readIndex: int
    max: int | None = None
    wait: float | None = None
    encoding: Literal["utf-8", "base64"] | None = None


class CommandBody(ServerBody, kw_only=True, forbid_unknown_fields=True):
    command: str


class SettingsBody(ServerBody, kw_only=True, forbid_unknown_fields=True):
    set: dict[str, Any] | None = None


def can_see(principal: Principal, record: ServerRecord) -> bool:
    return principal.is_admin or (
        record.owner_id is not None and record.owner_id == principal.account_id
    )


def servers_blueprint(ctx: ApiContext) -> Blueprint:
    bp = Blueprint("servers", __name__, url_prefix="/api")
    max_body = ctx.settings.http.max_body_bytes
    manager: ServerManager = ctx.servers

    async def visible(principal: Principal, name: str) -> ServerRecord:
        validate_server_name(name)  # a malformed name is 400, as on create
        record = manager.record(name)  # NotFound for unknown names
        if not can_see(principal, record):
            # Others' servers do not exist for this account: the same 404 as an unknown name.
            raise NotFound(f"no server named {name!r}", field="server")
        return record

    async def audit(principal: Principal, server: str, message: str) -> None:
        await ctx.audit.record("server", message, actor=principal.actor(peer_ip()), session=server)

    def may_create(principal: Principal, type_name: str) -> None:
        if not (principal.is_admin or "HOST" in principal.flags):
            raise PermissionDenied("creating servers needs the HOST or ADMIN flag")
        if manager.stype(type_name).admin_only and not principal.is_admin:
            raise PermissionDenied(f"servers of type {type_name!r} may only be created by an ADMIN")

    def creatable_types(principal: Principal) -> list[dict[str, str]]:
        if not (principal.is_admin or "HOST" in principal.flags):
            return []
        return [
            {"type": name, "description": stype.description}
            for name, stype in sorted(manager.types.items())
            if principal.is_admin or not stype.admin_only
        ]

    @bp.post("/server_create_options")
    async def create_options() -> Response:
        body = await decode_body(CreateOptionsBody, max_body)
        principal = await authenticate(ctx.auth, body.token)
        if body.type is None:
            return json_response({"types": creatable_types(principal)})
        may_create(principal, body.type)
        return json_response({"type": body.type, "variables": manager.create_options(body.type)})

    @bp.post("/server_create")
    async def create() -> Response:
        body = await decode_body(CreateBody, max_body)
        principal = await authenticate(ctx.auth, body.token)
        may_create(principal, body.type)
        record = await manager.create(
            body.server, body.type, body.settings, owner_id=principal.account_id
        )
        await audit(principal, record.name, f"created server {record.name} of type {record.type}")
        return json_response({"server": record.name, "readIndex": 0})

    @bp.post("/server_destroy")
    async def destroy() -> Response:
        body = await decode_body(DestroyBody, max_body)
        principal = await authenticate(ctx.auth, body.token)
        await visible(principal, body.server)
        await manager.destroy(body.server, delete_files=body.delete_files)
        files = " and its files" if body.delete_files else ""
        await audit(principal, body.server, f"destroyed server {body.server}{files}")
        return Response(b"", status=204)

    @bp.post("/server_list")
    async def server_list() -> Response:
        body = await decode_body(Body, max_body)
        principal = await authenticate(ctx.auth, body.token)
        names = [n for n in manager.names() if can_see(principal, manager.record(n))]
        return json_response({"servers": names})

    @bp.post("/server_status")
    async def server_status() -> Response:
        body = await decode_body(StatusBody, max_body)
        principal = await authenticate(ctx.auth, body.token)
        if body.server is not None:
            await visible(principal, body.server)
            return json_response(manager.status(body.server))
        return json_response(
            {
                "servers": {
                    n: manager.status(n)
                    for n in manager.names()
                    if can_see(principal, manager.record(n))
                }
            }
        )

    @bp.post("/server_log")
    async def server_log() -> Response:
        body = await decode_body(LogBody, max_body)
        principal = await authenticate(ctx.auth, body.token)
        await visible(principal, body.server)
        answer = await manager.read_log(
            body.server, body.readIndex, limit=body.max, wait=body.wait, encoding=body.encoding
        )
        return json_response(answer)

    @bp.post("/server_cmd")
    async def server_cmd() -> Response:
        body = await decode_body(CommandBody, max_body)
        principal = await authenticate(ctx.auth, body.token)
        await visible(principal, body.server)
        await manager.command(body.server, body.command)
        await audit(principal, body.server, f"command: {body.command[:200]}")
        return Response(b"", status=204)

    def power(action: str) -> Any:
        async def handler() -> Response:
            body = await decode_body(ServerBody, max_body)
            principal = await authenticate(ctx.auth, body.token)
            await visible(principal, body.server)
            state = await manager.power(body.server, action)
            await audit(principal, body.server, f"{action.replace('_', ' ')} (now {state.value})")
            return json_response({"server": body.server, "status": state.value})

        handler.__name__ = f"server_{action}"
        return handler

    for action in ("start", "stop", "restart", "kill", "force_kill"):
        bp.add_url_rule(f"/server_{action}", f"server_{action}", power(action), methods=["POST"])

    @bp.post("/server_settings")
    async def server_settings() -> Response:
        body = await decode_body(SettingsBody, max_body)
        principal = await authenticate(ctx.auth, body.token)
        await visible(principal, body.server)
        view = await manager.settings(body.server, body.set)
        if body.set:
            await audit(principal, body.server, f"settings changed: {', '.join(sorted(body.set))}")
        return json_response(view)

    return bp

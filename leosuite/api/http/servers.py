"""``/api/server_*``: the server endpoints of seed 001.

Permissions (:mod:`leosuite.auth.permissions`): ADMIN does everything; HOST may create
servers (not of an admin-only type such as ``command``) up to ``servers.max_per_account``;
a server's creator may operate and read it, but only an ADMIN starts, restarts,
reconfigures or types into one of an admin-only type; to anyone else it does not exist
(404), and creating it under its name is the neutral 409 "server name not available".
Every change is written to the audit log. Both live in
:class:`~leosuite.api.server_ops.ServerOps`, shared with the WebSocket ``server.*``
calls. Every server status lists the power actions its state allows (``actions``).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from quart import Blueprint, Response

from ...supervision.states import POWER_ACTIONS, PowerAction
from ..context import ApiContext
from ..fleet_access import console_reader, token_wait
from ..requests import Body, authenticate, decode_body, peer_ip
from ..server_ops import ConsoleIndex, ServerOps, WaitSeconds
from .auth import json_response

__all__ = ["servers_blueprint"]


class CreateOptionsBody(Body, kw_only=True, forbid_unknown_fields=True):
    type: str | None = None


class ServerBody(Body, kw_only=True, forbid_unknown_fields=True):
    server: str


class CreateBody(ServerBody, kw_only=True, forbid_unknown_fields=True):
    type: str
    settings: dict[str, Any] = msgspec.field(default_factory=dict)
    #: The node that runs it (default: this one).
    node: str | None = None


class DestroyBody(ServerBody, kw_only=True, forbid_unknown_fields=True):
    delete_files: bool = False


class StatusBody(Body, kw_only=True, forbid_unknown_fields=True):
    server: str | None = None


class LogBody(ServerBody, kw_only=True, forbid_unknown_fields=True):
    readIndex: ConsoleIndex
    max: ConsoleIndex | None = None
    wait: WaitSeconds | None = None
    encoding: Literal["utf-8", "base64"] | None = None
    #: A console token (``server_console_token``) instead of an access token.
    console_token: str | None = None


class CommandBody(ServerBody, kw_only=True, forbid_unknown_fields=True):
    command: str


class SettingsBody(ServerBody, kw_only=True, forbid_unknown_fields=True):
    set: dict[str, Any] | None = None


def servers_blueprint(ctx: ApiContext) -> Blueprint:
    bp = Blueprint("servers", __name__, url_prefix="/api")
    max_body = ctx.settings.http.max_body_bytes

    async def caller(token: str | None) -> ServerOps:
        """The authenticated caller's view of the servers (permissions and audit)."""
        return ServerOps(ctx, await authenticate(ctx.auth, token), peer_ip())

    @bp.post("/server_create_options")
    async def create_options() -> Response:
        body = await decode_body(CreateOptionsBody, max_body)
        return json_response((await caller(body.token)).create_options(body.type))

    @bp.post("/server_create")
    async def create() -> Response:
        body = await decode_body(CreateBody, max_body)
        ops = await caller(body.token)
        return json_response(await ops.create(body.server, body.type, body.settings, body.node))

    @bp.post("/server_destroy")
    async def destroy() -> Response:
        body = await decode_body(DestroyBody, max_body)
        await (await caller(body.token)).destroy(body.server, delete_files=body.delete_files)
        return Response(b"", status=204)

    @bp.post("/server_list")
    async def server_list() -> Response:
        body = await decode_body(Body, max_body)
        ops = await caller(body.token)
        listing = ops.listing()
        return json_response({**listing, **await ops.owners(listing["servers"])})

    @bp.post("/server_status")
    async def server_status() -> Response:
        body = await decode_body(StatusBody, max_body)
        return json_response((await caller(body.token)).status(body.server))

    @bp.post("/server_stats_history")
    async def server_stats_history() -> Response:
        body = await decode_body(ServerBody, max_body)
        return json_response((await caller(body.token)).stats_history(body.server))

    @bp.post("/server_log")
    async def server_log() -> Response:
        body = await decode_body(LogBody, max_body)
        wait = body.wait
        if body.console_token is not None:  # minted by any node for this one's server
            ops: ServerOps = await console_reader(ctx, body.console_token, body.server, peer_ip())
            wait = token_wait(wait)
        else:
            ops = await caller(body.token)
        answer = await ops.read_log(
            body.server, body.readIndex, limit=body.max, wait=wait, encoding=body.encoding
        )
        return json_response(answer)

    @bp.post("/server_cmd")
    async def server_cmd() -> Response:
        body = await decode_body(CommandBody, max_body)
        await (await caller(body.token)).command(body.server, body.command)
        return Response(b"", status=204)

    def power(action: PowerAction) -> Any:
        async def handler() -> Response:
            body = await decode_body(ServerBody, max_body)
            return json_response(await (await caller(body.token)).power(body.server, action))

        handler.__name__ = f"server_{action}"
        return handler

    for action in POWER_ACTIONS:
        bp.add_url_rule(f"/server_{action}", f"server_{action}", power(action), methods=["POST"])

    @bp.post("/server_install")
    async def server_install() -> Response:
        body = await decode_body(ServerBody, max_body)
        return json_response(await (await caller(body.token)).install(body.server))

    @bp.post("/server_settings")
    async def server_settings() -> Response:
        body = await decode_body(SettingsBody, max_body)
        return json_response(await (await caller(body.token)).settings(body.server, body.set))

    return bp

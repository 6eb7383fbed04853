"""The HTTP calls of a fleet of nodes: ``/api/server_console_token`` (any node mints a
token to read a console from the node that runs the server, see
:mod:`leosuite.cluster.console_tokens`) and ``/node/server_operation`` (a power action
or console command another node forwarded, see :mod:`leosuite.cluster.forward`).

``/node/server_operation`` serves nodes only: without the node-to-node credential in
its header, or with a browser's ``Origin``, it is refused (403) before its body is
read, and the refusal is audited at most once a minute per address. With it, the
account the operation names is loaded from the store and checked here as if it had
called this node itself, and refused once the login the client used has ended.
"""

from __future__ import annotations

import trio
from quart import Blueprint, Response, request

from ...audit import Actor
from ...auth.limits import Limiter
from ...cluster.forward import CREDENTIAL_HEADER, NODE_HEADER, OPERATION_PATH, Operation
from ...errors import AuthError, InvalidInput
from ...supervision.states import POWER_ACTIONS
from ..context import ApiContext
from ..fleet_access import fresh_ops, mint_console_token
from ..requests import authenticate, decode_body, peer_ip
from ..server_ops import ServerOps
from .auth import json_response
from .servers import ServerBody

__all__ = ["cluster_blueprint"]

#: Audit entries for refused node calls: one per address a minute.
_AUDIT_WINDOW = 60.0


def cluster_blueprint(ctx: ApiContext) -> Blueprint:
    bp = Blueprint("cluster", __name__)
    max_body = ctx.settings.http.max_body_bytes
    noted = Limiter(trio.current_time, window=_AUDIT_WINDOW, limit=1)

    @bp.post("/api/server_console_token")
    async def server_console_token() -> Response:
        body = await decode_body(ServerBody, max_body)
        ops = ServerOps(ctx, await authenticate(ctx.auth, body.token), peer_ip())
        return json_response(await mint_console_token(ops, body.server))

    async def refuse(what: str) -> AuthError:
        ip = peer_ip()
        skipped = noted.first(ip)
        if skipped is not None:
            more = f" ({skipped} more since the last entry)" if skipped else ""
            await ctx.audit.record(
                "http",
                f"refused a node call: {what}{more}",
                actor=Actor(ip=ip),
                level="warning",
            )
        return AuthError("node calls need the node-to-node credential")

    @bp.post(OPERATION_PATH)
    async def server_operation() -> Response:
        if request.headers.get("Origin") is not None:
            raise await refuse("it came from a web page (Origin)")
        given = request.headers.get(CREDENTIAL_HEADER)
        if not await ctx.node_credential.matches(ctx.db, given):
            raise await refuse("no credential" if given is None else "a wrong credential")
        body = await decode_body(Operation, max_body)
        via = request.headers.get(NODE_HEADER, "")[:253] or "?"
        record = await ctx.servers.record_here(body.server)  # this node's servers only (404)
        ops = await fresh_ops(
            ctx, body.account, body.ip[:64], record, via=via, session=body.session[:64]
        )
        if body.kind == "command":
            await ops.command(body.server, body.command)
            return Response(b"", status=204)
        if body.kind == "settings":
            return json_response(await ops.settings(body.server, body.settings))
        if body.kind == "install":
            return json_response(await ops.install(body.server))
        action = next((a for a in POWER_ACTIONS if a == body.action), None)
        if action is None:
            raise InvalidInput(f"{body.action[:40]!r} is not a power action", field="action")
        return json_response(await ops.power(body.server, action))

    return bp

"""``/api/server_logfile``: a server's own log files, read as ``server_log`` reads the
console (see :mod:`leosuite.api.logfile_ops`).

Without ``file`` it lists the declared files with their sizes and indexes; with it, it
answers a range as ``server_log`` does (``readIndex``, ``max``, ``wait``, ``encoding``).
"""

from __future__ import annotations

from typing import Literal

from quart import Blueprint, Response

from ..context import ApiContext
from ..logfile_ops import LogFileOps
from ..requests import Body, authenticate, decode_body, peer_ip
from ..server_ops import ConsoleIndex, ServerOps, WaitSeconds
from .auth import json_response

__all__ = ["LogFileBody", "logfiles_blueprint"]


class LogFileBody(Body, kw_only=True, forbid_unknown_fields=True):
    server: str
    file: str | None = None
    readIndex: ConsoleIndex | None = None
    max: ConsoleIndex | None = None
    wait: WaitSeconds | None = None
    encoding: Literal["utf-8", "base64"] | None = None


def logfiles_blueprint(ctx: ApiContext) -> Blueprint:
    bp = Blueprint("logfiles", __name__, url_prefix="/api")
    max_body = ctx.settings.http.max_body_bytes

    @bp.post("/server_logfile")
    async def server_logfile() -> Response:
        body = await decode_body(LogFileBody, max_body)
        ops = LogFileOps(ServerOps(ctx, await authenticate(ctx.auth, body.token), peer_ip()))
        if body.file is None:
            return json_response(await ops.listing(body.server))
        answer = await ops.read(
            body.server,
            body.file,
            0 if body.readIndex is None else body.readIndex,
            limit=body.max,
            wait=body.wait,
            encoding=body.encoding,
        )
        return json_response(answer)

    return bp

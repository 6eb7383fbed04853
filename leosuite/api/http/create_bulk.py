"""``POST /api/server_create_bulk``: many servers created in one call (rules:
:mod:`leosuite.api.create_bulk`).

A refused batch is the usual JSON error (nothing was created). Otherwise 200 with
``{"ok": N, "failed": M, "servers": [...]}``, one entry per server in the order asked:
``{"server", "readIndex"}`` (created, as ``server_create`` answers) or ``{"server",
"error_type", "error_message"}`` (not created).
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from ...errors import LeosuiteError
from ..context import ApiContext
from ..create_bulk import CreateBulkRequest, create_bulk
from ..requests import authenticate, decode_body, peer_ip
from ..server_ops import ServerOps
from .auth import json_response

__all__ = ["CreateBulkBody", "create_bulk_blueprint"]


class CreateBulkBody(CreateBulkRequest, kw_only=True, forbid_unknown_fields=True):
    token: str | None = None


def create_bulk_blueprint(ctx: ApiContext) -> Blueprint:
    bp = Blueprint("create_bulk", __name__, url_prefix="/api")
    max_body = ctx.settings.http.max_body_bytes

    @bp.post("/server_create_bulk")
    async def server_create_bulk() -> Response:
        body = await decode_body(CreateBulkBody, max_body)
        ops = ServerOps(ctx, await authenticate(ctx.auth, body.token), peer_ip())
        entries: list[dict[str, Any]] = []
        for name, outcome in await create_bulk(ops, body):
            if isinstance(outcome, LeosuiteError):
                entries.append(
                    {
                        "server": name,
                        "error_type": outcome.error_type,
                        "error_message": str(outcome),
                    }
                )
            else:
                entries.append({"server": name, "readIndex": 0})
        failed = sum(1 for entry in entries if "error_type" in entry)
        return json_response({"ok": len(entries) - failed, "failed": failed, "servers": entries})

    return bp

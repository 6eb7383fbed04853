"""WebSocket ``server.create_bulk {servers: [{server, type, settings?}, ...], node?}``: many
servers created in one call (rules: :mod:`leosuite.api.create_bulk`).

A refused batch is the call's error (nothing was created). Otherwise the answer is
``{"ok", "failed", "servers": [...]}``, one entry per server in the order asked:
``{"server", "readIndex"}`` (created) or ``{"server", "status_code",
"status_string"}`` (not created, as the single ``server.create`` would have failed).
"""

from __future__ import annotations

from typing import Any

from ...errors import LeosuiteError
from ..create_bulk import CreateBulkRequest, create_bulk
from ..server_ops import ServerOps
from .api import WsApi
from .conn import WsConnection
from .protocol import decode_content, error_of

__all__ = ["install_create_bulk"]


def install_create_bulk(api: WsApi) -> None:
    ctx = api.ctx

    async def server_create_bulk(conn: WsConnection, content: Any) -> Any:
        assert conn.principal is not None
        request = decode_content(content, CreateBulkRequest)
        ops = ServerOps(ctx, conn.principal, conn.ip)
        entries: list[dict[str, Any]] = []
        for name, outcome in await create_bulk(ops, request):
            if isinstance(outcome, LeosuiteError):
                error = error_of(outcome)
                entries.append(
                    {
                        "server": name,
                        "status_code": int(error.status),
                        "status_string": error.message,
                    }
                )
            else:
                entries.append({"server": name, "readIndex": 0})
        failed = sum(1 for entry in entries if "status_code" in entry)
        return {"ok": len(entries) - failed, "failed": failed, "servers": entries}

    api.add("server.create_bulk", server_create_bulk)

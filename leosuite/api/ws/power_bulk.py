"""WebSocket ``server.power_bulk {action, servers | all, parallel?}``: one power action
on many servers (rules: :mod:`leosuite.api.power_bulk`).

While the actions run, one ``power_bulk_result`` push per server as its action ends:
``{"request": <the call's uuid>, "server", "status"}`` or ``{"request", "server",
"status_code", "status_string"}`` (what the single ``server.<action>`` call would have
answered). These pushes wait for the connection's queue like answers (a client that
does not read them is cut off, as for answers). Then the call's answer:
``{"action", "ok", "failed", "servers": [...]}``, every server's outcome again in the
order asked (``all``: by name), so a client that missed a push still knows each one.
"""

from __future__ import annotations

from typing import Any

from ..power_bulk import BulkRequest, Outcome, check_request, run_power_bulk
from ..server_ops import ServerOps
from .api import REQUEST_UUID, WsApi
from .conn import WsConnection
from .protocol import decode_content, error_of, push

__all__ = ["install_power_bulk", "result_of"]


def result_of(outcome: Outcome) -> dict[str, Any]:
    if outcome.error is not None:
        error = error_of(outcome.error)
        return {
            "server": outcome.server,
            "status_code": int(error.status),
            "status_string": error.message,
        }
    assert outcome.state is not None
    return {"server": outcome.server, "status": outcome.state.value}


def install_power_bulk(api: WsApi) -> None:
    ctx = api.ctx

    async def power_bulk(conn: WsConnection, content: Any) -> Any:
        assert conn.principal is not None
        uuid = REQUEST_UUID.get()
        request = decode_content(content, BulkRequest)
        ops = ServerOps(ctx, conn.principal, conn.ip)
        checked = check_request(ops, request)

        async def on_outcome(outcome: Outcome) -> None:
            await conn.send(push("power_bulk_result", {"request": uuid, **result_of(outcome)}))

        outcomes = await run_power_bulk(ops, request, on_outcome, checked=checked)
        results = [result_of(o) for o in outcomes]
        failed = sum(1 for o in outcomes if o.error is not None)
        return {
            "action": request.action,
            "ok": len(outcomes) - failed,
            "failed": failed,
            "servers": results,
        }

    api.add("server.power_bulk", power_bulk)

"""``POST /api/server_power_bulk``: one power action on many servers (rules:
:mod:`leosuite.api.power_bulk`), answered as NDJSON (``application/x-ndjson``).

The request is checked whole first (a bad body or name is the usual JSON error, 400,
and nothing is done); then the answer is 200 and streams one line per server as its
action ends, ``{"server", "status"}`` or ``{"server", "error_type",
"error_message"}`` (what the single call would have answered), and a last line
``{"done": true, "ok": N, "failed": M}``. An answer without that last line was cut
short: the servers it does not list may or may not have been acted on.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import msgspec
import trio
from quart import Blueprint, Response
from quart.wrappers.response import ResponseBody

from ..context import ApiContext
from ..power_bulk import BulkRequest, Outcome, check_request, run_power_bulk
from ..requests import authenticate, decode_body, peer_ip
from ..server_ops import ServerOps

__all__ = ["BulkBody", "line_of", "power_bulk_blueprint"]

#: Lines queued for the client beyond which the actions wait for it to read.
_QUEUE = 64

_encode = msgspec.json.Encoder().encode


class BulkBody(BulkRequest, kw_only=True, forbid_unknown_fields=True):
    token: str | None = None


def line_of(outcome: Outcome) -> dict[str, Any]:
    if outcome.error is not None:
        error = outcome.error
        return {
            "server": outcome.server,
            "error_type": error.error_type,
            "error_message": error.message,
        }
    assert outcome.state is not None
    return {"server": outcome.server, "status": outcome.state.value}


class _Lines(ResponseBody):
    """The answer's body: the actions run in a nursery opened when quart starts sending
    and closed when it stops (the client gone: actions not begun are dropped)."""

    def __init__(self, ops: ServerOps, request: BulkRequest, checked: Any) -> None:
        self._ops = ops
        self._request = request
        self._checked = checked
        self._send, self._receive = trio.open_memory_channel[bytes](_QUEUE)
        self._nursery_manager = trio.open_nursery()
        self._nursery: trio.Nursery | None = None

    async def __aenter__(self) -> _Lines:
        self._nursery = await self._nursery_manager.__aenter__()
        self._nursery.start_soon(self._produce)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._nursery is not None
        self._nursery.cancel_scope.cancel()
        await self._nursery_manager.__aexit__(kind, exc, tb)

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> bytes:
        try:
            lines = [await self._receive.receive()]
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
        # The lines that are ready go out in one write: a socket send each costs more.
        while len(lines) < _QUEUE:
            try:
                lines.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        return b"".join(lines)

    async def _produce(self) -> None:
        ok = failed = 0

        async def on_outcome(outcome: Outcome) -> None:
            nonlocal ok, failed
            if outcome.error is None:
                ok += 1
            else:
                failed += 1
            await self._send.send(_encode(line_of(outcome)) + b"\n")

        async with self._send:
            await run_power_bulk(self._ops, self._request, on_outcome, checked=self._checked)
            await self._send.send(_encode({"done": True, "ok": ok, "failed": failed}) + b"\n")


def power_bulk_blueprint(ctx: ApiContext) -> Blueprint:
    bp = Blueprint("power_bulk", __name__, url_prefix="/api")
    max_body = ctx.settings.http.max_body_bytes

    @bp.post("/server_power_bulk")
    async def server_power_bulk() -> Response:
        body = await decode_body(BulkBody, max_body)
        ops = ServerOps(ctx, await authenticate(ctx.auth, body.token), peer_ip())
        checked = check_request(ops, body)  # a bad request is refused before the 200
        response = Response(_Lines(ops, body, checked), content_type="application/x-ndjson")
        # Each action is bounded by its own timeouts; the whole answer is not.
        response.timeout = None
        return response

    return bp

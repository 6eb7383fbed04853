"""Power actions and console commands for a server another node runs, forwarded to
that node (:mod:`leosuite.cluster.forward`) from :class:`~.server_ops.ServerOps`, the
one entry every API surface and the CLI go through.

This node refuses what the caller may not see (the same 404 as an unknown name) and a
node that is not heartbeating (503 ``node_unreachable``) before it sends anything, and
stops waiting for the answer of a node that stops heartbeating meanwhile (503); the
node that runs the server decides everything else itself, and its answer is this one.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import h11
import msgspec
import trio

from ..auth.permissions import may_see_server
from ..cluster.console_tokens import session_of
from ..cluster.forward import (
    CREDENTIAL_HEADER,
    NODE_HEADER,
    OPERATION_PATH,
    Operation,
    OperationKind,
    post_json,
    relayed_error,
)
from ..errors import Conflict, NodeUnreachable, NotFound
from ..store import grants, servers
from ..store.servers import ServerRecord
from ..supervision.types import validate_server_name
from .context import ApiContext
from .fleet_view import foreign_record

if TYPE_CHECKING:
    from .server_ops import ServerOps

__all__ = [
    "NodeLookup",
    "console_elsewhere",
    "fleet_record",
    "forwarded_command",
    "forwarded_settings",
    "forwarded_power",
    "node_of",
    "nodes_of",
]

log = logging.getLogger("leosuite.cluster")

_answer_decoder = msgspec.json.Decoder(dict[str, Any])
T = TypeVar("T")


class NodeLookup(Protocol):
    """What forwarding and console tokens need of the node directory."""

    @property
    def name(self) -> str: ...

    def reachable(self, name: str) -> bool: ...

    def url_of(self, name: str) -> str: ...

    def ws_url_of(self, name: str) -> str: ...


class _Alone:
    """The node directory of a daemon whose directory is not set up (it knows itself)."""

    def __init__(self, ctx: ApiContext) -> None:
        self.name = ctx.settings.node.name
        self._urls = ctx.endpoints

    def reachable(self, name: str) -> bool:
        return name == self.name

    def url_of(self, name: str) -> str:
        return self._urls.get("http", "") if name == self.name else ""

    def ws_url_of(self, name: str) -> str:
        return self._urls.get("ws", "") if name == self.name else ""


def nodes_of(ctx: ApiContext) -> NodeLookup:
    """This daemon's node directory."""
    return ctx.nodes if ctx.nodes is not None else _Alone(ctx)


def node_of(ctx: ApiContext, record: ServerRecord) -> str:
    """The node that runs the server (this one for a server made before nodes)."""
    return record.node or nodes_of(ctx).name


async def fleet_record(ctx: ApiContext, name: str) -> ServerRecord:
    """The server ``name`` wherever it runs (404 when there is none)."""
    validate_server_name(name)
    record = ctx.servers.find_record(name)
    if record is None:
        record = await ctx.db.call(lambda conn: servers.get_by_name(conn, name))
    if record is None:
        raise NotFound(f"no server named {name!r}", field="server")
    return record


async def _elsewhere(ops: ServerOps, name: str) -> tuple[ServerRecord, str] | None:
    """The server and its node when another node runs it and the caller may see it;
    None when it is this node's (or unknown: the local path answers)."""
    ctx = ops.ctx
    if ctx.servers.find_record(name) is not None:
        return None
    validate_server_name(name)
    record = await ctx.db.call(lambda conn: servers.get_by_name(conn, name))
    if record is None:
        return None
    node = node_of(ctx, record)
    if node == nodes_of(ctx).name:
        return None
    account = ops.principal.account_id

    def granted(conn: sqlite3.Connection) -> frozenset[str]:
        found = [g.rights for g in grants.of_server(conn, record.id) if g.account_id == account]
        return found[0] if found else frozenset()

    if not may_see_server(ops.principal, record, await ctx.db.call(granted)):
        raise NotFound(f"no server named {name!r}", field="server")
    return record, node


async def _forward(ops: ServerOps, node: str, operation: Operation) -> bytes:
    """Send ``operation`` to ``node``; its answer's body, or its error raised here."""
    ctx = ops.ctx
    nodes = nodes_of(ctx)
    unreachable = f"node {node!r}, which runs server {operation.server!r}, is unreachable"
    if not nodes.reachable(node):
        raise NodeUnreachable(f"{unreachable} (it stopped heartbeating)")
    headers = {
        CREDENTIAL_HEADER: await ctx.node_credential.value(ctx.db),
        NODE_HEADER: nodes.name,
    }
    body = msgspec.json.encode(operation)
    failed: BaseException | None = None
    with trio.CancelScope() as waiting:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_when_unreachable, nodes, node, waiting)
            try:
                status, answer = await post_json(nodes.url_of(node), OPERATION_PATH, body, headers)
            except (OSError, trio.TooSlowError, trio.BrokenResourceError, h11.ProtocolError) as exc:
                failed = exc
            nursery.cancel_scope.cancel()
    if waiting.cancelled_caught:
        log.warning("node %s stopped heartbeating while an operation waited for it", node)
        raise NodeUnreachable(f"{unreachable} (it stopped heartbeating while answering)")
    if failed is not None:
        log.warning("forwarding to node %s failed: %s", node, failed or type(failed).__name__)
        raise NodeUnreachable(f"{unreachable}: {type(failed).__name__}") from None
    if status >= 400:
        raise relayed_error(node, status, answer)
    return answer


#: Seconds between the looks at the heartbeat of a node an operation waits for.
_WATCH_INTERVAL = 1.0


async def _cancel_when_unreachable(nodes: NodeLookup, node: str, scope: trio.CancelScope) -> None:
    """Give up waiting for ``node`` once its heartbeat is overdue: a hung node takes the
    connection and the request, and would hold the caller until the answer timeout."""
    while True:  # its age grows between reads of the rows: looked at on a clock
        await trio.sleep(_WATCH_INTERVAL)
        if not nodes.reachable(node):
            scope.cancel()
            return


def _operation(ops: ServerOps, name: str, kind: OperationKind, **fields: Any) -> Operation:
    """``kind`` on ``name`` for the caller: its account, address and login."""
    return Operation(
        kind=kind, server=name, account=ops.principal.account_id, ip=ops.ip,
        session=session_of(ops.principal.token_hash), **fields,
    )  # fmt: skip


_settings_decoder = msgspec.json.Decoder(list[dict[str, Any]])


async def _answer(
    ops: ServerOps, node: str, operation: Operation, decoder: msgspec.json.Decoder[T]
) -> T:
    """The node's answer to ``operation``, decoded (not the API's: NodeUnreachable)."""
    try:
        return decoder.decode(await _forward(ops, node, operation))
    except (msgspec.DecodeError, RecursionError):
        raise NodeUnreachable(f"node {node!r} gave an answer that is not the API's") from None


async def forwarded_power(ops: ServerOps, name: str, action: str) -> dict[str, Any] | None:
    """The answer of the node that runs ``name`` to ``action`` (``install``: its install
    steps); None when it is this one."""
    where = await _elsewhere(ops, name)
    if where is None:
        return None
    kind: OperationKind = "install" if action == "install" else "power"
    operation = _operation(ops, name, kind, action=action)
    return await _answer(ops, where[1], operation, _answer_decoder)


async def forwarded_command(ops: ServerOps, name: str, line: str) -> bool:
    """Whether ``line`` went to the node that runs ``name`` (False: it is this one's)."""
    where = await _elsewhere(ops, name)
    if where is None:
        return False
    await _forward(ops, where[1], _operation(ops, name, "command", command=line))
    return True


async def forwarded_settings(
    ops: ServerOps, name: str, changes: Mapping[str, Any] | None
) -> list[dict[str, Any]] | None:
    """The settings of ``name`` as the node that runs it answers them, after applying
    ``changes`` there; None when it is this node's."""
    where = await _elsewhere(ops, name)
    if where is None:
        return None
    operation = _operation(ops, name, "settings", settings=dict(changes) if changes else None)
    return await _answer(ops, where[1], operation, _settings_decoder)


def console_elsewhere(ops: ServerOps, name: str) -> None:
    """Refuse (409) reading here the console of a server another node runs (its bytes
    are on that node's host), saying how to read it there."""
    record = foreign_record(ops, name)
    if record is not None:
        raise Conflict(
            f"server {name!r} runs on node {record.node}: read its console there, with a "
            "token from server_console_token",
            field="server",
        )

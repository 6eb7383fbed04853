"""What any node answers for the servers other nodes run: they are listed and have a
status like this node's own, from the owning node's last known state in the store.

Such a status has the fields of a local one; those only the owning node knows (its
process, console offset, live figures, disk) are ``null``. ``node`` names the node
that runs the server, ``last_status`` the state that node last wrote and
``status_updated_at`` when. A server whose node is not heartbeating has the status
``unreachable`` and no ``actions``. A server's node is chosen at create (``node``:
this node when not given); a node that is not in the store is invalid input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..auth.permissions import RIGHTS, may_manage_server
from ..clock import iso_utc
from ..cluster.fleet_states import announce_server
from ..errors import Conflict, InvalidInput
from ..settings import NODE_NAME_RE
from ..store.servers import ServerRecord
from ..supervision.states import State, allowed_actions

if TYPE_CHECKING:
    from ..cluster.nodes import NodeDirectory
    from .context import ApiContext
    from .server_ops import ServerOps

__all__ = [
    "UNREACHABLE",
    "choose_node",
    "created_on_node",
    "created_on_nodes",
    "destroyed_here",
    "fleet_admit",
    "foreign_record",
    "foreign_status",
    "foreign_visible",
    "refuse_elsewhere",
]

#: The status of a server whose node is not heartbeating.
UNREACHABLE = "unreachable"
#: The fields of a local status that only the node running the server knows.
_LOCAL_ONLY = (
    "readIndex", "pid", "uptime", "exit_code", "restarts", "cpu", "memory", "threads",
    "stop_requested", "restart_in", "disk", "install",
)  # fmt: skip


def _nodes(ctx: ApiContext) -> NodeDirectory | None:
    nodes: NodeDirectory | None = getattr(ctx, "nodes", None)
    return nodes


async def choose_node(ctx: ApiContext, node: object) -> str:
    """The node a new server goes to: ``node``, or this one when it is None or "";
    InvalidInput (field ``node``) for a malformed name or one no node has."""
    nodes = _nodes(ctx)
    here = "" if nodes is None else nodes.name
    if node is None or node == "" or node == here:
        return here
    if not isinstance(node, str) or NODE_NAME_RE.fullmatch(node) is None:
        raise InvalidInput(
            "node must be 1-64 characters of a-z, 0-9, _, . and -, not starting with - or .",
            field="node",
        )
    if nodes is not None and not nodes.known(node):
        await nodes.refresh()  # a node that started since the last heartbeat
    if nodes is None or not nodes.known(node):
        raise InvalidInput(f"no node named {node!r} (see leosuite node list)", field="node")
    return node


def foreign_record(ops: ServerOps, name: str) -> ServerRecord | None:
    """The server ``name`` if another node runs it and the caller may see it."""
    nodes = _nodes(ops.ctx)
    if nodes is None or ops.manager.find_record(name) is not None:
        return None
    record = nodes.remote.get(name)
    return record if record is not None and ops.sees(record) else None


def foreign_visible(ops: ServerOps) -> list[ServerRecord]:
    """The other nodes' servers the caller may see, by name."""
    nodes = _nodes(ops.ctx)
    if nodes is None:
        return []
    local = ops.manager.find_record
    records = nodes.remote.records.values()
    return sorted(
        (r for r in records if local(r.name) is None and ops.sees(r)), key=lambda r: r.name
    )


def foreign_status(ops: ServerOps, record: ServerRecord) -> dict[str, Any]:
    """The status of a server another node runs, as the store and heartbeats tell."""
    nodes = _nodes(ops.ctx)
    assert nodes is not None
    known = nodes.remote.state(record.name)
    last = known.state if known is not None else State.STOPPED.value
    reachable = nodes.reachable(record.node)
    try:
        actions = list(allowed_actions(State(last))) if reachable else []
    except ValueError:
        actions = []
    stype = ops.manager.types.get(record.type)
    rights = ops.rights(record)
    status: dict[str, Any] = dict.fromkeys(_LOCAL_ONLY)
    status.update(
        server=record.name,
        node=record.node,
        status=last if reachable else UNREACHABLE,
        last_status=last,
        status_updated_at=iso_utc(known.updated_at) if known is not None else None,
        description=stype.description if stype else "",
        type=record.type,
        last_error=(known.detail or None) if known is not None else None,
        actions=actions,
        rights=[r for r in RIGHTS if r in rights],
        manage=may_manage_server(ops.principal, record),
    )
    return status


def fleet_admit(ops: ServerOps) -> Callable[[int], None]:
    """The quota check of a create, counting the caller's servers on every node."""
    nodes = _nodes(ops.ctx)
    elsewhere = 0 if nodes is None else nodes.remote.owned_by(ops.principal.account_id)

    def admit(owned: int) -> None:
        ops.admit(owned + elsewhere)

    return admit


async def created_on_node(ops: ServerOps, record: ServerRecord) -> str:
    """Tell the node a server was just recorded for (unless it is this one); what the
    audit entry adds ("" for this node)."""
    return await created_on_nodes(ops, [record])


async def created_on_nodes(ops: ServerOps, records: Sequence[ServerRecord]) -> str:
    """:func:`created_on_node` for servers recorded together for one node."""
    nodes = _nodes(ops.ctx)
    if nodes is None or not records:
        return ""
    node = records[0].node
    if not node or node == nodes.name:
        return ""
    for record in records:
        nodes.remote.add(record)
    await announce_server(nodes.bus, [record.name for record in records], node, "created")
    return f" on node {node}"


async def destroyed_here(ops: ServerOps, name: str) -> None:
    """Tell the other nodes that a server of this node is gone."""
    nodes = _nodes(ops.ctx)
    if nodes is not None:
        await announce_server(nodes.bus, [name], nodes.name, "destroyed")


def refuse_elsewhere(ops: ServerOps, name: str, done: str) -> None:
    """Refuse (409) what only the node that runs the server can do, naming that node."""
    record = foreign_record(ops, name)
    if record is not None:
        nodes = _nodes(ops.ctx)
        url = nodes.url_of(record.node) if nodes is not None else ""
        raise Conflict(
            f"server {name!r} runs on node {record.node}: it can only be {done} there"
            + (f" ({url})" if url else ""),
            field="server",
        )

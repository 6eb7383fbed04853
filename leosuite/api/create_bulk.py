"""Many servers created in one call: HTTP ``/api/server_create_bulk`` and WebSocket
``server.create_bulk``, both ``{servers: [{server, type, settings?}, ...], node?}``
(``node``: the node every server of the batch goes to; this one when absent).

The batch is checked whole before anything is done, each server as the single
``server_create`` checks it (a type the caller may create, ``user`` and resource
limits only as the single call allows them, the account's quota counting every
server of the batch and the account's servers on every node, a name taken or given
twice, an unknown node): the first refusal answers the
call, its message naming the server, and nothing is created. Then one store
transaction records them all; a server whose directory or console cannot be made
after that is reported with its error and not created. The servers created are
audited in one store transaction, one entry each.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from ..errors import LeosuiteError
from ..store.servers import ServerRecord
from .fleet_view import choose_node, created_on_nodes, fleet_admit
from .server_ops import ServerOps

__all__ = ["MAX_CREATE", "CreateBulkRequest", "NewServer", "create_bulk"]

#: The most servers one call may create.
MAX_CREATE = 1000


class NewServer(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One server of a batch, as the single ``server_create`` takes it."""

    server: str
    type: str
    settings: dict[str, Any] = msgspec.field(default_factory=dict)


class CreateBulkRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What both surfaces decode (the HTTP body adds ``token``)."""

    servers: Annotated[list[NewServer], msgspec.Meta(min_length=1, max_length=MAX_CREATE)]
    #: The node the servers go to (absent, null or "": this one).
    node: str | None = None


def _check(ops: ServerOps, item: NewServer, several: bool) -> None:
    """The single create's permission checks on one item (its name in front of a refusal
    when the batch has several)."""
    try:
        ops.may_create(item.type)
        ops.may_set_user(item.settings, {})
        ops.may_set_limits(item.settings, {})
    except LeosuiteError as exc:
        if not several or type(exc).__init__ is not LeosuiteError.__init__:
            raise
        raise type(exc)(f"{item.server[:80]}: {exc.message}", field=exc.field) from None


async def create_bulk(
    ops: ServerOps, request: CreateBulkRequest
) -> list[tuple[str, ServerRecord | LeosuiteError]]:
    """Create the batch (see the module docstring); each server's name with its record,
    or the error that kept it from being created, in the order asked."""
    several = len(request.servers) > 1
    for item in request.servers:
        _check(ops, item, several)
    chosen = await choose_node(ops.ctx, request.node)
    outcomes = await ops.manager.create_many(
        [(item.server, item.type, item.settings) for item in request.servers],
        owner_id=ops.principal.account_id,
        admit=fleet_admit(ops),
        node=chosen or None,
    )
    records = [o for o in outcomes if isinstance(o, ServerRecord)]
    where = await created_on_nodes(ops, records)
    created = [(r.name, f"created server {r.name} of type {r.type}{where} (bulk)") for r in records]
    await ops.ctx.audit.record_done_batch("server", created, actor=ops.principal.actor(ops.ip))
    return [(item.server, o) for item, o in zip(request.servers, outcomes, strict=True)]

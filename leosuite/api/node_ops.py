"""The nodes sharing the store, as the HTTP API (``/api/node_list``), the admin API
(``/nodes``), ``leosuite node list`` and ``/metrics`` show them: ADMIN only.

A node on the wire: ``{"name", "public_url", "ws_url", "state" ("up" or
"unreachable"), "this" (the node that answers), "started_at", "heartbeat_at" (ISO
8601 UTC, as the node wrote them), "heartbeat_age" (seconds since its heartbeat last
moved, as the answering node saw it), "version", "servers" (how many servers it
runs)}``, by name.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..auth.permissions import may_list_nodes
from ..auth.service import Principal
from ..clock import iso_utc
from ..errors import PermissionDenied
from .context import ApiContext

__all__ = ["NODE_SCHEMA", "node_list", "require_node_lister"]

_TIME = {"type": "string", "description": "ISO 8601 UTC (2026-11-23T15:57:32Z)"}
#: One node on the wire, as the OpenAPI documents of both listeners describe it.
NODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "public_url": {"type": "string", "description": "its HTTP API (node.public_url)"},
        "ws_url": {"type": "string", "description": "its WebSocket API"},
        "state": {
            "enum": ["up", "unreachable"],
            "description": "unreachable: no heartbeat for node.heartbeat_timeout seconds",
        },
        "this": {"type": "boolean", "description": "the node that answers"},
        "started_at": _TIME,
        "heartbeat_at": _TIME,
        "heartbeat_age": {
            "type": "number",
            "description": "seconds since its heartbeat last moved, as this node saw it",
        },
        "version": {"type": "string", "description": "the leosuite version it runs"},
        "servers": {"type": "integer", "description": "how many servers it runs"},
    },
}
NODE_SCHEMA["required"] = list(NODE_SCHEMA["properties"])


def require_node_lister(principal: Principal) -> None:
    """Refuse (403) an account that may not list the nodes."""
    if not may_list_nodes(principal):
        raise PermissionDenied("listing the nodes needs the ADMIN flag")


def node_list(ctx: ApiContext) -> list[dict[str, Any]]:
    """Every node this daemon knows of, by name."""
    nodes = ctx.nodes
    if nodes is None:
        return []
    counts = Counter(r.node for r in nodes.remote.records.values())
    counts[nodes.name] = len(ctx.servers.names())
    return [
        {
            "name": view.name,
            "public_url": view.public_url,
            "ws_url": view.ws_url,
            "state": view.state,
            "this": view.this,
            "started_at": iso_utc(view.started_at),
            "heartbeat_at": iso_utc(view.heartbeat_at),
            "heartbeat_age": view.heartbeat_age,
            "version": view.version,
            "servers": counts.get(view.name, 0),
        }
        for view in nodes.list()
    ]

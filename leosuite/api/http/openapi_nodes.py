"""The ``/api/node_list`` entry of the HTTP API's OpenAPI document (ADMIN only; the
node's fields are :mod:`leosuite.api.node_ops`'s)."""

from __future__ import annotations

from ..node_ops import NODE_SCHEMA
from ..openapi import Schema, json_body, operation, ref, response

__all__ = ["add_node_paths"]


def add_node_paths(paths: dict[str, Schema], schemas: dict[str, Schema]) -> None:
    schemas["Node"] = NODE_SCHEMA
    schemas["NodeList"] = {
        "type": "object",
        "properties": {"nodes": {"type": "array", "items": ref("Node")}},
        "required": ["nodes"],
    }
    error = ref("Error")
    paths["/api/node_list"] = {
        "post": operation(
            "node_list",
            "The nodes sharing the store, with their heartbeats",
            {
                "200": response("every node this daemon knows of, by name", ref("NodeList")),
                "400": response("malformed body", error),
                "403": response("no or bad token, not an ADMIN account, banned", error),
                "413": response("body over http.max_body_bytes", error),
            },
            tags=["nodes"],
            body=json_body(ref("Body"), required=False),
            security=[{"bearer": []}],
            description="ADMIN only. The token is the Bearer header or the body's `token`.",
        )
    }

"""The ``/api/server_power_bulk`` entry of the HTTP API's OpenAPI document (the call
is :mod:`.power_bulk`'s; its rules are :mod:`leosuite.api.power_bulk`'s)."""

from __future__ import annotations

from ..openapi import BEARER, Schema, error_response, json_body, operation, struct_components
from .power_bulk import BulkBody

__all__ = ["add_power_bulk_path"]

_NDJSON = "application/x-ndjson"

_LINE: Schema = {
    "anyOf": [
        {
            "type": "object",
            "properties": {"server": {"type": "string"}, "status": {"type": "string"}},
            "required": ["server", "status"],
        },
        {
            "type": "object",
            "properties": {
                "server": {"type": "string"},
                "error_type": {"type": "string"},
                "error_message": {"type": "string"},
            },
            "required": ["server", "error_type", "error_message"],
        },
        {
            "type": "object",
            "properties": {
                "done": {"const": True},
                "ok": {"type": "integer"},
                "failed": {"type": "integer"},
            },
            "required": ["done", "ok", "failed"],
        },
    ]
}


def add_power_bulk_path(paths: dict[str, Schema], schemas: dict[str, Schema]) -> None:
    """Add the bulk power call and the schemas it uses."""
    (body_ref,), components = struct_components([BulkBody])
    schemas.update(components)
    schemas["PowerBulkLine"] = _LINE
    streamed: Schema = {
        "description": "one JSON object a line: a line per server as its action ends, "
        "then the summary line",
        "content": {_NDJSON: {"schema": {"type": "string", "description": "PowerBulkLine lines"}}},
    }
    paths["/api/server_power_bulk"] = {
        "post": operation(
            "server_power_bulk",
            "One power action on many servers (a line per server, streamed)",
            {
                "200": streamed,
                "400": error_response(
                    "malformed body, neither or both of servers and all, more than 10000 "
                    "names, a name that is no server name (nothing is done)"
                ),
                "403": error_response("no or bad token, banned"),
                "413": error_response("body over http.max_body_bytes"),
            },
            tags=["servers"],
            body=json_body(body_ref),
            security=BEARER,
            description="The token is the Bearer header or the body's `token`. Each server "
            "is checked as its single call is: one this account may not see is reported "
            "not_found; `all` means every server it may do the action on.",
        )
    }

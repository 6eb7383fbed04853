"""The ``/api/server_create_bulk`` entry of the HTTP API's OpenAPI document (the call
is :mod:`.create_bulk`'s; its rules are :mod:`leosuite.api.create_bulk`'s)."""

from __future__ import annotations

from ..openapi import (
    BEARER,
    Schema,
    error_response,
    json_body,
    operation,
    ref,
    response,
    struct_components,
)
from .create_bulk import CreateBulkBody

__all__ = ["add_create_bulk_path"]


_ANSWER: Schema = {
    "type": "object",
    "properties": {
        "ok": {"type": "integer"},
        "failed": {"type": "integer"},
        "servers": {
            "type": "array",
            "items": {
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {
                            "server": {"type": "string"},
                            "readIndex": {"type": "integer"},
                        },
                        "required": ["server", "readIndex"],
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
                ]
            },
        },
    },
    "required": ["ok", "failed", "servers"],
}


def add_create_bulk_path(paths: dict[str, Schema], schemas: dict[str, Schema]) -> None:
    """Add the bulk create call and the schemas it uses."""
    (body_ref,), components = struct_components([CreateBulkBody])
    schemas.update(components)
    schemas["CreateBulkAnswer"] = _ANSWER
    paths["/api/server_create_bulk"] = {
        "post": operation(
            "server_create_bulk",
            "Create many servers in one call (checked whole, one transaction)",
            {
                "200": response("each server created, or why not", ref("CreateBulkAnswer")),
                "400": error_response(
                    "malformed body, no servers or more than 1000, a bad name, an unknown "
                    "type, a bad setting, an unknown node (nothing is created)"
                ),
                "403": error_response(
                    "no or bad token, banned, a type or setting this account may not use, "
                    "over the account's quota (nothing is created)"
                ),
                "409": error_response(
                    "a server name not available or given twice (nothing is created)"
                ),
                "413": error_response("body over http.max_body_bytes"),
            },
            tags=["servers"],
            body=json_body(body_ref),
            security=BEARER,
            description="The token is the Bearer header or the body's `token`. Each server "
            "is checked as `server_create` checks it; the first refusal names its server.",
        )
    }

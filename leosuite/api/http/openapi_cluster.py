"""The entries of a fleet's calls in the HTTP API's OpenAPI document: the console token
(:mod:`.cluster`, rules in :mod:`leosuite.api.fleet_access`) and the node-to-node call
(:mod:`leosuite.cluster.forward`)."""

from __future__ import annotations

from ...cluster.forward import CREDENTIAL_HEADER, OPERATION_PATH, Operation
from ..openapi import (
    BEARER,
    Schema,
    Security,
    error_response,
    json_body,
    operation,
    ref,
    response,
    struct_components,
)

__all__ = ["NODE_CREDENTIAL", "add_cluster_paths"]

#: The security scheme of node-to-node calls.
NODE_CREDENTIAL: Schema = {
    "type": "apiKey",
    "in": "header",
    "name": CREDENTIAL_HEADER,
    "description": "the node-to-node credential the nodes of one store share",
}

_NODE: Security = [{"nodeCredential": []}]
_STRING: Schema = {"type": "string"}

_USE = "send it as console_token (server_log, console.subscribe) to http_url or ws_url"
_TOKEN: Schema = {
    "type": "object",
    "properties": {
        "token": {**_STRING, "description": _USE},
        "node": _STRING,
        "http_url": _STRING,
        "ws_url": _STRING,
        "expires_at": {**_STRING, "description": "ISO 8601 UTC; open the console before"},
    },
    "required": ["token", "node", "http_url", "ws_url", "expires_at"],
}


def add_cluster_paths(paths: dict[str, Schema], schemas: dict[str, Schema]) -> None:
    """Add the fleet's calls and the schemas they use."""
    (operation_ref,), components = struct_components([Operation])
    schemas.update(components)
    schemas["ConsoleToken"] = _TOKEN
    paths["/api/server_console_token"] = {
        "post": operation(
            "server_console_token",
            "A short-lived token to read the console from the node that runs the server",
            {
                "200": response("the token and where to use it", ref("ConsoleToken")),
                "400": error_response("malformed body or server name"),
                "403": error_response("no or bad token, no console right on the server, banned"),
                "404": error_response("no such server (or not this account's)"),
                "413": error_response("body over http.max_body_bytes"),
                "503": error_response("the node that runs the server is unreachable"),
            },
            tags=["servers"],
            body=json_body(ref("ServerBody")),
            security=BEARER,
            description="The token is the Bearer header or the body's `token`. Any node "
            "mints it; the node that runs the server honours it for reading the console "
            "while the account still has the console right there.",
        )
    }
    paths[OPERATION_PATH] = {
        "post": operation(
            "node_server_operation",
            "A power action, console command, install or settings call another node forwards "
            "(nodes only)",
            {
                "200": response(
                    "a power action's answer, an install's, or the settings (kind settings)",
                    {"oneOf": [ref("PowerAnswer"), ref("InstallAnswer"), ref("ServerSettings")]},
                ),
                "204": response("a command was typed"),
                "400": error_response("malformed body, not a power action"),
                "403": error_response(
                    "no or wrong node credential, an Origin, the account is gone, locked or "
                    "not permitted"
                ),
                "404": error_response("no such server on this node (or not the account's)"),
                "409": error_response("wrong state or busy"),
                "413": error_response("body over http.max_body_bytes"),
            },
            tags=["cluster"],
            body=json_body(operation_ref),
            security=_NODE,
            description=f"The node-to-node credential (kept in the store) in `{CREDENTIAL_HEADER}`."
            " The account it names is checked here as if it had called this node itself.",
        )
    }

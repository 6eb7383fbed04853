"""``/service`` in the HTTP listener's OpenAPI document (when it is served)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
from quart import Response

from ...openapi import (
    JSON,
    Schema,
    json_body,
    operation,
    query_parameter,
    ref,
    response,
    struct_components,
)
from ._actions import ACTIONS, Envelope
from ._login import PasswordBody

__all__ = ["SCHEMAS", "add_service_path", "openapi_view", "service_path"]

_STRING = {"type": "string"}
_INT = {"type": "integer"}
_STATE = {"enum": ["started", "stopped"]}


def _object(properties: dict[str, Schema], required: list[str]) -> Schema:
    return {"type": "object", "properties": properties, "required": required}


_SERVER_STATE = _object(
    {
        "state": _STATE,
        "server-id": _STRING,
        "server-name": _STRING,
        "readIndex": _INT,
        "bufSize": _INT,
        "stage-changed": {"const": "now"},
    },
    ["state", "server-id", "readIndex", "bufSize"],
)

#: The answers of ``/service``, written out (the handlers build them as dicts).
SCHEMAS: dict[str, Schema] = {
    "GameConsoleConfig": _object(
        {"authmethod": {"const": "password"}, "endpoints": {"type": "array", "items": _STRING}},
        ["authmethod", "endpoints"],
    ),
    "GameConsoleLogin": {
        "anyOf": [
            _object({"random": _STRING, "proofs": _INT}, ["random", "proofs"]),
            _object(
                {
                    "session_token": _STRING,
                    "screenusername": _STRING,
                    "servercreatepermission": {"type": "boolean"},
                    "permissions": {"type": "array", "items": _STRING},
                },
                ["session_token", "screenusername", "servercreatepermission", "permissions"],
            ),
            _object({"error": _STRING}, ["error"]),
        ],
        "description": "A new random, a token, or why the login failed.",
    },
    "GameConsoleServerState": _SERVER_STATE,
    "GameConsoleOverview": {
        "type": "object",
        "description": "Every server the account may see, by handle.",
        "additionalProperties": _object(
            {
                "state": _STATE,
                "status": _STRING,
                "server-id": _STRING,
                "server-name": _STRING,
                "smalldescription": _STRING,
                "owner": _STRING,
                "readIndex": _INT,
                "bufSize": _INT,
                "exitCode": _INT,
            },
            ["state", "status", "server-id", "server-name", "smalldescription", "readIndex"],
        ),
    },
    "GameConsoleLog": _object(
        {
            "state": _STATE,
            "status": _STRING,
            "server-id": _STRING,
            "log": _STRING,
            "oldReadIndex": _INT,
            "nextReadIndex": _INT,
            "readIndex": _INT,
        },
        ["state", "server-id", "log", "oldReadIndex", "nextReadIndex", "readIndex"],
    ),
}


def service_path(password_body: Schema, envelope: Schema) -> Schema:
    """The path item of ``/service``; the request bodies are the handlers' Structs."""
    error = ref("Error")
    service = query_parameter(
        "service",
        {"enum": ["config", "password"]},
        "config (GET or POST), password (POST); none: the action envelope (POST)",
    )
    actions = "; ".join(f"{target}: {', '.join(names)}" for target, names in ACTIONS.items())
    return {
        "get": operation(
            "gameconsole_config",
            "GameConsole: how to log in (?service=config)",
            {
                "200": response("the login method", ref("GameConsoleConfig")),
                "403": response("a banned address", error),
                "404": response("an unknown ?service=", error),
                "405": response("no ?service=config: the envelope is POST", error),
            },
            tags=["gameconsole"],
            parameters=[service],
            security=[],
        ),
        "post": operation(
            "gameconsole_service",
            "GameConsole: config, login, or one action",
            {
                "200": response(
                    "the answer",
                    {
                        "anyOf": [
                            ref("GameConsoleConfig"),
                            ref("GameConsoleLogin"),
                            ref("GameConsoleOverview"),
                            ref("GameConsoleServerState"),
                            ref("GameConsoleLog"),
                            _object({"servers": {"type": "array", "items": _STRING}}, ["servers"]),
                        ]
                    },
                ),
                "400": response("malformed body, wrong type, missing server or command", error),
                "403": response("no, bad or expired authkey; not permitted; banned", error),
                "404": response("no such server (or not this account's), unknown ?service=", error),
                "405": response(f"unknown target or action ({actions})", error),
                "409": response("busy, or the server does not read its console", error),
                "413": response("body over http.max_body_bytes", error),
                "429": response(
                    "too many randoms asked for, or over http.request_rate requests", error
                ),
            },
            tags=["gameconsole"],
            parameters=[service],
            body=json_body(
                {"anyOf": [password_body, envelope]},
                required=False,
                description="?service=password: the login; no ?service=: the envelope",
            ),
            security=[],
            description=(
                "Off unless http.gameconsole_service is set. The token is the body's "
                "`authkey` (or `Authorization: Bearer`); see docs/api.md."
            ),
        ),
    }


def add_service_path(paths: dict[str, Schema], schemas: dict[str, Schema]) -> None:
    """Add ``/service`` and the schemas it uses to a document being built."""
    (password_body, envelope), components = struct_components([PasswordBody, Envelope])
    schemas.update(components)
    schemas.update(SCHEMAS)
    paths["/service"] = service_path(password_body, envelope)


def openapi_view(document: Mapping[str, Any]) -> Callable[[], Awaitable[Response]]:
    """The view of ``GET /openapi.json`` serving ``document``."""
    body = msgspec.json.encode(document)

    async def openapi_json() -> Response:
        return Response(body, status=200, content_type=JSON)

    return openapi_json

"""The OpenAPI document of the admin listener (seed 002). Request bodies are the
handlers' own Structs; answers are written out here and, for sessions, members, their
chat and invites and the pages answered as not supported, in :mod:`.openapi_sessions`
(their shapes: docs/admin.md).

Each path is listed once, as ``/name`` or ``/name/{id}``; every one is also served
under ``/api/`` and with a trailing slash (the seed's spelling is ``/server/``)."""

from __future__ import annotations

from typing import Any

from ...community.server_settings import ServerSettingsPatch
from ..node_ops import NODE_SCHEMA
from ..openapi import (
    Schema,
    Security,
    constrain,
    document,
    error_response,
    json_body,
    operation,
    path_parameter,
    ref,
    response,
    struct_components,
)
from .accounts import AccountChange, NewAccount
from .bans import BanBody
from .kept import KeptPurgeRequest
from .openapi_parts import (
    FLAGS_DESCRIPTION,
    LOG_PARAMETERS,
    STATUS,
    loosen_settings_patch,
    settings_schemas,
)

__all__ = ["build"]

#: accounts.validate_username's rule.
USERNAME = "^[A-Za-z0-9_.\\-]{1,32}$"

ADMIN_SECURITY: Security = [{"basic": []}, {"bearer": []}]

_STRING = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_TIME = {"type": "string", "description": "ISO 8601 UTC (2026-11-23T15:57:32Z)"}


def _object(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


def _list(item: str) -> Schema:
    return {"type": "array", "items": ref(item)}


_BAN: dict[str, Schema] = {
    "id": _INT,
    "ip": _STRING,
    "subnet": _INT,
    "expires": {"type": "string", "description": 'ISO 8601 UTC, "" for never'},
    "comment": _STRING,
    "added": _TIME,
}

HAND_WRITTEN: dict[str, Schema] = {
    "AdminError": {
        **_object({"status": {"const": "error"}, "message": _STRING}),
        "additionalProperties": False,
        "description": "Every error of the admin API; a bad field's message starts with its name.",
    },
    "Ok": _object({"status": {"const": "ok"}}),
    "Status": _object(STATUS),
    **settings_schemas(),
    "Account": _object(
        {
            "id": _INT,
            "username": _STRING,
            "locked": _BOOL,
            "flags": {"type": "string", "description": FLAGS_DESCRIPTION},
        }
    ),
    "LogEntry": _object(
        {
            "timestamp": {"type": "string", "description": "ISO 8601 UTC, to the millisecond"},
            "level": {"enum": ["Error", "Warn", "Info", "Debug"]},
            "topic": _STRING,
            "session": _STRING,
            "user": {"type": "string", "description": '"id;ip;name" or ""'},
            "message": _STRING,
        }
    ),
    "Ban": _object(_BAN),
    "BanAdded": _object(
        {**_BAN, "appliesToYou": _BOOL, "message": _STRING},
        required=[*_BAN, "appliesToYou"],
    ),
    "KeptEntry": _object(
        {
            "server": _STRING,
            "kind": {"enum": ["files", "logs"]},
            "path": {"type": "string", "description": "relative to the data directory"},
            "size": {"type": "integer", "description": "bytes on disk"},
            "since": {**_TIME, "description": "when it was set aside, ISO 8601 UTC"},
        }
    ),
    "Node": NODE_SCHEMA,
    "KeptPurged": _object(
        {
            "purged": _list("KeptEntry"),
            "failed": {"type": "array", "items": _object({"path": _STRING, "message": _STRING})},
        }
    ),
}


def _error(description: str) -> Schema:
    return error_response(description, "AdminError")


#: What the listener answers before routing, to any request (Host, Origin, connections).
LISTENER = {
    "403": _error("a foreign Origin or Sec-Fetch-Site: cross-site; or a banned address"),
    "421": _error("a Host the daemon is not served under (see http.allowed_hosts)"),
    "429": _error("over admin.max_connections_per_ip open connections from this address"),
}
#: Every admin operation may answer these (auth and the ban check come first).
COMMON = {
    **LISTENER,
    "401": {
        **_error("no or wrong credentials"),
        "headers": {
            "WWW-Authenticate": {
                "schema": _STRING,
                "description": "Basic; left out for X-Requested-With: XMLHttpRequest",
            }
        },
    },
    "403": _error("not an ADMIN account, a foreign Origin, or a banned address"),
    "429": _error(
        "too many failed attempts, or over admin.max_connections_per_ip open connections, "
        "from this address"
    ),
}
BODY_ERRORS = {
    "400": _error("malformed body or a bad value (named)"),
    "413": _error("body too large"),
    "415": _error("a body that is not application/json"),
}
NOT_FOUND = {"404": _error("no such item")}

ACCOUNT_ID = path_parameter("account_id", _STRING, "an account id (a number)")
BAN_ID = path_parameter("ban_id", {"type": "integer", "minimum": 0}, "a ban id")


def _op(
    operation_id: str,
    summary: str,
    ok: Schema,
    *,
    tag: str,
    body: Schema | None = None,
    errors: dict[str, Any] | None = None,
    parameters: list[Schema] | None = None,
    status: str = "200",
    body_required: bool = False,
) -> Schema:
    responses = {status: response("done", ok), **COMMON, **(errors or {})}
    if body is not None:
        responses.update(BODY_ERRORS)
    return operation(
        operation_id,
        summary,
        dict(sorted(responses.items())),
        tags=[tag],
        body=None if body is None else json_body(body, required=body_required),
        parameters=parameters,
    )


def build() -> Schema:
    from .openapi_sessions import build_sessions

    structs: list[type[Any]] = [
        ServerSettingsPatch,
        NewAccount,
        AccountChange,
        BanBody,
        KeptPurgeRequest,
    ]
    refs, schemas = struct_components(structs)
    body = dict(zip(structs, refs, strict=True))
    constrain(schemas, "username", {"pattern": USERNAME})
    loosen_settings_patch(schemas)
    schemas.update(HAND_WRITTEN)
    session_paths, session_schemas = build_sessions()
    schemas.update(session_schemas)
    paths: dict[str, Schema] = {
        "/openapi.json": {
            "get": operation(
                "openapi",
                "This document (no auth)",
                {"200": response("OpenAPI 3.1", {"type": "object"}), **LISTENER},
                tags=["meta"],
                security=[],
            )
        },
        "/status": {"get": _op("status", "Uptime and counts", ref("Status"), tag="meta")},
        "/metrics": {
            "get": operation(
                "metrics",
                "Prometheus metrics (text format)",
                {
                    "200": {
                        "description": "the Prometheus text exposition format 0.0.4",
                        "content": {"text/plain": {"schema": _STRING}},
                    },
                    **COMMON,
                },
                tags=["meta"],
                description="ADMIN credentials, or metrics.scrape_token as a Bearer token.",
            )
        },
        "/server": {
            "get": _op("server_get", "Server settings", ref("ServerSettings"), tag="settings"),
            "put": _op(
                "server_put",
                "Change settings (all or nothing; other names ignored and listed)",
                ref("ServerSettingsChanged"),
                tag="settings",
                body=body[ServerSettingsPatch],
            ),
            "delete": _op(
                "server_reset",
                "Remove every stored setting (the configuration file's values apply again)",
                ref("ServerSettingsReset"),
                tag="settings",
            ),
        },
        "/server/{key}": {
            "delete": _op(
                "server_reset_key",
                "Remove one stored setting (the configuration file's value applies again)",
                ref("ServerSettingsReset"),
                tag="settings",
                parameters=[path_parameter("key", _STRING, "a setting's name or alias")],
                errors={
                    "400": _error("logpurgedays (read-only here)"),
                    "404": _error("no setting has that name"),
                },
            ),
        },
        **session_paths,
        "/accounts": {
            "get": _op("accounts_list", "Accounts", _list("Account"), tag="accounts"),
            "post": _op(
                "account_create",
                "Create an account",
                ref("Account"),
                tag="accounts",
                body=body[NewAccount],
                body_required=True,
                errors={"409": _error("the username is taken")},
                status="201",
            ),
        },
        "/accounts/{account_id}": {
            "get": _op(
                "account_get",
                "One account",
                ref("Account"),
                tag="accounts",
                errors=NOT_FOUND,
                parameters=[ACCOUNT_ID],
            ),
            "put": _op(
                "account_change",
                "Change an account (all or nothing)",
                ref("Account"),
                tag="accounts",
                body=body[AccountChange],
                body_required=True,
                errors={**NOT_FOUND, "409": _error("taken name, or the last unlocked ADMIN")},
                parameters=[ACCOUNT_ID],
            ),
            "delete": _op(
                "account_delete",
                "Delete an account",
                ref("Account"),
                tag="accounts",
                errors={**NOT_FOUND, "409": _error("the last unlocked ADMIN")},
                parameters=[ACCOUNT_ID],
            ),
        },
        "/log": {
            "get": _op(
                "log",
                "The audit log, newest first, 100 a page",
                _list("LogEntry"),
                tag="log",
                errors={"400": _error("bad page, after, session, user or contains")},
                parameters=LOG_PARAMETERS,
            )
        },
        "/banlist": {
            "get": _op("bans_list", "The bans in force", _list("Ban"), tag="bans"),
            "post": _op(
                "ban_add",
                "Ban an address or a network",
                ref("BanAdded"),
                tag="bans",
                body=body[BanBody],
                body_required=True,
            ),
        },
        "/banlist/{ban_id}": {
            "delete": _op(
                "ban_remove",
                "Lift a ban",
                ref("Ok"),
                tag="bans",
                errors=NOT_FOUND,
                parameters=[BAN_ID],
            )
        },
        "/kept": {
            "get": _op(
                "kept_list",
                "What destroyed servers left behind, oldest first",
                _list("KeptEntry"),
                tag="servers",
            )
        },
        "/nodes": {
            "get": _op(
                "node_list",
                "The nodes sharing the store, with their heartbeats, by name",
                _list("Node"),
                tag="nodes",
            )
        },
        "/kept/purge": {
            "post": _op(
                "kept_purge",
                "Remove kept files and logs of destroyed servers",
                ref("KeptPurged"),
                tag="servers",
                body=body[KeptPurgeRequest],
                body_required=True,
            )
        },
    }
    return document(
        "leosuite admin API",
        "The operator's REST API (seed 002). Every path is also served under /api/ and "
        "with a trailing slash. Every request needs an ADMIN account (HTTP Basic or a "
        'Bearer token). Errors are `{"status": "error", "message"}`. Details: docs/admin.md.',
        paths,
        schemas,
        {
            "basic": {"type": "http", "scheme": "basic"},
            "bearer": {"type": "http", "scheme": "bearer", "description": "an access token"},
        },
        security=ADMIN_SECURITY,
    )

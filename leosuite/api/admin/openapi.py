"""The OpenAPI document of the admin listener (seed 002). Request bodies are the
handlers' own Structs; answers are written out here (their shapes: docs/admin.md).

Each path is listed once, as ``/name`` or ``/name/{id}``; every one is also served
under ``/api/`` and with a trailing slash (the seed's spelling is ``/server/``)."""

from __future__ import annotations

from typing import Any

from ...community.server_settings import WIRE, ServerSettingsPatch
from ..openapi import (
    Schema,
    Security,
    constrain,
    document,
    json_body,
    operation,
    path_parameter,
    query_parameter,
    ref,
    response,
    struct_components,
)
from .accounts import AccountChange, NewAccount
from .bans import BanBody
from .kept import KeptPurgeRequest
from .sessions import SessionPatch, UserPatch

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


_SETTING_TYPES: dict[str, Schema] = {
    "clientTimeout": _STRING,
    "sessionSizeLimit": _STRING,
    "sessionCountLimit": _INT,
    "idleTimeLimit": _STRING,
    "serverTitle": _STRING,
    "welcomeMessage": _STRING,
}

_SUMMARY: dict[str, Schema] = {
    "id": _STRING,
    "alias": _STRING,
    "protocol": _STRING,
    "userCount": _INT,
    "founder": _STRING,
    "title": _STRING,
    "hasPassword": _BOOL,
    "closed": _BOOL,
    "persistent": _BOOL,
    "nsfm": _BOOL,
    "startTime": _TIME,
    "size": _INT,
}

_USER: dict[str, Schema] = {
    "id": _INT,
    "name": _STRING,
    "ip": _STRING,
    "auth": _BOOL,
    "op": _BOOL,
    "muted": _BOOL,
    "mod": _BOOL,
    "tls": _BOOL,
}

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
    "Status": _object({"started": _TIME, "sessions": _INT, "maxSessions": _INT, "users": _INT}),
    "ServerSettings": _object({key: _SETTING_TYPES.get(key, _BOOL) for key in WIRE}),
    "SessionSummary": _object(_SUMMARY),
    "SessionUser": _object(_USER),
    "SessionDetail": _object(
        {
            **_SUMMARY,
            "maxSize": _INT,
            "maxUserCount": _INT,
            "preserveChat": _BOOL,
            "users": _list("SessionUser"),
            "listing": {"type": "array", "maxItems": 0},
        }
    ),
    "UserEntry": _object({"session": _STRING, **_USER}),
    "Account": _object(
        {
            "id": _INT,
            "username": _STRING,
            "locked": _BOOL,
            "flags": {"type": "string", "description": "comma-separated: ADMIN, HOST, MOD"},
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
    "KeptPurged": _object(
        {
            "purged": _list("KeptEntry"),
            "failed": {"type": "array", "items": _object({"path": _STRING, "message": _STRING})},
        }
    ),
}


def _error(description: str) -> Schema:
    return response(description, ref("AdminError"))


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
        "headers": {"WWW-Authenticate": {"schema": _STRING, "required": True}},
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

SID = path_parameter("sid", _STRING, "a session id, or its name (# optional, any case)")
USER_ID = path_parameter("user_id", _STRING, "a member id as /users shows it")
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
    structs: list[type[Any]] = [
        ServerSettingsPatch,
        SessionPatch,
        UserPatch,
        NewAccount,
        AccountChange,
        BanBody,
        KeptPurgeRequest,
    ]
    refs, schemas = struct_components(structs)
    body = dict(zip(structs, refs, strict=True))
    constrain(schemas, "username", {"pattern": USERNAME})
    schemas.update(HAND_WRITTEN)
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
        "/server": {
            "get": _op("server_get", "Server settings", ref("ServerSettings"), tag="settings"),
            "put": _op(
                "server_put",
                "Change settings (all or nothing)",
                ref("ServerSettings"),
                tag="settings",
                body=body[ServerSettingsPatch],
            ),
        },
        "/sessions": {
            "get": _op("sessions_list", "Sessions", _list("SessionSummary"), tag="sessions")
        },
        "/sessions/{sid}": {
            "get": _op(
                "session_show",
                "A session with its users",
                ref("SessionDetail"),
                tag="sessions",
                errors=NOT_FOUND,
                parameters=[SID],
            ),
            "delete": _op(
                "session_shutdown",
                "Shut a session down",
                ref("Ok"),
                tag="sessions",
                errors=NOT_FOUND,
                parameters=[SID],
            ),
        },
        "/session/{sid}": {
            "put": _op(
                "session_put",
                "Change a session's properties; message or alert its members",
                ref("SessionDetail"),
                tag="sessions",
                body=body[SessionPatch],
                errors=NOT_FOUND,
                parameters=[SID],
            ),
        },
        "/session/{sid}/{user_id}": {
            "delete": _op(
                "user_kick",
                "Kick a member",
                ref("Ok"),
                tag="sessions",
                errors=NOT_FOUND,
                parameters=[SID, USER_ID],
            ),
            "put": _op(
                "user_put",
                "Op/deop or message a member",
                ref("SessionUser"),
                tag="sessions",
                body=body[UserPatch],
                errors=NOT_FOUND,
                parameters=[SID, USER_ID],
            ),
        },
        "/users": {
            "get": _op("users_list", "Connected members", _list("UserEntry"), tag="sessions")
        },
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
                errors={"400": _error("bad page or after")},
                parameters=[
                    query_parameter("page", _STRING, "0, 1, 2, ... (0: the newest 100)"),
                    query_parameter("session", _STRING, "one session's entries (any case)"),
                    query_parameter("after", _STRING, "ISO 8601 or unix seconds; strictly later"),
                ],
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

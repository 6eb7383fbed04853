"""The OpenAPI document of the HTTP API listener: ``/api/...`` (seed 001) and ``/rooms``
(seed 004). Request bodies are the handlers' own Structs; answers are written out here
(their shapes: docs/api.md, docs/community.md)."""

from __future__ import annotations

from typing import Any

from ...auth.permissions import RIGHTS
from ...auth.service import LoginInfo, LoginResult
from ...store.servers import NAME_PATTERN
from ...supervision.manager import LogAnswer
from ...supervision.states import POWER_ACTIONS, State
from ..guards import RATE_LIMITED_PREFIXES
from ..openapi import (
    BEARER,
    Schema,
    Security,
    constrain,
    document,
    error_response,
    has_required_fields,
    json_body,
    operation,
    query_parameter,
    ref,
    response,
    struct_components,
)
from ..requests import Body
from . import rooms
from . import servers as http_servers
from . import shares as http_shares
from .auth import LoginBody
from .gameconsole import add_service_path
from .kept import KeptPurgeBody
from .logfiles import LogFileBody
from .openapi_backups import add_backup_paths
from .openapi_cluster import NODE_CREDENTIAL, add_cluster_paths
from .openapi_create_bulk import add_create_bulk_path
from .openapi_files import add_files_paths
from .openapi_nodes import add_node_paths
from .openapi_power_bulk import add_power_bulk_path
from .openapi_schedules import SCHEDULE_OPS, SCHEDULE_SCHEMAS

__all__ = ["build"]

SERVER_NAME = NAME_PATTERN

PUBLIC: Security = []

_STRING = {"type": "string"}
_INT = {"type": "integer"}
_NUMBER = {"type": "number"}
_BOOL = {"type": "boolean"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


#: Answers and errors, written out (the handlers build them as dicts).
HAND_WRITTEN: dict[str, Schema] = {
    "Error": {
        **_object({"error_type": _STRING, "error_message": _STRING}),
        "additionalProperties": False,
        "description": "Every error of the HTTP API (not /rooms).",
    },
    "RoomsError": {
        **_object({"status": {"const": "error"}, "error_type": _STRING, "text": _STRING}),
        "additionalProperties": False,
        "description": "An error of POST /rooms.",
    },
    "Health": _object({"status": {"const": "ok"}}),
    "AuthConfig": _object(
        {
            "type": {"const": "password"},
            "endpoints": {"type": "array", "items": _STRING},
            "websocket": _STRING,
        }
    ),
    "ServerType": _object({"type": _STRING, "description": _STRING}),
    "ServerVariable": _object(
        {
            "name": _STRING,
            "label": {"type": "string", "description": "what forms and error messages call it"},
            "type": {"enum": ["string", "path", "int", "number", "port", "bool", "choice"]},
            "required": _BOOL,
            "readonly": _BOOL,
            "advanced": {"type": "boolean", "description": "shown folded in the forms"},
            "default": {},
            "description": _STRING,
            "choices": {"type": "array"},
            "min": _NUMBER,
            "max": _NUMBER,
            "ceiling": {
                "type": "integer",
                "description": "resource limits only: the most a non-ADMIN may set (0: none)",
            },
        },
        required=[
            "name",
            "label",
            "type",
            "required",
            "readonly",
            "advanced",
            "default",
            "description",
        ],
    ),
    "CreateOptions": {
        "anyOf": [
            _object({"types": {"type": "array", "items": ref("ServerType")}}),
            _object(
                {"type": _STRING, "variables": {"type": "array", "items": ref("ServerVariable")}}
            ),
        ]
    },
    "ServerCreated": _object({"server": _STRING, "readIndex": _INT}),
    "ServerList": _object(
        {
            "servers": {"type": "array", "items": _STRING},
            "rights": {
                "type": "object",
                "additionalProperties": ref("Rights"),
                "description": "the caller's rights on each listed server",
            },
            "owners": {
                "type": "object",
                "additionalProperties": _nullable(_STRING),
                "description": "ADMIN accounts only: each server's owner's username "
                "(null: none, or the account was deleted)",
            },
        },
        required=["servers", "rights"],
    ),
    "Rights": {
        "type": "array",
        "items": {"enum": list(RIGHTS)},
        "uniqueItems": True,
        "description": "Rights on one server, in this order: " + ", ".join(RIGHTS),
    },
    "ShareList": _object(
        {
            "server": _STRING,
            "shares": {
                "type": "array",
                "items": _object(
                    {
                        "account": _STRING,
                        "rights": ref("Rights"),
                        "locked": _BOOL,
                        "granted_at": {"type": "number", "description": "unix time"},
                    }
                ),
            },
        }
    ),
    "ShareSet": _object({"server": _STRING, "account": _STRING, "rights": ref("Rights")}),
    "ServerStatus": _object(
        {
            "server": _STRING,
            "node": {"type": "string", "description": "the node that runs the server"},
            "readIndex": _nullable(_INT),
            "status": {
                "enum": [*(state.value for state in State), "unreachable"],
                "description": "unreachable: its node is not heartbeating (see last_status)",
            },
            "last_status": {
                "enum": [state.value for state in State],
                "description": "another node's server only: the state its node last wrote",
            },
            "status_updated_at": _nullable(_STRING),
            "description": _STRING,
            "type": _STRING,
            "pid": _nullable(_INT),
            "uptime": _nullable(_NUMBER),
            "exit_code": _nullable(_INT),
            "restarts": _nullable(_INT),
            "cpu": _nullable(_NUMBER),
            "memory": _nullable(_INT),
            "threads": _nullable(_INT),
            "last_error": _nullable(_STRING),
            "stop_requested": _nullable(_STRING),
            "restart_in": _nullable(_NUMBER),
            "install": _nullable(
                _object(
                    {
                        "steps": _INT,
                        "done": {
                            "type": "boolean",
                            "description": "the last install ran the current steps",
                        },
                        "running": _BOOL,
                    }
                )
            ),
            "disk": {
                "enum": ["ok", "low", "full", None],
                "description": "Free space on the data directory's filesystem, which holds "
                "the server's directory and logs (daemon.disk_warn_free_bytes, "
                "daemon.disk_warn_free_percent)",
            },
            "actions": {
                "type": "array",
                "items": {"enum": list(POWER_ACTIONS)},
                "uniqueItems": True,
                "description": "The power actions the current status allows, in this order: "
                + ", ".join(POWER_ACTIONS),
            },
            "rights": ref("Rights"),
            "manage": {
                "type": "boolean",
                "description": "the caller may destroy and share the server (owner or ADMIN)",
            },
        }
    ),
    "ServerStatuses": {
        "anyOf": [
            ref("ServerStatus"),
            _object({"servers": {"type": "object", "additionalProperties": ref("ServerStatus")}}),
        ]
    },
    "PowerAnswer": _object({"server": _STRING, "status": _STRING}),
    "InstallAnswer": _object(
        {
            "server": _STRING,
            "status": _STRING,
            "installed": _BOOL,
            "error": {
                "type": "string",
                "description": "why the install failed or stopped (only when not installed)",
            },
        },
        ["server", "status", "installed"],
    ),
    "StatsHistory": _object(
        {
            "server": _STRING,
            "interval": {"type": "number", "description": "seconds between samples"},
            "samples": {
                "type": "array",
                "description": "the last hour while the server ran, oldest first",
                "items": _object(
                    {
                        "t": {"type": "number", "description": "Unix time of the sample"},
                        "cpu": {"type": "number", "description": "percent of one core"},
                        "memory": {"type": "integer", "description": "resident bytes"},
                        "threads": _INT,
                    }
                ),
            },
        }
    ),
    "KeptEntry": _object(
        {
            "server": _STRING,
            "kind": {"enum": ["files", "logs"]},
            "path": {"type": "string", "description": "relative to the data directory"},
            "size": {"type": "integer", "description": "bytes on disk"},
            "since": {"type": "string", "description": "when it was set aside, ISO 8601 UTC"},
        }
    ),
    "KeptList": _object({"kept": {"type": "array", "items": ref("KeptEntry")}}),
    "KeptPurged": _object(
        {
            "purged": {"type": "array", "items": ref("KeptEntry")},
            "failed": {"type": "array", "items": _object({"path": _STRING, "message": _STRING})},
        }
    ),
    "ServerSettings": {
        "type": "array",
        "items": _object(
            {
                "name": _STRING,
                "required": _BOOL,
                "type": _STRING,
                "readonly": _BOOL,
                "value": {},
                "label": _STRING,
                "advanced": _BOOL,
                "description": _STRING,
            }
        ),
    },
    "RoomsAnswer": {
        "description": "ok (createRoom: name; joinRoom: last, session, syskey; sendMsg, "
        "sendDirectMsg: msgid), updated (pollMsg: messages as [id, msgtext, timestamp, "
        "fromuser, touser]), unchanged (pollMsg: last) or errmessage (pollMsg after a "
        "kick, ban or close: text).",
        **_object(
            {
                "status": {"enum": ["ok", "updated", "unchanged", "errmessage"]},
                "name": _STRING,
                "last": _INT,
                "session": _STRING,
                "syskey": _STRING,
                "msgid": _INT,
                "messages": {"type": "array", "items": {"type": "array"}},
                "text": _STRING,
            },
            required=["status"],
        ),
    },
    **SCHEDULE_SCHEMAS,
}
# Only another node's server has these (the fields only its node knows are null there).
HAND_WRITTEN["ServerStatus"]["required"] = [
    key
    for key in HAND_WRITTEN["ServerStatus"]["properties"]
    if key not in ("last_status", "status_updated_at")
]

#: ``/rooms`` actions -> their payload Struct.
ROOM_ACTIONS: dict[str, type[Any]] = {
    "createRoom": rooms.CreateRoom,
    "joinRoom": rooms.JoinRoom,
    "pollMsg": rooms.PollMsg,
    "sendMsg": rooms.SendMsg,
    "sendDirectMsg": rooms.SendDirectMsg,
    "inviteUser": rooms.InviteUser,
    "kickUser": rooms.KickUser,
    "banUser": rooms.KickUser,
    "leaveRoom": rooms.Authed,
    "closeRoom": rooms.Authed,
}

#: ``/api/server_*`` -> (request Struct, summary, 2xx status, answer schema or None).
SERVER_OPS: dict[str, tuple[type[Any], str, str, Schema | None]] = {
    "server_create_options": (
        http_servers.CreateOptionsBody,
        "The types this account may create, or one type's variables",
        "200",
        ref("CreateOptions"),
    ),
    "server_create": (http_servers.CreateBody, "Create a server", "200", ref("ServerCreated")),
    "server_destroy": (http_servers.DestroyBody, "Destroy a server", "204", None),
    "server_list": (Body, "The servers this account sees", "200", ref("ServerList")),
    "server_status": (
        http_servers.StatusBody,
        "One server's status, or every visible one",
        "200",
        ref("ServerStatuses"),
    ),
    "server_log": (http_servers.LogBody, "Read (follow) the console log", "200", ref("LogAnswer")),
    "server_logfile": (
        LogFileBody,
        "List the server's own log files, or read (follow) one as server_log reads the console",
        "200",
        {"oneOf": [ref("LogAnswer"), {"type": "object", "required": ["server", "files"]}]},
    ),
    "server_stats_history": (
        http_servers.ServerBody,
        "The last hour of CPU, memory and thread samples",
        "200",
        ref("StatsHistory"),
    ),
    "server_cmd": (http_servers.CommandBody, "Type a line into the console", "204", None),
    "server_start": (http_servers.ServerBody, "Start", "200", ref("PowerAnswer")),
    "server_stop": (http_servers.ServerBody, "Stop gracefully", "200", ref("PowerAnswer")),
    "server_restart": (http_servers.ServerBody, "Restart", "200", ref("PowerAnswer")),
    "server_kill": (
        http_servers.ServerBody,
        "SIGTERM the process group",
        "200",
        ref("PowerAnswer"),
    ),
    "server_force_kill": (http_servers.ServerBody, "SIGKILL at once", "200", ref("PowerAnswer")),
    "server_install": (
        http_servers.ServerBody,
        "Run the type's install steps now (the server at rest)",
        "200",
        ref("InstallAnswer"),
    ),
    "server_settings": (
        http_servers.SettingsBody,
        "Read or change the settings",
        "200",
        ref("ServerSettings"),
    ),
    "server_share_list": (
        http_shares.ShareListBody,
        "The accounts the server is shared with (owner or ADMIN)",
        "200",
        ref("ShareList"),
    ),
    "server_share_set": (
        http_shares.ShareSetBody,
        "Set an account's rights on the server; [] revokes (owner or ADMIN)",
        "200",
        ref("ShareSet"),
    ),
    **SCHEDULE_OPS,
}


#: ``/api/server_kept_*`` -> (request Struct, summary, answer schema): ADMIN only.
KEPT_OPS: dict[str, tuple[type[Any], str, Schema]] = {
    "server_kept_list": (Body, "What destroyed servers left behind", ref("KeptList")),
    "server_kept_purge": (
        KeptPurgeBody,
        "Remove kept files and logs of destroyed servers",
        ref("KeptPurged"),
    ),
}


BANNED = error_response("the address is banned")
BAD_BODY = {
    "400": error_response(
        "malformed body: not JSON, not an object, unknown or missing field, wrong type"
    ),
    "413": error_response("body over http.max_body_bytes"),
}


def _rooms_operation(payload_refs: dict[str, Schema]) -> Schema:
    variants = [
        {
            "type": "object",
            "properties": {
                "action": {"const": action},
                "payload": {
                    "anyOf": [
                        payload,
                        {"type": "string", "description": "the payload as a JSON string"},
                    ]
                },
            },
            "required": ["action", "payload"],
            "additionalProperties": False,
        }
        for action, payload in payload_refs.items()
    ]
    return operation(
        "rooms",
        "Encrypted rooms (seed 004): one action per request",
        {
            "200": response("the action's answer", ref("RoomsAnswer")),
            "400": response("bad request, conflict or unknown user", ref("RoomsError")),
            "403": response(
                "missing or wrong session key, not the owner; or a banned address",
                {"anyOf": [ref("RoomsError"), ref("Error")]},
            ),
            "429": response(
                "too many rooms created or wrong passwords sent from this address, or wrong "
                "passwords for this room",
                ref("RoomsError"),
            ),
        },
        tags=["rooms"],
        body=json_body({"oneOf": variants}),
        security=PUBLIC,
    )


def _add_listener_responses(paths: dict[str, Schema]) -> None:
    """What the listener answers before routing, on every operation: 421 (Host), 415
    (a body that is not JSON), 429 (requests or connections from one address); in the
    endpoint's own shape, but a connection over the cap gets the API's."""
    for path, item in paths.items():
        rooms = path == "/rooms"
        shape = ref("RoomsError") if rooms else ref("Error")
        limited = path.startswith(RATE_LIMITED_PREFIXES)
        too_many = (
            "over http.request_rate requests or http.max_connections_per_ip connections"
            if limited
            else "over http.max_connections_per_ip open connections"
        )
        for op in item.values():
            responses: dict[str, Schema] = op["responses"]
            responses.setdefault(
                "421", response("a Host the daemon is not served under (http.allowed_hosts)", shape)
            )
            if "requestBody" in op:
                responses.setdefault("415", response("a body that is not application/json", shape))
            schema = {"anyOf": [ref("RoomsError"), ref("Error")]} if rooms else ref("Error")
            earlier = responses.get("429")
            described = f"{earlier['description']}; or {too_many}" if earlier else too_many
            responses["429"] = response(f"{described} from this address", schema)
            op["responses"] = dict(sorted(responses.items()))


def build(*, servers: bool = True, gameconsole: bool = False) -> Schema:
    room_structs = list(dict.fromkeys(ROOM_ACTIONS.values()))
    server_structs = list(dict.fromkeys(op[0] for op in SERVER_OPS.values())) if servers else []
    server_structs += [KeptPurgeBody] if servers else []
    answers = [LogAnswer] if servers else []
    structs: list[type[Any]] = [
        LoginBody,
        Body,
        LoginInfo,
        LoginResult,
        *answers,
        *room_structs,
        *server_structs,
    ]
    refs, schemas = struct_components(structs)
    by_struct = dict(zip(structs, refs, strict=True))
    constrain(schemas, "server", {"pattern": SERVER_NAME})
    schemas.update(HAND_WRITTEN)
    paths: dict[str, Schema] = {
        "/openapi.json": {
            "get": operation(
                "openapi",
                "This document",
                {"200": response("OpenAPI 3.1", {"type": "object"}), "403": BANNED},
                tags=["meta"],
                security=PUBLIC,
            )
        },
        "/api/health": {
            "get": operation(
                "health",
                "Liveness",
                {"200": response("up", ref("Health")), "403": BANNED},
                tags=["meta"],
                security=PUBLIC,
            )
        },
        "/healthz": {
            "get": operation(
                "healthz",
                "Liveness: the daemon's event loop answers",
                {"200": response("alive", ref("Health")), "403": BANNED},
                tags=["meta"],
                security=PUBLIC,
            )
        },
        "/readyz": {
            "get": operation(
                "readyz",
                "Readiness: every listener serves, the store can be written, disk space is"
                " above daemon.disk_warn_free_*",
                {
                    "200": response("ready", _object({"status": {"const": "ready"}})),
                    "403": BANNED,
                    "503": response(
                        "not ready: what is not, by check (listeners, store, disk)",
                        _object(
                            {
                                "status": {"const": "unready"},
                                "failing": {
                                    "type": "object",
                                    "additionalProperties": _STRING,
                                },
                            }
                        ),
                    ),
                },
                tags=["meta"],
                security=PUBLIC,
            )
        },
        "/api/auth/config": {
            "get": operation(
                "auth_config",
                "How to log in, and where the WebSocket API is",
                {"200": response("login configuration", ref("AuthConfig")), "403": BANNED},
                tags=["auth"],
                security=PUBLIC,
            )
        },
        "/api/auth/login_info": {
            "get": operation(
                "auth_login_info",
                "A fresh random and the proof of work a login needs",
                {
                    "200": response("login challenge", by_struct[LoginInfo]),
                    "400": error_response("username too long"),
                    "403": BANNED,
                    "429": error_response("over auth.login_info_per_minute from this address"),
                },
                tags=["auth"],
                parameters=[
                    query_parameter(
                        "username", _STRING, "the difficulty this account needs (≤ 64 characters)"
                    )
                ],
                security=PUBLIC,
            )
        },
        "/api/auth/login": {
            "post": operation(
                "auth_login",
                "Log in with password and proof of work",
                {
                    "200": response("an access token", by_struct[LoginResult]),
                    **BAD_BODY,
                    "403": error_response(
                        "failed login, spent or expired random; or a banned address"
                    ),
                    "429": error_response("too many attempts"),
                },
                tags=["auth"],
                body=json_body(by_struct[LoginBody]),
                security=PUBLIC,
            )
        },
        "/api/auth/logout": {
            "post": operation(
                "auth_logout",
                "Destroy the access token",
                {
                    "204": response("logged out"),
                    **BAD_BODY,
                    "403": error_response("no or bad token"),
                },
                tags=["auth"],
                body=json_body(by_struct[Body], required=has_required_fields(Body)),
                security=BEARER,
                description="The token is the Bearer header or the body's `token`.",
            )
        },
        "/rooms": {
            "post": _rooms_operation({a: by_struct[s] for a, s in ROOM_ACTIONS.items()}),
        },
    }
    if servers:
        for name, (struct, summary, ok, answer) in SERVER_OPS.items():
            paths[f"/api/{name}"] = {
                "post": operation(
                    name,
                    summary,
                    {
                        ok: response("done", answer),
                        **BAD_BODY,
                        "403": error_response(
                            "no or bad token, not permitted (ADMIN only, quota), banned"
                        ),
                        "404": error_response("no such server (or not this account's)"),
                        "409": error_response("server name not available, wrong state or busy"),
                    },
                    tags=["servers"],
                    body=json_body(by_struct[struct], required=has_required_fields(struct)),
                    security=BEARER,
                    description="The token is the Bearer header or the body's `token`.",
                )
            }
        for name, (struct, summary, answer) in KEPT_OPS.items():
            paths[f"/api/{name}"] = {
                "post": operation(
                    name,
                    summary,
                    {
                        "200": response("done", answer),
                        **BAD_BODY,
                        "400": error_response(
                            "malformed body, a name that is no server name, or a purge that "
                            "names neither servers nor older_than"
                        ),
                        "403": error_response("no or bad token, not an ADMIN account, banned"),
                    },
                    tags=["servers"],
                    body=json_body(by_struct[struct], required=has_required_fields(struct)),
                    security=BEARER,
                    description="ADMIN only. The token is the Bearer header or the body's `token`.",
                )
            }
    if servers:
        add_files_paths(paths, schemas)
        add_backup_paths(paths, schemas)
        add_power_bulk_path(paths, schemas)
        add_create_bulk_path(paths, schemas)
        add_cluster_paths(paths, schemas)
        add_node_paths(paths, schemas)
    if gameconsole:
        add_service_path(paths, schemas)
    _add_listener_responses(paths)
    return document(
        "leosuite HTTP API",
        "The JSON API of seed 001 (login, servers) and the rooms of seed 004. Errors are "
        '`{"error_type", "error_message"}`; /rooms errors are `{"status": "error", '
        '"error_type", "text"}`. Details: docs/api.md and docs/community.md.',
        paths,
        schemas,
        {
            "bearer": {"type": "http", "scheme": "bearer", "description": "an access token"},
            "nodeCredential": NODE_CREDENTIAL,
        },
    )

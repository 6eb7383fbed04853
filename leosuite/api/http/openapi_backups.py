"""The ``/api/server_backup_*`` part of the HTTP API's OpenAPI document (the calls are
:mod:`.backups`'s; their rules are :mod:`leosuite.api.backup_ops`'s and docs/backups.md)."""

from __future__ import annotations

from typing import Any

from ...store.servers import NAME_PATTERN
from ..openapi import (
    BEARER,
    Schema,
    constrain,
    error_response,
    has_required_fields,
    json_body,
    operation,
    ref,
    response,
    struct_components,
)
from . import backups

__all__ = ["BACKUP_OPS", "BACKUP_SCHEMAS", "add_backup_paths"]

_STRING = {"type": "string"}
_INT = {"type": "integer"}
_PHASES = ["commands", "archiving", "restoring", "done", "failed"]


def _object(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


BACKUP_SCHEMAS: dict[str, Schema] = {
    "Backup": _object(
        {
            "id": _INT,
            "server": _STRING,
            "name": {"type": "string", "description": "when it was taken, UTC"},
            "created_at": {"type": "number", "description": "unix time"},
            "size": {"type": "integer", "description": "bytes of the archive file"},
            "sha256": {"type": "string", "description": "of the archive file, lowercase hex"},
            "files": _INT,
            "source_bytes": {"type": "integer", "description": "bytes of the files archived"},
            "compression": {"enum": ["zstd", "gzip"]},
            "by": {"type": "string", "description": "the account's username, or schedule"},
            "note": _STRING,
        }
    ),
    "BackupList": _object(
        {
            "server": _STRING,
            "backups": {"type": "array", "items": ref("Backup"), "description": "newest first"},
            "quota": _object(
                {
                    "used": {"type": "integer", "description": "bytes of the owner's backups"},
                    "limit": {"type": "integer", "description": "backups.quota_bytes; 0: none"},
                }
            ),
        }
    ),
    "BackupDeleted": _object(
        {"server": _STRING, "id": _INT, "name": _STRING, "deleted": {"const": True}}
    ),
    "BackupRestored": _object(
        {"server": _STRING, "backup": ref("Backup"), "restored": {"const": True}}
    ),
    "BackupStatus": _object(
        {
            "server": _STRING,
            "running": {"type": "boolean"},
            "id": {"anyOf": [_INT, {"type": "null"}], "description": "the backup restored"},
            "phase": {"anyOf": [{"enum": _PHASES}, {"type": "null"}]},
            "done_bytes": _INT,
            "total_bytes": _INT,
        }
    ),
}

#: name -> (request Struct, summary, answer schema).
BACKUP_OPS: dict[str, tuple[type[Any], str, Schema]] = {
    "server_backup_list": (
        backups.BackupServerBody,
        "The server's backups, newest first, and its owner's quota (the files right)",
        ref("BackupList"),
    ),
    "server_backup_status": (
        backups.BackupServerBody,
        "The backup or restore running on the server, if any (the files right)",
        ref("BackupStatus"),
    ),
    "server_backup_create": (
        backups.BackupCreateBody,
        "Make a backup now; answers when it is complete (owner or ADMIN)",
        ref("Backup"),
    ),
    "server_backup_delete": (
        backups.BackupBody,
        "Delete a backup (owner or ADMIN)",
        ref("BackupDeleted"),
    ),
    "server_backup_restore": (
        backups.BackupBody,
        "Replace the stopped server's directory with a backup (owner or ADMIN)",
        ref("BackupRestored"),
    ),
}


_ERRORS = {
    "400": error_response(
        "malformed body or query, a note over 500 characters; a restore of an archive that "
        "changed since it was made or holds unsafe paths"
    ),
    "403": error_response(
        "no or bad token, banned, not permitted (a grantee: see docs/backups.md)"
    ),
    "404": error_response("no such server (or not this account's), or no such backup on it"),
    "413": error_response("body over http.max_body_bytes"),
    "409": error_response(
        "a backup or restore of the server is running; a restore of a server that is not "
        "stopped; over the owner's backups.quota_bytes (the message gives the bytes)"
    ),
}


def _download() -> Schema:
    return operation(
        "server_backup_download",
        "Download a backup's archive (the files right)",
        {
            "200": {
                "description": "the archive's bytes; ETag and X-Backup-SHA256 carry its SHA-256",
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            },
            **_ERRORS,
        },
        tags=["backups"],
        parameters=[
            {
                "name": "server",
                "in": "query",
                "required": True,
                "schema": {"type": "string", "pattern": NAME_PATTERN},
            },
            {
                "name": "id",
                "in": "query",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            },
        ],
        security=BEARER,
        description="The token is the Bearer header only.",
    )


def add_backup_paths(paths: dict[str, Schema], schemas: dict[str, Schema]) -> None:
    """Add the backup calls and the schemas they use."""
    structs = list(dict.fromkeys(op[0] for op in BACKUP_OPS.values()))
    refs, components = struct_components(structs)
    by_struct = dict(zip(structs, refs, strict=True))
    constrain(components, "server", {"pattern": NAME_PATTERN})
    schemas.update(components)
    schemas.update(BACKUP_SCHEMAS)
    for name, (struct, summary, answer) in BACKUP_OPS.items():
        paths[f"/api/{name}"] = {
            "post": operation(
                name,
                summary,
                {"200": response("done", answer), **_ERRORS},
                tags=["backups"],
                body=json_body(by_struct[struct], required=has_required_fields(struct)),
                security=BEARER,
                description="The token is the Bearer header or the body's `token`.",
            )
        }
    paths[backups.DOWNLOAD_PATH] = {"get": _download()}

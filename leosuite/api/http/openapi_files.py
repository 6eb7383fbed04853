"""The ``/api/server_files_*`` part of the HTTP API's OpenAPI document (the calls are
:mod:`.files`'s; their rules are in docs/api.md)."""

from __future__ import annotations

from typing import Any

from ...store.servers import NAME_PATTERN
from ...supervision.file_paths import MAX_PATH_BYTES
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
from . import files

__all__ = ["add_files_paths"]

_STRING = {"type": "string"}
_ENTRY = {
    "name": {"type": "string", "description": "U+FFFD stands for bytes that are not UTF-8"},
    "type": {"enum": ["file", "directory", "link", "other"]},
    "size": {"type": "integer"},
    "mtime": {"type": "number", "description": "unix time"},
    "mode": {"type": "string", "description": "permission bits in octal, e.g. 0644"},
    "target": {"type": ["string", "null"], "description": "a link's target (never followed)"},
    "raw_name": {"type": "string", "description": "base64 of a name that is not UTF-8"},
}
_REQUIRED = ["name", "type", "size", "mtime", "mode"]

ANSWERS: dict[str, Schema] = {
    "FileEntry": {"type": "object", "properties": _ENTRY, "required": _REQUIRED},
    "FileList": {
        "type": "object",
        "properties": {
            "path": _STRING,
            "entries": {"type": "array", "items": ref("FileEntry")},
            "truncated": {"type": "boolean", "description": "more than 10000 entries"},
            "max_read_bytes": {
                "type": "integer",
                "description": "the largest file a read answers (http.max_body_bytes)",
            },
            "max_upload_bytes": {
                "type": "integer",
                "description": "the largest upload (servers.files_max_upload_bytes)",
            },
        },
        "required": ["path", "entries", "truncated", "max_read_bytes", "max_upload_bytes"],
    },
    "FileChanged": {
        "type": "object",
        "properties": {"path": _STRING, **_ENTRY},
        "required": ["path", *_REQUIRED],
    },
    "FileContent": {
        "type": "object",
        "properties": {
            "path": _STRING,
            "size": {"type": "integer"},
            "mtime": {"type": "number"},
            "encoding": {"enum": ["utf-8", "base64"]},
            "data": _STRING,
        },
        "required": ["path", "size", "mtime", "encoding", "data"],
    },
}

#: name -> (request Struct, summary, 2xx status, answer schema or None).
FILE_OPS: dict[str, tuple[type[Any], str, str, Schema | None]] = {
    "server_files_list": (files.ListBody, "List a directory", "200", ref("FileList")),
    "server_files_read": (files.ReadBody, "Read a file (as JSON)", "200", ref("FileContent")),
    "server_files_write": (files.WriteBody, "Write a file whole", "200", ref("FileChanged")),
    "server_files_rename": (files.RenameBody, "Move or rename", "200", ref("FileChanged")),
    "server_files_delete": (files.DeleteBody, "Delete", "204", None),
    "server_files_mkdir": (files.MkdirBody, "Make a directory", "200", ref("FileChanged")),
    "server_files_download": (files.FileBody, "Download a file", "200", None),
}


_ERRORS = {
    "400": error_response(
        f"malformed body; a path that is absolute, has '..' or NUL, is over {MAX_PATH_BYTES} "
        "bytes, passes through or names a symbolic link, names no directory on the way, or a "
        "file with other hard links"
    ),
    "403": error_response(
        "no or bad token, banned, not permitted (changing an admin-only type's files)"
    ),
    "404": error_response("no such server (or not this account's), or no such file"),
    "409": error_response("exists already, is a directory, a directory that is not empty"),
    "413": error_response("body over http.max_body_bytes, a file to read over it"),
    "507": error_response("disk full"),
}

_OCTETS = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def _upload() -> Schema:
    upload = operation(
        "server_files_upload",
        "Upload a file (the body is the file)",
        {
            "200": response("written", ref("FileChanged")),
            **_ERRORS,
            "408": error_response("the body stopped arriving for http.read_timeout"),
            "413": error_response("over servers.files_max_upload_bytes; nothing is left behind"),
            "415": error_response("a Content-Type other than application/octet-stream"),
        },
        tags=["files"],
        parameters=[
            {"name": name, "in": "query", "required": True, "schema": _STRING}
            for name in ("server", "path")
        ],
        security=BEARER,
        description="The body is the file's bytes, `Content-Type: application/octet-stream`; "
        "the token is the Bearer header only. The file replaces the one at `path` once "
        "the whole body has arrived.",
    )
    return upload


def add_files_paths(paths: dict[str, Schema], schemas: dict[str, Schema]) -> None:
    """Add the file calls and the schemas they use."""
    structs = list(dict.fromkeys(op[0] for op in FILE_OPS.values()))
    refs, components = struct_components(structs)
    by_struct = dict(zip(structs, refs, strict=True))
    constrain(components, "server", {"pattern": NAME_PATTERN})
    schemas.update(components)
    schemas.update(ANSWERS)
    for name, (struct, summary, ok, answer) in FILE_OPS.items():
        done = response("done", answer)
        if name == "server_files_download":
            done = {"description": "the file's bytes", "content": _OCTETS}
        paths[f"/api/{name}"] = {
            "post": operation(
                name,
                summary,
                {ok: done, **_ERRORS},
                tags=["files"],
                body=json_body(by_struct[struct], required=has_required_fields(struct)),
                security=BEARER,
                description="The token is the Bearer header or the body's `token`.",
            )
        }
    paths[files.UPLOAD_PATH] = {"post": _upload()}

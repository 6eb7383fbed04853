"""Parts of the admin API's OpenAPI document: the status, the server settings (with the
origin server's names, integers as text and ignored names), account flags and the
log's query parameters. :mod:`.openapi` puts them together."""

from __future__ import annotations

from typing import Any

from ...community.server_settings import ALIASES, WIRE
from ...store.accounts import DRAWPILE_FLAGS
from ..openapi import Schema, query_parameter
from .lenient import MAX_IGNORED
from .log import MAX_FILTER_CHARS, MAX_PAGE
from .server import INTEGER_TEXT, INTEGERS

__all__ = [
    "FLAGS_DESCRIPTION",
    "LOG_PARAMETERS",
    "STATUS",
    "loosen_settings_patch",
    "settings_schemas",
]

_STRING = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
#: A text filter of the log (a longer one matches nothing).
_FILTER = {"type": "string", "description": f"longer than {MAX_FILTER_CHARS}: nothing"}

FLAGS_DESCRIPTION = (
    "comma-separated: ADMIN, HOST, MOD, and Drawpile's "
    + ", ".join(sorted(DRAWPILE_FLAGS))
    + " (kept, no effect)"
)

STATUS: dict[str, Schema] = {
    "started": {"type": "string", "description": "ISO 8601 UTC"},
    "sessions": _INT,
    "maxSessions": _INT,
    "users": _INT,
    "ext_host": {"type": "string", "description": "the host chat clients connect to"},
    "ext_port": {"type": "integer", "description": "the port chat clients connect to"},
}

_SETTING_TYPES: dict[str, Schema] = {
    "clientTimeout": _STRING,
    "sessionSizeLimit": _STRING,
    "sessionCountLimit": _INT,
    "sessionUserLimit": _INT,
    "idleTimeLimit": _STRING,
    "serverTitle": _STRING,
    "welcomeMessage": _STRING,
}


def _object(properties: dict[str, Schema]) -> Schema:
    return {"type": "object", "properties": properties, "required": list(properties)}


def settings_schemas() -> dict[str, Schema]:
    """``ServerSettings`` (what GET answers), ``ServerSettingsChanged`` (PUT) and
    ``ServerSettingsReset`` (DELETE)."""
    shown: dict[str, Schema] = {key: _SETTING_TYPES.get(key, _BOOL) for key in WIRE}
    shown.update({alias: shown[key] for alias, key in ALIASES.items()})
    shown["logpurgedays"] = {
        "type": "number",
        "description": "housekeeping.audit_keep_days (read-only here)",
    }
    shown["overridden"] = {
        "type": "array",
        "items": {"enum": list(WIRE)},
        "description": "keys whose stored value wins over the configuration file",
    }
    ignored = {
        "type": "array",
        "items": _STRING,
        "maxItems": MAX_IGNORED,
        "description": "names of the request that were not taken",
    }
    reset = {
        "type": "array",
        "items": _STRING,
        "description": "keys whose stored value was removed",
    }
    return {
        "ServerSettings": _object(shown),
        "ServerSettingsChanged": _object({**shown, "ignored": ignored}),
        "ServerSettingsReset": _object({**shown, "reset": reset}),
    }


def loosen_settings_patch(schemas: dict[str, Schema]) -> None:
    """The ``PUT /server/`` body as the handler takes it: the origin's names beside the
    seed's, integers as decimal text too, and any other name (ignored, listed)."""
    patch: Schema = schemas["ServerSettingsPatch"]
    properties: dict[str, Any] = patch["properties"]
    for key in INTEGERS:
        properties[key] = {
            "anyOf": [properties[key], {"type": "string", "pattern": f"^{INTEGER_TEXT}$"}]
        }
    for alias, key in ALIASES.items():
        properties[alias] = properties[key]
    patch["additionalProperties"] = True


LOG_PARAMETERS: list[Schema] = [
    query_parameter("page", _STRING, f"0, 1, 2, ... {MAX_PAGE} (0: the newest 100)"),
    query_parameter(
        "session",
        _FILTER,
        "one session's entries: its id or name (any case), or that session field",
    ),
    query_parameter(
        "user",
        _FILTER,
        'entries whose "id;ip;name" contains this text (ASCII letters in any case)',
    ),
    query_parameter(
        "contains",
        _FILTER,
        "entries whose message contains this text (ASCII letters in any case)",
    ),
    query_parameter("after", _STRING, "ISO 8601 or unix seconds; strictly later"),
]

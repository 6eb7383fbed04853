"""The OpenAPI entries of ``/api/server_schedule_*``: their answers and their rows of the
server operations table (rules: :mod:`leosuite.api.schedule_ops`)."""

from __future__ import annotations

from typing import Any

from ..openapi import Schema, ref
from . import schedules as http_schedules

__all__ = ["SCHEDULE_OPS", "SCHEDULE_SCHEMAS"]

_STRING = {"type": "string"}
_NUMBER_OR_NULL = {"anyOf": [{"type": "number"}, {"type": "null"}]}
_STRING_OR_NULL = {"anyOf": [{"type": "string"}, {"type": "null"}]}


def _object(properties: dict[str, Schema]) -> Schema:
    return {"type": "object", "properties": properties, "required": list(properties)}


SCHEDULE_SCHEMAS: dict[str, Schema] = {
    "Schedule": _object(
        {
            "name": _STRING,
            "cron": _STRING_OR_NULL,
            "interval": _NUMBER_OR_NULL,
            "zone": _STRING,
            "steps": {"type": "array", "items": _STRING},
            "enabled": {"type": "boolean"},
            "only_if_running": {"type": "boolean"},
            "only_if_players": {"type": "boolean"},
            "next_run": {**_NUMBER_OR_NULL, "description": "unix time; null when disabled"},
            "last_due": {**_NUMBER_OR_NULL, "description": "unix time of the last due run"},
            "last_result": _STRING,
            "running": {"type": "boolean", "description": "a run is going or waiting"},
        }
    ),
    "ScheduleList": _object(
        {
            "server": _STRING,
            "players_query": {
                "type": "boolean",
                "description": "whether the server's type says how to ask for players online",
            },
            "schedules": {"type": "array", "items": ref("Schedule")},
        }
    ),
    "ScheduleAnswer": _object({"server": _STRING, "schedule": ref("Schedule")}),
    "ScheduleRun": _object({"server": _STRING, "name": _STRING, "started": {"const": True}}),
}

#: ``/api/...`` -> (request Struct, summary, success status, answer schema).
SCHEDULE_OPS: dict[str, tuple[type[Any], str, str, Schema | None]] = {
    "server_schedule_list": (
        http_schedules.ScheduleListBody,
        "The server's schedules with their next run (whoever sees the server)",
        "200",
        ref("ScheduleList"),
    ),
    "server_schedule_create": (
        http_schedules.ScheduleDefinitionBody,
        "Create a schedule: cron or interval, steps (owner or ADMIN)",
        "200",
        ref("ScheduleAnswer"),
    ),
    "server_schedule_update": (
        http_schedules.ScheduleDefinitionBody,
        "Replace a schedule's definition (owner or ADMIN)",
        "200",
        ref("ScheduleAnswer"),
    ),
    "server_schedule_delete": (
        http_schedules.ScheduleBody,
        "Delete a schedule (owner or ADMIN)",
        "204",
        None,
    ),
    "server_schedule_run": (
        http_schedules.ScheduleBody,
        "Run a schedule now (owner or ADMIN)",
        "200",
        ref("ScheduleRun"),
    ),
}

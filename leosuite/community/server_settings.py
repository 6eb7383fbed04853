"""Server-wide settings of seed 002 (``GET``/``PUT /server/`` of the admin API).

:class:`ServerSettings` is the model; its wire form has the seed's keys, with
durations as text (``"60s"``, ``"6h"``, ``"0"``) and sizes as text (``"5MB"``).
The defaults come from the ``[community]`` section of the config file; a value
changed through the admin API is stored in the ``kv`` table (one row per setting,
``server_settings.<wireName>`` -> the JSON wire value) and wins over the config file
from then on, also after a restart. Settings never changed keep following the file.
A reset (:func:`reset_server_settings`: ``DELETE /server/`` of the admin API, or
``leosuite config reset`` on a stopped daemon's store) removes stored values, and the
file's value (or the built-in default) is in effect again.

What each setting does:

* ``sessionCountLimit``, ``sessionSizeLimit``, ``allowGuests``, ``allowGuestHosts``,
  ``welcomeMessage``, ``idleTimeLimit``, ``enablePersistence`` are the chat core's
  :class:`~leosuite.community.models.ChatLimits` and take effect at once
  (:meth:`ServerSettings.chat_limits`). Lowering a limit does not close what exists:
  sessions over a lowered count stay, a smaller size trims histories at once.
* ``sessionUserLimit`` (not in the seed; the origin server's name) is the
  ``maxUserCount`` new sessions start with (``community.default_max_users``); sessions
  that exist keep theirs.
* ``clientTimeout``: how long a chat connection may stay silent, not even answering
  the daemon's pings, before it is dropped (``0``: only ``ws.ping_interval`` applies).
  The chat pings idle connections every half of it (``api/ws/chat.py`` reads
  ``ChatService.server_settings.client_timeout`` live).
* ``archiveMode``, ``announceWhiteList``, ``privateUserList``, ``serverTitle``:
  accepted, stored and shown, with no effect yet (leosuite has no file-backed
  sessions to archive, no announcement servers and no login box of its own).

Validation (:func:`validate`) is all-or-nothing: the first bad value is an
:class:`~leosuite.errors.InvalidInput` naming the wire key, and nothing is applied.
Durations: a number with an optional unit ``s``, ``m``, ``h`` or ``d`` (``90``,
``60s``, ``5m``, ``1.5h``, ``2d``, ``0``), or a JSON integer of seconds. Sizes: a
number with an optional unit ``B``, ``kB``, ``MB``, ``GB`` (binary multiples, any
letter case, ``KiB`` spellings too), or a JSON integer of bytes.
"""

from __future__ import annotations

import logging
import math
import re
import sqlite3
from collections.abc import Collection
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ..errors import InvalidInput
from ..settings import CommunitySettings
from ..store import kv
from ..store.db import Database
from .models import ChatLimits

__all__ = [
    "ALIASES",
    "KV_PREFIX",
    "ServerSettings",
    "ServerSettingsPatch",
    "format_duration",
    "format_size",
    "delete_stored",
    "load_server_settings",
    "overridden_keys",
    "parse_duration",
    "parse_size",
    "read_stored",
    "reset_server_settings",
    "stored_changes",
    "store_server_settings",
    "validate",
    "wire_key",
]

log = logging.getLogger("leosuite.community.server_settings")

KV_PREFIX = "server_settings."

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

SESSION_COUNT_MAX = 100_000
SESSION_USER_LIMIT_MAX = 100_000
SESSION_SIZE_MIN = 1 * KiB
SESSION_SIZE_MAX = 1 * GiB
CLIENT_TIMEOUT_MIN = 10.0  # unless 0 (never)
CLIENT_TIMEOUT_MAX = 86_400.0
IDLE_TIME_MIN = 60.0  # unless 0 (never)
IDLE_TIME_MAX = 365 * 86_400.0
TITLE_MAX = 100
WELCOME_MAX = 1000

#: Wire key -> attribute of :class:`ServerSettings`: the seed's, in its order, then the
#: origin server's ``sessionUserLimit``.
WIRE: dict[str, str] = {
    "clientTimeout": "client_timeout",
    "sessionSizeLimit": "session_size_limit",
    "sessionCountLimit": "session_count_limit",
    "enablePersistence": "enable_persistence",
    "archiveMode": "archive_mode",
    "idleTimeLimit": "idle_time_limit",
    "serverTitle": "server_title",
    "welcomeMessage": "welcome_message",
    "announceWhiteList": "announce_white_list",
    "privateUserList": "private_user_list",
    "allowGuestHosts": "allow_guest_hosts",
    "allowGuests": "allow_guests",
    "sessionUserLimit": "default_max_users",
}

#: The origin server's names of the same settings (its web admin reads and writes them).
ALIASES: dict[str, str] = {
    "persistence": "enablePersistence",
    "archive": "archiveMode",
    "announceWhitelist": "announceWhiteList",
}

#: Settings that are ChatLimits fields of the same name.
_LIMITS = (
    "session_size_limit",
    "session_count_limit",
    "enable_persistence",
    "idle_time_limit",
    "welcome_message",
    "allow_guest_hosts",
    "allow_guests",
    "default_max_users",
)


class ServerSettings(msgspec.Struct, frozen=True, kw_only=True):
    client_timeout: float = 60.0
    session_size_limit: int = 5 * MiB
    session_count_limit: int = 100
    enable_persistence: bool = True
    archive_mode: bool = False
    idle_time_limit: float = 6 * 3600.0
    server_title: str = ""
    welcome_message: str = ""
    announce_white_list: bool = False
    private_user_list: bool = False
    allow_guest_hosts: bool = True
    allow_guests: bool = True
    default_max_users: int = 100

    @classmethod
    def from_community(cls, community: CommunitySettings) -> ServerSettings:
        """The defaults: the config file's ``[community]`` values."""
        return cls(**{name: getattr(community, name) for name in _LIMITS})

    def chat_limits(self, base: ChatLimits) -> ChatLimits:
        """``base`` with this model's chat-core settings."""
        return msgspec.structs.replace(base, **{name: getattr(self, name) for name in _LIMITS})

    def to_wire(self) -> dict[str, Any]:
        """Every setting under its wire key (as stored; the admin API adds the aliases)."""
        wire: dict[str, Any] = {key: getattr(self, attr) for key, attr in WIRE.items()}
        wire["clientTimeout"] = format_duration(self.client_timeout)
        wire["idleTimeLimit"] = format_duration(self.idle_time_limit)
        wire["sessionSizeLimit"] = format_size(self.session_size_limit)
        return wire


class ServerSettingsPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A ``PUT /server/`` body: any subset of the wire keys (``null`` is refused)."""

    clientTimeout: str | int | UnsetType = UNSET
    sessionSizeLimit: str | int | UnsetType = UNSET
    sessionCountLimit: Annotated[int, Meta(ge=0, le=SESSION_COUNT_MAX)] | UnsetType = UNSET
    enablePersistence: bool | UnsetType = UNSET
    archiveMode: bool | UnsetType = UNSET
    idleTimeLimit: str | int | UnsetType = UNSET
    serverTitle: str | UnsetType = UNSET
    welcomeMessage: str | UnsetType = UNSET
    announceWhiteList: bool | UnsetType = UNSET
    privateUserList: bool | UnsetType = UNSET
    allowGuestHosts: bool | UnsetType = UNSET
    allowGuests: bool | UnsetType = UNSET
    sessionUserLimit: Annotated[int, Meta(ge=1, le=SESSION_USER_LIMIT_MAX)] | UnsetType = UNSET


# -- durations and sizes --------------------------------------------------------------

_DURATION = re.compile(r"\s*(\d{1,12}(?:\.\d{1,6})?)\s*([smhd]?)\s*", re.IGNORECASE)
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}
_SIZE = re.compile(r"\s*(\d{1,15}(?:\.\d{1,6})?)\s*(b|[kmg](?:i?b)?)?\s*", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": KiB, "m": MiB, "g": GiB}


def parse_duration(value: str | int, field: str) -> float:
    """Seconds from ``"60s"``, ``"5m"``, ``"1h"``, ``"2d"``, ``"0"``, ``90``."""
    if isinstance(value, int):
        if value < 0:
            raise InvalidInput(f"{field}: a duration is not negative", field=field)
        return float(value)
    match = _DURATION.fullmatch(value) if len(value) <= 32 else None
    if match is None:
        raise InvalidInput(
            f"{field}: {value[:40]!r} is not a duration (like 60s, 5m, 1h, 2d or 0)", field=field
        )
    number, unit = match.groups()
    return float(number) * _DURATION_UNITS[unit.lower()]


def parse_size(value: str | int, field: str) -> int:
    """Bytes from ``"5MB"``, ``"512kB"``, ``"1GB"``, ``"1024"``, ``1024``."""
    if isinstance(value, int):
        if value < 0:
            raise InvalidInput(f"{field}: a size is not negative", field=field)
        return value
    match = _SIZE.fullmatch(value) if len(value) <= 32 else None
    if match is None:
        raise InvalidInput(
            f"{field}: {value[:40]!r} is not a size (like 5MB, 512kB, 1GB or plain bytes)",
            field=field,
        )
    number, unit = match.groups()
    return math.floor(float(number) * _SIZE_UNITS[(unit or "")[:1].lower()])


def format_duration(seconds: float) -> str:
    """``"0"``; seconds under 2 minutes (``"60s"``), else the largest unit that
    divides exactly (``"5m"``, ``"6h"``, ``"2d"``)."""
    if seconds <= 0:
        return "0"
    if seconds != int(seconds):
        return f"{seconds:g}s"
    whole = int(seconds)
    if whole < 120:
        return f"{whole}s"
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def format_size(size: int) -> str:
    for unit, multiple in (("GB", GiB), ("MB", MiB), ("kB", KiB)):
        if size and size % multiple == 0:
            return f"{size // multiple}{unit}"
    return f"{size}B"


# -- validation -----------------------------------------------------------------------


def _in_range(value: float, low: float, high: float, field: str, *, zero_ok: bool) -> float:
    if (zero_ok and value == 0) or low <= value <= high:
        return value
    what = f"0 or {format_duration(low)}-{format_duration(high)}"
    raise InvalidInput(f"{field}: must be {what} (got {format_duration(value)})", field=field)


def _text(value: str, field: str, limit: int, *, newlines: bool) -> str:
    if len(value) > limit:
        raise InvalidInput(f"{field}: at most {limit} characters", field=field)
    allowed = "\n\t" if newlines else ""
    if any(not c.isprintable() and c not in allowed for c in value):
        raise InvalidInput(f"{field}: no control characters", field=field)
    return value


def validate(patch: ServerSettingsPatch) -> dict[str, Any]:
    """The patch's changes as ``{attribute: typed value}``; InvalidInput names the
    first bad key. Nothing is applied here."""
    changes: dict[str, Any] = {}
    for key, attr in WIRE.items():
        value = getattr(patch, key)
        if value is UNSET:
            continue
        if key == "clientTimeout":
            seconds = parse_duration(value, key)
            value = _in_range(seconds, CLIENT_TIMEOUT_MIN, CLIENT_TIMEOUT_MAX, key, zero_ok=True)
        elif key == "idleTimeLimit":
            seconds = parse_duration(value, key)
            value = _in_range(seconds, IDLE_TIME_MIN, IDLE_TIME_MAX, key, zero_ok=True)
        elif key == "sessionSizeLimit":
            value = parse_size(value, key)
            if not SESSION_SIZE_MIN <= value <= SESSION_SIZE_MAX:
                raise InvalidInput(
                    f"{key}: must be {format_size(SESSION_SIZE_MIN)}-"
                    f"{format_size(SESSION_SIZE_MAX)} (got {format_size(value)})",
                    field=key,
                )
        elif key == "serverTitle":
            value = _text(value, key, TITLE_MAX, newlines=False)
        elif key == "welcomeMessage":
            value = _text(value, key, WELCOME_MAX, newlines=True)
        changes[attr] = value
    return changes


def wire_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """``{attribute: value}`` -> ``{wireKey: wire value}`` (as ``GET`` shows them)."""
    shown = ServerSettings(**changes).to_wire()
    return {key: shown[key] for key, attr in WIRE.items() if attr in changes}


# -- storage --------------------------------------------------------------------------


async def store_server_settings(db: Database, changes: dict[str, Any]) -> None:
    """Write the changed settings (one transaction)."""
    rows = {
        KV_PREFIX + k: msgspec.json.encode(v).decode() for k, v in wire_changes(changes).items()
    }

    def write(conn: sqlite3.Connection) -> None:
        for key, value in rows.items():
            kv.set(conn, key, value)

    await db.call(write)


def stored_changes(rows: dict[str, str]) -> dict[str, Any]:
    """The ``kv`` rows of the settings -> ``{attribute: typed value}``; a stored value
    that no longer validates (unknown key, out of range) is logged and skipped."""
    changes: dict[str, Any] = {}
    for key, text in rows.items():
        name = key.removeprefix(KV_PREFIX)
        try:
            value = msgspec.json.decode(text)
            patch = msgspec.convert({name: value}, ServerSettingsPatch)
            changes.update(validate(patch))
        except (msgspec.DecodeError, InvalidInput) as exc:  # ValidationError is a DecodeError
            log.warning("stored server setting %s=%s ignored: %s", name[:100], text[:80], exc)
    return changes


def read_stored(conn: sqlite3.Connection) -> dict[str, Any]:
    """The stored settings in effect, ``{attribute: typed value}``."""
    return stored_changes(kv.items(conn, KV_PREFIX))


def overridden_keys(changes: dict[str, Any]) -> list[str]:
    """The wire keys of ``changes``, in the seed's order."""
    return [key for key, attr in WIRE.items() if attr in changes]


async def load_server_settings(db: Database, defaults: ServerSettings) -> ServerSettings:
    """``defaults`` with the stored values; a stored value that no longer validates
    is skipped, its row left as it is (a reset removes it)."""
    return msgspec.structs.replace(defaults, **await db.call(read_stored))


def delete_stored(conn: sqlite3.Connection, wire_keys: Collection[str] | None) -> list[str]:
    """Remove the stored values of ``wire_keys`` (None: every stored row under the
    prefix, the ones that no longer validate too); the keys removed, sorted."""
    stored = [key.removeprefix(KV_PREFIX) for key in kv.items(conn, KV_PREFIX)]
    wanted = stored if wire_keys is None else [k for k in stored if k in wire_keys]
    for key in wanted:
        kv.delete(conn, KV_PREFIX + key)
    return sorted(wanted)


async def reset_server_settings(
    db: Database, defaults: ServerSettings, wire_keys: Collection[str] | None
) -> tuple[list[str], ServerSettings, list[str]]:
    """Remove stored values (see :func:`delete_stored`) in one transaction: the keys
    removed, ``defaults`` with the stored values left, and the keys still stored."""

    def run(conn: sqlite3.Connection) -> tuple[list[str], dict[str, Any]]:
        return delete_stored(conn, wire_keys), read_stored(conn)

    removed, left = await db.call(run)
    return removed, msgspec.structs.replace(defaults, **left), overridden_keys(left)


def wire_key(name: str) -> str | None:
    """The wire key a name (the seed's or the origin's alias) stands for; None if none."""
    key = ALIASES.get(name, name)
    return key if key in WIRE else None

"""Admin REST API (seed 002): server-wide settings.

``GET /server/`` answers the seed's twelve keys (``clientTimeout``,
``sessionSizeLimit``, ``sessionCountLimit``, ``enablePersistence``, ``archiveMode``,
``idleTimeLimit``, ``serverTitle``, ``welcomeMessage``, ``announceWhiteList``,
``privateUserList``, ``allowGuestHosts``, ``allowGuests``); durations and sizes as
text (``"60s"``, ``"6h"``, ``"0"``, ``"5MB"``). Beside them, under the origin server's
names (its web admin reads and writes those): ``persistence``, ``archive`` and
``announceWhitelist`` (the same settings as ``enablePersistence``, ``archiveMode``
and ``announceWhiteList``), ``sessionUserLimit`` (the ``maxUserCount`` new sessions
start with) and ``logpurgedays`` (``housekeeping.audit_keep_days`` of the
configuration file: shown, never changed here).

``overridden`` lists, in that order, the keys whose value was changed here and is
stored: it wins over the configuration file until it is reset.

``PUT /server/`` takes any subset of those names and answers the same object after
the change, with ``ignored``: the names it did not take, in the order sent (at most
100, each cut to 100 characters): names leosuite has no setting for, and
``logpurgedays``. They do not stop the known ones. Integer settings take a decimal
string too (``"25"``). Every value of a known name is typed and validated first
(rules and what each setting does: :mod:`leosuite.community.server_settings`): a
wrong type or a bad value is 400 naming the key as sent, as is a setting sent under
both its names with different values; and then nothing changes, not even the valid
keys of the same body. A change is stored (it survives a restart and wins over the
config file), takes effect at once and is written to the audit log (topic
``Status``) with the admin's account and address. PUTs are applied one at a time.

``DELETE /server/`` removes every stored value, ``DELETE /server/:key`` the one of
``key`` (a seed name or an alias): the configuration file's value (or the built-in
default) is in effect again at once. The answer is the ``GET`` object with ``reset``:
the keys whose stored value was removed (empty when there was none). An unknown key is
404, ``logpurgedays`` 400. A reset is audited like a change.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import msgspec
import trio
from quart import Response

from ...auth.service import Principal
from ...community.server_settings import (
    ALIASES,
    WIRE,
    ServerSettings,
    ServerSettingsPatch,
    overridden_keys,
    read_stored,
    reset_server_settings,
    store_server_settings,
    validate,
    wire_changes,
    wire_key,
)
from ...errors import InvalidInput, NotFound
from ..requests import peer_ip, read_body
from .lenient import raw_object, shown_ignored, shown_name

if TYPE_CHECKING:
    from ..context import ApiContext
    from .app import AdminRoutes

__all__ = [
    "INTEGERS",
    "INTEGER_TEXT",
    "SettingsChange",
    "parse_settings",
    "register",
    "settings_view",
]

#: Settings that are whole numbers, which the origin's web admin sends as text.
INTEGERS = frozenset({"sessionCountLimit", "sessionUserLimit"})
#: How such a setting may be written as text (``"25"``, ``" 25 "``).
INTEGER_TEXT = r"[ \t]*[0-9]{1,9}[ \t]*"
_INTEGER_TEXT = re.compile(INTEGER_TEXT, re.ASCII)


class SettingsChange(msgspec.Struct, frozen=True):
    """A checked ``PUT /server/`` body: the typed patch, the names it ignores, and the
    name each wire key was sent under."""

    patch: ServerSettingsPatch
    ignored: list[str]
    sent_as: dict[str, str]


def settings_view(ctx: ApiContext, overridden: list[str]) -> dict[str, Any]:
    """What ``GET /server/`` answers: the wire keys, the origin's aliases, the
    read-only ``logpurgedays`` and ``overridden`` (the keys whose stored value wins)."""
    wire = ctx.chat.server_settings.to_wire()
    wire.update({alias: wire[key] for alias, key in ALIASES.items()})
    days = float(ctx.settings.housekeeping.audit_keep_days)
    # No age limit is 0 on the origin's page too (an infinite number has no JSON form).
    days = days if math.isfinite(days) else 0.0
    wire["logpurgedays"] = int(days) if days.is_integer() else days
    wire["overridden"] = overridden
    return wire


def reset_target(name: str) -> str:
    """The wire key ``DELETE /server/:key`` resets; NotFound for a name leosuite has no
    setting for, InvalidInput for the read-only ``logpurgedays``."""
    if name == "logpurgedays":
        raise InvalidInput(
            "logpurgedays: read-only here (housekeeping.audit_keep_days of the configuration file)",
            field=name,
        )
    key = wire_key(name)
    if key is None:
        raise NotFound(f"no server setting is named {shown_name(name)!r}")
    return key


def _renamed(exc: InvalidInput, sent_as: dict[str, str]) -> InvalidInput:
    """``exc`` naming the key as the client sent it (an alias rather than the seed's)."""
    key = exc.field or ""
    name = sent_as.get(key, key)
    if name == key:
        return exc
    message = name + exc.message[len(key) :] if exc.message.startswith(key) else exc.message
    return InvalidInput(message, field=name)


def parse_settings(data: bytes) -> SettingsChange:
    """A ``PUT /server/`` body -> its typed patch; InvalidInput for a body that is not
    a JSON object, a bad value of a known name, or two names of one setting that
    disagree."""
    raw = raw_object(data)
    known: dict[str, Any] = {}
    sent_as: dict[str, str] = {}
    ignored: list[str] = []
    for name, blob in raw.items():
        key = ALIASES.get(name, name)
        if key not in WIRE:
            ignored.append(name)  # its value is never decoded
            continue
        try:
            value = msgspec.json.decode(blob)
        except (msgspec.DecodeError, RecursionError) as exc:  # ValidationError is one
            raise InvalidInput(f"{name}: {exc}", field=name) from None
        if key in INTEGERS and isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
            value = int(value)
        if key in known and (type(known[key]) is not type(value) or known[key] != value):
            raise InvalidInput(
                f"{name}: disagrees with {sent_as[key]} in the same request", field=name
            )
        known[key] = value
        sent_as[key] = name
    try:
        patch = msgspec.convert(known, ServerSettingsPatch)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$")
        key = where.rstrip("`").lstrip(".")
        raise _renamed(InvalidInput(f"{key}: {message}", field=key), sent_as) from None
    shown = shown_ignored(ignored)
    return SettingsChange(patch, shown, sent_as)


def register(routes: AdminRoutes) -> None:
    from .app import admin_json

    ctx = routes.ctx
    lock = trio.Lock()

    async def overridden() -> list[str]:
        return overridden_keys(await ctx.db.call(read_stored))

    async def server_get(principal: Principal) -> Response:
        return admin_json(settings_view(ctx, await overridden()))

    async def server_put(principal: Principal) -> Response:
        body = parse_settings(await read_body(ctx.settings.http.max_body_bytes))
        try:
            changes = validate(body.patch)
        except InvalidInput as exc:
            raise _renamed(exc, body.sent_as) from None
        async with lock:
            current = ctx.chat.server_settings
            changes = {k: v for k, v in changes.items() if getattr(current, k) != v}
            if changes:
                await store_server_settings(ctx.db, changes)
                ctx.chat.set_server_settings(msgspec.structs.replace(current, **changes))
                text = ", ".join(
                    f"{key}={msgspec.json.encode(value).decode()}"
                    for key, value in wire_changes(changes).items()
                )
                await ctx.audit.record_done(
                    "Status",
                    f"server settings changed: {text}",
                    actor=principal.actor(peer_ip()),
                )
            stored = await overridden()
        return admin_json({**settings_view(ctx, stored), "ignored": body.ignored})

    async def reset(principal: Principal, keys: list[str] | None) -> Response:
        async with lock:
            defaults = ServerSettings.from_community(ctx.settings.community)
            removed, settings, stored = await reset_server_settings(ctx.db, defaults, keys)
            if removed:
                ctx.chat.set_server_settings(settings)
                now = settings.to_wire()
                text = ", ".join(
                    f"{key}={msgspec.json.encode(now[key]).decode()}" if key in now else key
                    for key in removed
                )
                await ctx.audit.record_done(
                    "Status",
                    f"server settings reset: {text[:2000]}",
                    actor=principal.actor(peer_ip()),
                )
        return admin_json({**settings_view(ctx, stored), "reset": removed})

    async def server_reset(principal: Principal) -> Response:
        return await reset(principal, None)

    async def server_reset_key(principal: Principal, key: str) -> Response:
        return await reset(principal, [reset_target(key)])

    routes.add("/server", server_get, ["GET"])
    routes.add("/server", server_put, ["PUT"])
    routes.add("/server", server_reset, ["DELETE"])
    routes.add("/server/<key>", server_reset_key, ["DELETE"])

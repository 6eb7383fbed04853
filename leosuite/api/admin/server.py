"""Admin REST API (seed 002): server-wide settings.

``GET /server/`` answers the seed's twelve keys (``clientTimeout``,
``sessionSizeLimit``, ``sessionCountLimit``, ``enablePersistence``, ``archiveMode``,
``idleTimeLimit``, ``serverTitle``, ``welcomeMessage``, ``announceWhiteList``,
``privateUserList``, ``allowGuestHosts``, ``allowGuests``); durations and sizes as
text (``"60s"``, ``"6h"``, ``"0"``, ``"5MB"``).

``PUT /server/`` takes any subset of them and answers the whole object after the
change. Every value is typed and validated first (rules and what each setting does:
:mod:`leosuite.community.server_settings`): an unknown key, a wrong type or a bad
value is 400 naming the key, and then nothing changes, not even the valid keys of the
same body. A change is stored (it survives a restart and wins over the config file),
takes effect at once and is written to the audit log (topic ``Status``) with the
admin's account and address. PUTs are applied one at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import trio
from quart import Response

from ...auth.service import Principal
from ...community.server_settings import (
    ServerSettingsPatch,
    store_server_settings,
    validate,
    wire_changes,
)
from ..requests import decode_body, peer_ip

if TYPE_CHECKING:
    from .app import AdminRoutes

__all__ = ["register"]


def register(routes: AdminRoutes) -> None:
    from .app import admin_json

    ctx = routes.ctx
    lock = trio.Lock()

    async def server_get(principal: Principal) -> Response:
        return admin_json(ctx.chat.server_settings.to_wire())

    async def server_put(principal: Principal) -> Response:
        patch = await decode_body(ServerSettingsPatch, ctx.settings.http.max_body_bytes)
        changes = validate(patch)
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
        return admin_json(ctx.chat.server_settings.to_wire())

    routes.add("/server", server_get, ["GET"])
    routes.add("/server", server_put, ["PUT"])

"""Admin REST API: what destroyed servers left behind (their kept directories and logs).

``GET /kept/``
    ``[{"server", "kind", "path", "size", "since"}]``, oldest first: ``kind`` is
    ``files`` (``servers/.destroyed/<name>-<id>``) or ``logs``
    (``logs/<name>.destroyed-<unix time>``), ``path`` is relative to the data directory,
    ``size`` the bytes it takes on disk, ``since`` when it was set aside (ISO 8601 UTC).
``POST /kept/purge/`` ``{"servers"?: [name, ...], "olderThan"?: days}``
    Removes the entries of those servers that were set aside at least ``olderThan``
    days ago; at least one of the two must be given (``"olderThan": 0`` alone: every
    entry). Answers ``{"purged": [entry], "failed": [{"path", "message"}]}``; each
    removal and each failure is audited (topic ``server``, the server as session).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from quart import Response

from ...auth.service import Principal
from ..kept_ops import Days, list_kept, purge_kept
from ..requests import decode_body, peer_ip

if TYPE_CHECKING:
    from .app import AdminRoutes

__all__ = ["KeptPurgeRequest", "register"]


class KeptPurgeRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    servers: list[str] | None = None
    older_than: Days | None = None


def register(routes: AdminRoutes) -> None:
    from .app import admin_json

    ctx = routes.ctx

    async def kept_list(principal: Principal) -> Response:
        return admin_json(await list_kept(ctx))

    async def kept_purge(principal: Principal) -> Response:
        body = await decode_body(KeptPurgeRequest, ctx.settings.http.max_body_bytes)
        answer = await purge_kept(
            ctx,
            principal.actor(peer_ip()),
            servers=body.servers,
            older_than=body.older_than,
            fields=("servers", "olderThan"),
        )
        return admin_json(answer)

    routes.add("/kept", kept_list, ["GET"])
    routes.add("/kept/purge", kept_purge, ["POST"])

"""Admin REST API: the nodes sharing the store.

``GET /nodes/``
    ``[{"name", "public_url", "ws_url", "state", "this", "started_at", "heartbeat_at",
    "heartbeat_age", "version", "servers"}]`` by name (:mod:`leosuite.api.node_ops`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quart import Response

from ...auth.service import Principal
from ..node_ops import node_list, require_node_lister

if TYPE_CHECKING:
    from .app import AdminRoutes

__all__ = ["register"]


def register(routes: AdminRoutes) -> None:
    from .app import admin_json

    ctx = routes.ctx

    async def nodes(principal: Principal) -> Response:
        require_node_lister(principal)  # the routes are ADMIN only already
        return admin_json(node_list(ctx))

    routes.add("/nodes", nodes, ["GET"])

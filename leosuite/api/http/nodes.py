"""``/api/node_list``: the nodes sharing the store, for ADMIN accounts (403
``permission_denied`` for any other); the fields are :mod:`leosuite.api.node_ops`'s.
"""

from __future__ import annotations

from quart import Blueprint, Response

from ..context import ApiContext
from ..node_ops import node_list, require_node_lister
from ..requests import Body, authenticate, decode_body
from .auth import json_response

__all__ = ["nodes_blueprint"]


def nodes_blueprint(ctx: ApiContext) -> Blueprint:
    bp = Blueprint("nodes", __name__, url_prefix="/api")
    max_body = ctx.settings.http.max_body_bytes

    @bp.post("/node_list")
    async def node_list_view() -> Response:
        body = await decode_body(Body, max_body)
        require_node_lister(await authenticate(ctx.auth, body.token))
        return json_response({"nodes": node_list(ctx)})

    return bp

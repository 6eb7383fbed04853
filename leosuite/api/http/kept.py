"""``/api/server_kept_list`` and ``/api/server_kept_purge``: what destroyed servers left
behind, for ADMIN accounts (403 ``permission_denied`` for any other); the rules and the
entry's fields are :mod:`leosuite.api.kept_ops`'s.
"""

from __future__ import annotations

from quart import Blueprint, Response

from ...audit import Actor
from ...auth.permissions import may_manage_kept_files
from ...errors import PermissionDenied
from ..context import ApiContext
from ..kept_ops import Days, list_kept, purge_kept
from ..requests import Body, authenticate, decode_body, peer_ip
from .auth import json_response

__all__ = ["KeptPurgeBody", "kept_blueprint"]


class KeptPurgeBody(Body, kw_only=True, forbid_unknown_fields=True):
    #: The servers whose kept entries go (any server when missing).
    servers: list[str] | None = None
    #: Only entries set aside at least this many days ago (any age when missing).
    older_than: Days | None = None


def kept_blueprint(ctx: ApiContext) -> Blueprint:
    bp = Blueprint("kept", __name__, url_prefix="/api")
    max_body = ctx.settings.http.max_body_bytes

    async def admin(token: str | None) -> Actor:
        principal = await authenticate(ctx.auth, token)
        if not may_manage_kept_files(principal):
            raise PermissionDenied(
                "listing and purging what destroyed servers left behind needs the ADMIN flag"
            )
        return principal.actor(peer_ip())

    @bp.post("/server_kept_list")
    async def server_kept_list() -> Response:
        body = await decode_body(Body, max_body)
        await admin(body.token)
        return json_response({"kept": await list_kept(ctx)})

    @bp.post("/server_kept_purge")
    async def server_kept_purge() -> Response:
        body = await decode_body(KeptPurgeBody, max_body)
        actor = await admin(body.token)
        answer = await purge_kept(ctx, actor, servers=body.servers, older_than=body.older_than)
        return json_response(answer)

    return bp

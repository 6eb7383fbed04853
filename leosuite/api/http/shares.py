"""``/api/server_share_list`` and ``/api/server_share_set``: the accounts a server is
shared with and their rights; the rules are :mod:`leosuite.api.share_ops`'s."""

from __future__ import annotations

from quart import Blueprint, Response

from ..context import ApiContext
from ..requests import Body, authenticate, decode_body, peer_ip
from ..server_ops import ServerOps
from ..share_ops import RightsList, ShareOps
from .auth import json_response

__all__ = ["ShareListBody", "ShareSetBody", "shares_blueprint"]


class ShareListBody(Body, kw_only=True, forbid_unknown_fields=True):
    server: str


class ShareSetBody(ShareListBody, kw_only=True, forbid_unknown_fields=True):
    #: The username of the account the server is shared with.
    account: str
    #: Exactly the rights it gets; an empty list revokes them all.
    rights: RightsList


def shares_blueprint(ctx: ApiContext) -> Blueprint:
    bp = Blueprint("shares", __name__, url_prefix="/api")
    max_body = ctx.settings.http.max_body_bytes

    async def caller(token: str | None) -> ShareOps:
        return ShareOps(ServerOps(ctx, await authenticate(ctx.auth, token), peer_ip()))

    @bp.post("/server_share_list")
    async def share_list() -> Response:
        body = await decode_body(ShareListBody, max_body)
        return json_response(await (await caller(body.token)).share_list(body.server))

    @bp.post("/server_share_set")
    async def share_set() -> Response:
        body = await decode_body(ShareSetBody, max_body)
        shares = await caller(body.token)
        return json_response(await shares.share_set(body.server, body.account, body.rights))

    return bp

"""``/api/auth/*``: the seed 001 login flow (config, login_info, login, logout)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec
from quart import Blueprint, Response, request

from ...errors import InvalidInput
from ...public_address import PublicUrls, public_urls
from ..context import ApiContext
from ..hosts import host_names_url
from ..requests import Body, authenticate, decode_body, peer_ip

__all__ = ["auth_blueprint", "json_response", "websocket_url"]


class LoginBody(Body, kw_only=True, forbid_unknown_fields=True):
    username: str
    password: str
    random: str
    proof_of_works: list[str]


def json_response(value: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status=status, content_type="application/json")


def _public(ctx: ApiContext) -> PublicUrls:
    """The public URLs if this request came under ``http.public_url``, or if only a
    ``ws.public_url`` is set; else none: a client that reached the listener directly
    keeps reaching it directly."""
    public = public_urls(ctx.settings.http.public_url, ctx.settings.ws.public_url)
    if public.http and not host_names_url(request.headers.get("Host"), public.http):
        return PublicUrls("", "")
    return public


def websocket_url(ctx: ApiContext) -> str:
    """The WebSocket API as this client reaches it: its public URL (``ws.public_url``,
    or ``/ws/`` under ``http.public_url``), else the host it used and the WS port."""
    public = _public(ctx).ws
    if public:
        return public
    ws = urlsplit(ctx.endpoints.get("ws", ""))
    host = urlsplit(request.host_url).hostname or ws.hostname or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"ws://{host}:{ws.port or 8976}/"


def auth_blueprint(ctx: ApiContext) -> Blueprint:
    bp = Blueprint("auth", __name__, url_prefix="/api/auth")
    max_body = ctx.settings.http.max_body_bytes

    @bp.get("/config")
    async def config() -> Response:
        base = _public(ctx).http or ctx.endpoints.get("http") or request.host_url.rstrip("/")
        return json_response(
            {"type": "password", "endpoints": [base], "websocket": websocket_url(ctx)}
        )

    @bp.get("/login_info")
    async def login_info() -> Response:
        username = request.args.get("username") or None
        if username is not None and len(username) > 64:
            raise InvalidInput("username is too long", field="username")
        return json_response(ctx.auth.login_info(peer_ip(), username))

    @bp.post("/login")
    async def login() -> Response:
        body = await decode_body(LoginBody, max_body)
        if len(body.proof_of_works) > 64:
            raise InvalidInput("too many proofs of work", field="proof_of_works")
        if len(body.username) > 64 or len(body.password) > 1024:
            raise InvalidInput("username or password too long", field="username")
        result = await ctx.auth.login(
            body.username, body.password, body.random, body.proof_of_works, peer_ip()
        )
        return json_response(result)

    @bp.post("/logout")
    async def logout() -> Response:
        body = await decode_body(Body, max_body)
        principal = await authenticate(ctx.auth, body.token)
        await ctx.auth.logout(principal, peer_ip())
        return Response(b"", status=204)

    return bp

"""``/service``: the one path of GameConsole's protocol, routed by ``?service=``.

======================  =====  ====================================================
``?service=config``     GET    ``{"authmethod": "password", "endpoints": ["/service"]}``
                        POST   (the origin answered it on any method)
``?service=password``   POST   a random, or a login (:mod:`._login`)
(none)                  POST   the ``{target, action, authkey}`` envelope (:mod:`._actions`)
======================  =====  ====================================================

Any other ``?service=`` is 404, as on the origin. The listener's checks run first (Host,
bans, body type); then at most ``http.request_burst`` requests from one address,
refilled at ``http.request_rate`` a second, as for ``/api/...`` (429 beyond). Errors are
the API's ``{"error_type", "error_message"}``; a login that fails is ``200 {"error"}``.
"""

from __future__ import annotations

import trio
from quart import Blueprint, Quart, Response, request

from ....auth.limits import Limiter
from ....errors import NotFound
from ...context import ApiContext
from ...requests import decode_body, peer_ip
from ..auth import json_response
from ..cors import CorsPolicy, attach_cors
from ..errors import error_response
from ._actions import Envelope, GameConsoleActions
from ._handles import ServerHandles
from ._login import GameConsoleLogins, PasswordBody

__all__ = ["CONFIG", "SERVICE_PATH", "attach_gameconsole"]

SERVICE_PATH = "/service"
#: What ``?service=config`` answers: password login, and this same path for the rest
#: (relative, so the client keeps the scheme, host and port it was pointed at).
CONFIG = {"authmethod": "password", "endpoints": [SERVICE_PATH]}
#: What a page elsewhere may send: the client's JSON posts.
CORS_METHODS = ("GET", "POST", "OPTIONS")
CORS_HEADERS = ("Content-Type", "Authorization")


def _method_not_allowed(allow: str, message: str) -> Response:
    return error_response(405, "method_not_allowed", message, headers={"Allow": allow})


def gameconsole_blueprint(ctx: ApiContext) -> Blueprint:
    bp = Blueprint("gameconsole", __name__)
    http = ctx.settings.http
    handles = ServerHandles()
    ctx.auth.on_token_revoked.append(lambda token_hash, _reason: handles.forget_token(token_hash))
    logins = GameConsoleLogins(ctx.auth, ctx.audit, ctx.settings.auth, ctx.now)
    actions = GameConsoleActions(ctx, handles)
    rate = Limiter(
        trio.current_time, window=http.request_burst / http.request_rate, limit=http.request_burst
    )

    @bp.before_request
    async def request_rate() -> Response | None:
        if rate.take(peer_ip()):
            return None
        return error_response(
            429,
            "rate_limited",
            "too many requests from this address; slow down",
            headers={"Retry-After": "1"},
        )

    @bp.route(SERVICE_PATH, methods=["GET", "POST"])
    async def service() -> Response:
        which = request.args.get("service")
        if which == "config":
            return json_response(CONFIG)
        if which not in (None, "password"):
            raise NotFound(f"no service {which[:40]!r} (config, password)", field="service")
        if request.method != "POST":
            return _method_not_allowed("POST, OPTIONS", "this service is POST only")
        if which == "password":
            login = await decode_body(PasswordBody, http.max_body_bytes)
            return json_response(await logins.answer(login, peer_ip()))
        envelope = await decode_body(Envelope, http.max_body_bytes)
        return json_response(await actions.answer(envelope, peer_ip()))

    return bp


def attach_gameconsole(app: Quart, ctx: ApiContext) -> None:
    """Serve ``/service``, with CORS for the origins of ``http.cors_origins``."""
    policy = CorsPolicy(
        ctx.settings.http.cors_origins,
        paths=[SERVICE_PATH],
        methods=CORS_METHODS,
        headers=CORS_HEADERS,
    )
    attach_cors(app, policy)
    app.register_blueprint(gameconsole_blueprint(ctx))

"""The HTTP API app (quart-trio): seed 001's ``/api/...``, seed 004's ``/rooms``, and the
web dashboard at ``/``."""

from __future__ import annotations

from quart import Response
from quart_trio import QuartTrio

from ..ban_check import http_ban_check
from ..context import ApiContext
from ..openapi import http_view
from .auth import auth_blueprint, json_response, websocket_url
from .errors import BadInputRecorder, install_error_handlers
from .rooms import rooms_blueprint
from .servers import servers_blueprint
from .web import web_blueprint

__all__ = ["create_http_app"]

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    # The JSON API loads nothing and is never framed; dashboard pages set their own.
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


def create_http_app(ctx: ApiContext) -> QuartTrio:
    app = QuartTrio("leosuite.http")
    app.config["MAX_CONTENT_LENGTH"] = ctx.settings.http.max_body_bytes
    app.config["BODY_TIMEOUT"] = ctx.settings.http.read_timeout
    install_error_handlers(app, BadInputRecorder(ctx.audit))
    app.before_request(http_ban_check(ctx))
    app.register_blueprint(auth_blueprint(ctx))
    app.register_blueprint(rooms_blueprint(ctx))
    app.register_blueprint(web_blueprint(lambda: websocket_url(ctx)))

    app.add_url_rule("/openapi.json", "openapi", http_view(), methods=["GET"])

    @app.get("/api/health")
    async def health() -> Response:
        return json_response({"status": "ok"})

    @app.after_request
    async def security_headers(response: Response) -> Response:
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    app.register_blueprint(servers_blueprint(ctx))
    return app

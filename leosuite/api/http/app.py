"""The HTTP API app (quart-trio): seed 001's ``/api/...``, seed 004's ``/rooms``, the
web dashboard at ``/``, and GameConsole's ``/service`` when ``http.gameconsole_service``
is on.

Before routing, in this order: the ``Host`` (421), the ban list (403), the request
rate (429) and the body type (415; a file upload's body is the file, checked by its
route); at most ``http.max_connections_per_ip`` connections per address are served at
once (429 and closed beyond).
"""

from __future__ import annotations

import msgspec
from quart import Response
from quart_trio import QuartTrio

from ..._compat.werkzeug import rule_class
from ..ban_check import http_ban_check
from ..context import ApiContext
from ..guards import RequestGuards
from ..metrics import add_health_routes, count_requests
from ..openapi import http_view
from ..proxies import serve_behind_proxies, trusted_proxies
from ..serve import ConnectionGate, attach_connection_gate, attach_error_shape
from .auth import auth_blueprint, json_response, websocket_url
from .backups import backups_blueprint
from .cluster import cluster_blueprint
from .create_bulk import create_bulk_blueprint
from .errors import BadInputRecorder, error_body, install_error_handlers, listener_refusal
from .files import files_blueprint, skip_uploads, upload_request_class
from .gameconsole import attach_gameconsole, gameconsole_openapi_view
from .kept import kept_blueprint
from .logfiles import logfiles_blueprint
from .nodes import nodes_blueprint
from .power_bulk import power_bulk_blueprint
from .rooms import rooms_blueprint
from .schedules import schedules_blueprint
from .servers import servers_blueprint
from .shares import shares_blueprint
from .web import web_blueprint

__all__ = ["TOO_MANY_CONNECTIONS", "create_http_app"]

TOO_MANY_CONNECTIONS = "too many connections from this address; close some and retry"

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    # The JSON API loads nothing and is never framed; dashboard pages set their own.
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


def fleet_sockets(ctx: ApiContext) -> frozenset[str]:
    """The origins of the other nodes' WebSocket APIs (none on one node)."""
    return ctx.nodes.other_origins()[1] if ctx.nodes is not None else frozenset()


def create_http_app(ctx: ApiContext) -> QuartTrio:
    app = QuartTrio("leosuite.http", static_folder=None)  # the dashboard serves its own files
    app.url_rule_class = rule_class()
    app.config["MAX_CONTENT_LENGTH"] = ctx.settings.http.max_body_bytes
    app.config["BODY_TIMEOUT"] = ctx.settings.http.read_timeout
    app.request_class = upload_request_class(ctx.settings.servers.files_max_upload_bytes)
    install_error_handlers(app, BadInputRecorder(ctx.audit))
    count_requests(app, ctx.metrics, "http")
    attach_error_shape(app, error_body)
    guards = RequestGuards(ctx, listener_refusal, topic="http")
    app.before_request(guards.check_host)
    app.before_request(http_ban_check(ctx))
    app.before_request(guards.check_rate)
    app.before_request(skip_uploads(guards.check_body_type))
    proxies = trusted_proxies(ctx.settings)
    serve_behind_proxies(app, proxies)
    attach_connection_gate(
        app,
        ConnectionGate(
            ctx.settings.http.max_connections_per_ip,
            body=msgspec.json.encode(
                {"error_type": "rate_limited", "error_message": TOO_MANY_CONNECTIONS}
            ),
            audit=ctx.audit,
            topic="http",
            exempt=proxies.trusts,
        ),
    )
    app.register_blueprint(auth_blueprint(ctx))
    app.register_blueprint(rooms_blueprint(ctx))
    app.register_blueprint(web_blueprint(lambda: websocket_url(ctx), lambda: fleet_sockets(ctx)))

    gameconsole = ctx.settings.http.gameconsole_service
    openapi = gameconsole_openapi_view() if gameconsole else http_view()
    app.add_url_rule("/openapi.json", "openapi", openapi, methods=["GET"])

    add_health_routes(app, ctx)

    @app.get("/api/health")
    async def health() -> Response:
        return json_response({"status": "ok"})

    @app.after_request
    async def security_headers(response: Response) -> Response:
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    app.register_blueprint(servers_blueprint(ctx))
    app.register_blueprint(power_bulk_blueprint(ctx))
    app.register_blueprint(create_bulk_blueprint(ctx))
    app.register_blueprint(kept_blueprint(ctx))
    app.register_blueprint(nodes_blueprint(ctx))
    app.register_blueprint(logfiles_blueprint(ctx))
    app.register_blueprint(files_blueprint(ctx))
    app.register_blueprint(shares_blueprint(ctx))
    app.register_blueprint(schedules_blueprint(ctx))
    app.register_blueprint(backups_blueprint(ctx))
    app.register_blueprint(cluster_blueprint(ctx))
    if gameconsole:
        attach_gameconsole(app, ctx)
    return app

"""The admin REST API (seed 002) on its own listener.

Authentication is HTTP Basic or Bearer, for ADMIN accounts only. Every path is served
at ``/`` and under ``/api/``, with the trailing slash optional, as the origin's tools
send both. Errors are ``{"status": "error", "message"}``.

A browser keeps Basic credentials and sends them with any page's requests, so before
routing the listener refuses, in this order: a ``Host`` it is not served under (421),
an ``Origin`` other than its own or ``Sec-Fetch-Site: cross-site`` (403), a body that
is not ``application/json`` (415); then the ban list (403). At most
``admin.max_connections_per_ip`` connections per address are served at once.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

import msgspec
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from ..._compat.werkzeug import rule_class
from ...audit import Actor
from ...auth.limits import InFlight, Limiter
from ...auth.permissions import may_use_admin_api
from ...auth.service import Principal
from ...errors import AuthError, LeosuiteError, is_internal
from ...store import accounts
from ..context import ApiContext
from ..guards import RequestGuards
from ..metrics import count_requests, metrics_view
from ..openapi import admin_view
from ..proxies import serve_behind_proxies, trusted_proxies
from ..requests import peer_ip
from ..serve import ConnectionGate, attach_connection_gate, attach_error_shape
from . import accounts as admin_accounts
from . import bans as admin_bans
from . import invites as admin_invites
from . import kept as admin_kept
from . import log as admin_log
from . import nodes as admin_nodes
from . import server as admin_server
from . import session_users as admin_session_users
from . import sessions as admin_sessions
from . import unsupported as admin_unsupported
from .status import status_view

__all__ = ["create_admin_app"]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

log = logging.getLogger("leosuite.admin")

TOO_MANY_CONNECTIONS = "too many connections from this address; close some and retry"

#: Failed admin logins allowed per address within ``_FAIL_WINDOW`` seconds.
_FAIL_LIMIT = 10
_FAIL_WINDOW = 300.0


def admin_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    response = Response(
        msgspec.json.encode({"status": "error", "message": message}),
        status=status,
        content_type="application/json",
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _refusal(status: int, message: str, *, headers: dict[str, str] | None = None) -> Response:
    return admin_error(status, message, headers)


def _internal(exc: BaseException) -> Response:
    """A bug or an I/O failure: logged once with its traceback and a correlation id,
    answered 500 with only that id."""
    correlation = secrets.token_hex(6)
    log.error("admin API: internal error %s", correlation, exc_info=exc)
    return admin_error(500, f"internal error (correlation id {correlation})")


def admin_json(value: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status=status, content_type="application/json")


def _scripted() -> bool:
    return request.headers.get("X-Requested-With", "").strip().lower() == "xmlhttprequest"


class _Unauthorized(Exception):
    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def create_admin_app(ctx: ApiContext) -> QuartTrio:
    app = QuartTrio("leosuite.admin", static_folder=None)  # no framework file serving
    app.url_rule_class = rule_class()
    app.config["MAX_CONTENT_LENGTH"] = ctx.settings.http.max_body_bytes
    app.url_map.strict_slashes = False
    failures = Limiter(ctx.now, window=_FAIL_WINDOW, limit=_FAIL_LIMIT)
    guards = RequestGuards(ctx, _refusal, topic="admin")
    count_requests(app, ctx.metrics, "admin")
    app.before_request(guards.check_host)
    app.before_request(guards.check_origin)
    app.before_request(guards.check_body_type)
    attach_error_shape(
        app,
        lambda _path, _status, message: msgspec.json.encode(
            {"status": "error", "message": message}
        ),
    )
    proxies = trusted_proxies(ctx.settings)
    serve_behind_proxies(app, proxies)
    attach_connection_gate(
        app,
        ConnectionGate(
            ctx.settings.admin.max_connections_per_ip,
            body=msgspec.json.encode({"status": "error", "message": TOO_MANY_CONNECTIONS}),
            audit=ctx.audit,
            topic="admin",
            # Not even a trusted proxy is exempt here: a local process that connects
            # from the proxy's address must not get unlimited admin connections.
        ),
    )

    checking = InFlight()  # attempts per address whose check has not ended

    async def principal_of_request() -> Principal:
        # An attempt counts against the limit from before its password is verified, so
        # concurrent guesses cannot all be verified before the first failure is noted.
        ip = peer_ip()
        if failures.count(ip) + checking[ip] >= _FAIL_LIMIT:
            raise _Unauthorized("too many failed attempts; try again later", status=429)
        checking.add(ip)
        failure = ""
        try:
            principal = await credentials_of_request(ip)
        except AuthError as exc:
            principal, failure = None, exc.message
        finally:
            checking.remove(ip)
        if principal is None:
            failures.note(ip)
            ctx.metrics.admin_auth_failures.inc()
            await ctx.audit.record(
                "admin",
                f"admin authentication failed: {failure}",
                actor=Actor(ip=ip),
                level="warning",
            )
            raise _Unauthorized("invalid credentials")
        if not may_use_admin_api(principal):
            await ctx.audit.record(
                "admin",
                "admin API refused: not an ADMIN account",
                actor=principal.actor(ip),
                level="warning",
            )
            raise _Unauthorized("this account is not an administrator", status=403)
        return principal

    async def credentials_of_request(ip: str) -> Principal:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value:
            return await ctx.auth.authenticate(value.strip(), ip=ip)
        if scheme.lower() == "basic" and value:
            return await basic(value.strip(), ip)
        raise _Unauthorized("authentication required (HTTP Basic or Bearer token)")

    async def basic(value: str, ip: str) -> Principal:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError("malformed Basic credentials") from None
        username, sep, password = decoded.partition(":")
        if not sep or len(username) > 64 or len(password) > 1024:
            raise AuthError("malformed Basic credentials")
        account = await ctx.db.call(lambda conn: accounts.get_by_name(conn, username))
        ok = await ctx.auth.verify_password(account, password)
        if account is None or not ok or account.locked:
            raise AuthError("invalid credentials")
        return Principal(
            account_id=account.id, username=account.username, flags=frozenset(account.flags)
        )

    def admin_only(handler: F) -> F:
        @wraps(handler)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = await principal_of_request()
            return await handler(principal, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    @app.errorhandler(_Unauthorized)
    async def _unauthorized(exc: _Unauthorized) -> Any:
        # A script's request (X-Requested-With: XMLHttpRequest) gets no Basic challenge,
        # so the browser shows the page's own login instead of its password dialog.
        challenge = exc.status == 401 and not _scripted()
        headers = {"WWW-Authenticate": 'Basic realm="leosuite admin", charset="UTF-8"'}
        return admin_error(exc.status, exc.message, headers if challenge else None)

    @app.errorhandler(LeosuiteError)
    async def _leosuite_error(exc: LeosuiteError) -> Any:
        if is_internal(exc):
            return _internal(exc)
        return admin_error(exc.http_status, exc.message)

    @app.errorhandler(HTTPException)
    async def _http_error(exc: HTTPException) -> Any:
        headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
        return admin_error(exc.code or 500, exc.description or exc.name, headers)

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Any:
        return _internal(exc)

    async def status(principal: Principal) -> Response:
        return admin_json(await status_view(ctx))

    add_admin_route(app, "/openapi.json", "openapi", admin_view(), ["GET"])
    add_admin_route(app, "/metrics", "metrics", metrics_view(ctx, principal_of_request), ["GET"])
    routes = AdminRoutes(app, ctx, admin_only)
    routes.add("/status", status, ["GET"])
    for register in ROUTE_MODULES:
        register(routes)
    return app


class AdminRoutes:
    """What a route module of the admin API gets: the app, the services, and ``add``,
    which serves an ADMIN-only view (called with the Principal first) at ``path`` (a
    werkzeug rule like ``/accounts/<int:account_id>``), at ``/`` and under ``/api/``,
    with and without the trailing slash."""

    def __init__(self, app: QuartTrio, ctx: ApiContext, admin_only: Callable[[Any], Any]) -> None:
        self.app = app
        self.ctx = ctx
        self._admin_only = admin_only

    def add(self, path: str, view: Callable[..., Any], methods: list[str]) -> None:
        endpoint = view.__name__ + path.replace("/", "_").replace("<", "").replace(">", "")
        add_admin_route(self.app, path, endpoint, self._admin_only(view), methods)


#: ``register(routes)`` functions of the admin route modules (each adds its paths).
ROUTE_MODULES: list[Callable[[AdminRoutes], None]] = [
    admin_server.register,
    admin_sessions.register,
    admin_session_users.register,
    admin_invites.register,
    admin_accounts.register,
    admin_log.register,
    admin_bans.register,
    admin_kept.register,
    admin_nodes.register,
    admin_unsupported.register,
]


def add_admin_route(
    app: QuartTrio, path: str, endpoint: str, view: Callable[..., Any], methods: list[str]
) -> None:
    """Serve ``path`` at ``/`` and under ``/api/``, with and without a trailing slash.

    Both slash forms are real rules: with ``strict_slashes = False`` alone, werkzeug
    answers a wrong method on the slash-less form with 404 instead of 405.
    """
    base = path.rstrip("/")
    for prefix in ("", "/api"):
        for suffix in ("", "/"):
            app.add_url_rule(
                f"{prefix}{base}{suffix}", f"{endpoint}{prefix}{suffix}", view, methods=methods
            )

"""The WebSocket API of seed 000 on ``/``: dispatch, login and the seed calls.

The wire format (envelope, status codes, parsing, error mapping) is
:mod:`~leosuite.api.ws.protocol`. Requests of one connection are handled concurrently;
the dashboard calls (``server.*``, subscriptions) are in :mod:`~leosuite.api.ws.dashboard`.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import msgspec
import trio
from trio_websocket import WebSocketRequest

from ... import __version__
from ...audit import Actor
from ...auth.limits import Limiter
from ...auth.permissions import exempt_from_request_rate, may_read_audit_log, may_see_every_count
from ...errors import AuthError, PermissionDenied
from ...store import accounts, audit_search
from ...store import audit as audit_table
from ...supervision.states import State
from ..context import ApiContext
from ..server_ops import ServerOps
from .conn import WsConnection, WsHub
from .log_filters import MAX_PAGE, LogsQuery, search_query
from .protocol import (
    CLOSE_POLICY,
    Malformed,
    StatusCode,
    WsError,
    decode_content,
    envelope,
    error_of,
    is_internal,
    parse_frame,
    push,
)
from .refusals import RefusalNotes

__all__ = ["MAX_PAGE", "REQUEST_UUID", "AfterSend", "WsApi"]

log = logging.getLogger("leosuite.ws")

Handler = Callable[[WsConnection, Any], Awaitable[Any]]

#: The uuid of the request the current task handles (its pushes may name it).
REQUEST_UUID: ContextVar[str] = ContextVar("REQUEST_UUID", default="")


class AfterSend:
    """A handler result whose ``then()`` runs once the answer is queued, so that a
    subscription's first push never overtakes the answer to ``subscribe``."""

    def __init__(self, content: Any, then: Callable[[], None]) -> None:
        self.content = content
        self.then = then


class _Credentials(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    password: str


class _Token(msgspec.Struct, forbid_unknown_fields=True):
    token: str


class WsApi:
    """Routes one connection's frames to handlers; ``public`` calls need no login."""

    def __init__(self, ctx: ApiContext, hub: WsHub) -> None:
        self.ctx = ctx
        self.hub = hub
        self._refused = RefusalNotes(ctx.audit)  # one entry per address per burst
        self.handlers: dict[str, tuple[Handler, bool]] = {}
        self._login_attempts = Limiter(
            trio.current_time, window=60.0, limit=ctx.settings.ws.login_attempts_per_minute
        )
        for name in ("get_leosac_version", "get_version"):
            self.add(name, self._version, public=True)
        self.add("create_auth_token", self._create_auth_token, public=True)
        self.add("authenticate_with_token", self._authenticate_with_token, public=True)
        self.add("logout", self._logout)
        self.add("system_overview", self._system_overview)
        self.add("get_logs", self._get_logs)
        ctx.auth.on_revoked.append(self._revoked)
        ctx.auth.on_token_revoked.append(self._token_revoked)

    def add(self, name: str, handler: Handler, *, public: bool = False) -> None:
        self.handlers[name] = (handler, public)

    # -- the connection ---------------------------------------------------------------

    async def serve(self, request: WebSocketRequest, ip: str) -> None:
        if await self._refused.refuse_over_cap(self.hub, request, ip, "connection"):
            return
        self.hub.reserve(ip)  # before the first await: concurrent handshakes see it
        try:
            ws = await request.accept()
            conn = WsConnection(self.hub, ws, ip)
            self.hub.add(conn)
            try:
                await conn.serve(lambda message: self._handle(conn, message))
            finally:
                self.hub.remove(conn)
        finally:
            self.hub.release(ip)

    async def _handle(self, conn: WsConnection, message: str | bytes) -> None:
        uuid = kind = ""
        try:
            malformed: str | None = None
            try:
                uuid, kind, content = parse_frame(message)
                REQUEST_UUID.set(uuid)
            except Malformed as exc:
                uuid, kind, malformed = exc.uuid, exc.kind, exc.reason
            # ADMIN sessions are not limited (as on the HTTP API; ws.max_inflight still
            # bounds them): a bulk `leosuite server stop --all` must not crawl.
            exempt = exempt_from_request_rate(conn.principal)
            if not exempt and not conn.rate.take():  # malformed frames count too
                await self._note_rate_limited(conn)
                raise WsError(StatusCode.RATE_LIMITED, "too many requests; slow down")
            conn.rate_limited = False
            if malformed is not None:
                raise WsError(StatusCode.MALFORMED, malformed)
            entry = self.handlers.get(kind)
            if entry is None:
                raise WsError(StatusCode.INVALID_CALL, f"unknown call {kind!r}")
            handler, public = entry
            if not public:
                await self._require_session(conn)
            result = await handler(conn, content)
            if isinstance(result, AfterSend):
                await conn.send(envelope(uuid, kind, StatusCode.SUCCESS, result.content))
                result.then()
                return
            answer = envelope(uuid, kind, StatusCode.SUCCESS, result)
        except WsError as exc:
            answer = envelope(uuid, kind, exc.status, exc.content, exc.message)
        except trio.Cancelled:
            raise
        except Exception as exc:
            error = error_of(exc, _logged_internal(kind, exc) if is_internal(exc) else "")
            answer = envelope(uuid, kind, error.status, error.content, error.message)
        await conn.send(answer)

    async def _note_rate_limited(self, conn: WsConnection) -> None:
        """Audit the first rate-limited request of a burst (not every one of them)."""
        if conn.rate_limited:
            return
        conn.rate_limited = True
        name = conn.principal.username if conn.principal else ""
        await self.ctx.audit.record(
            "ws", "request rate limited", actor=_actor(conn.ip, name), level="warning"
        )

    async def require_session(self, conn: WsConnection) -> None:
        """Refuse unless the connection is logged in: what a public call that needs a
        login for some of its uses checks itself."""
        await self._require_session(conn)

    async def _require_session(self, conn: WsConnection) -> None:
        if conn.principal is None or conn.token is None:
            reason, conn.aborted = conn.aborted, None
            if reason is not None:
                raise WsError(StatusCode.SESSION_ABORTED, reason)
            raise WsError(StatusCode.PERMISSION_DENIED, "log in first (create_auth_token)")
        try:
            conn.principal = await self.ctx.auth.authenticate(conn.token, ip=conn.ip)
        except AuthError as exc:
            self.end_session(conn, exc.message)
            conn.aborted = None  # this call is the one that answers SESSION_ABORTED
            raise WsError(StatusCode.SESSION_ABORTED, exc.message) from None

    def end_session(self, conn: WsConnection, reason: str) -> None:
        """Forget the login, stop the subscriptions and push ``session_closed``."""
        conn.principal = None
        conn.token = None
        conn.aborted = reason
        conn.cancel_subscriptions()
        if not conn.push_nowait(push("session_closed", {"reason": reason})):
            conn.close(CLOSE_POLICY, f"session closed: {reason}")  # it does not read: go

    def _token_revoked(self, token_hash: str, reason: str) -> None:
        for conn in list(self.hub.connections):
            if conn.principal is not None and conn.principal.token_hash == token_hash:
                self.end_session(conn, reason)

    def _revoked(self, account_id: int, reason: str) -> None:
        for conn in self.hub.of_account(account_id):
            self.end_session(conn, reason)

    # -- seed calls ---------------------------------------------------------------------

    async def _version(self, conn: WsConnection, content: Any) -> Any:
        return {"version": __version__, "version_short": ".".join(__version__.split(".")[:2])}

    async def _create_auth_token(self, conn: WsConnection, content: Any) -> Any:
        credentials = decode_content(content, _Credentials)
        if conn.principal is not None:
            return {"status": -1, "message": "already logged in on this connection; log out first"}
        if not self._login_attempts.allow(conn.ip):
            await self.ctx.audit.record(
                "auth",
                "WebSocket login rate limited",
                level="warning",
                actor=_actor(conn.ip, credentials.username),
            )
            raise WsError(StatusCode.RATE_LIMITED, "too many login attempts; wait a minute")
        try:
            token, principal = await self.ctx.auth.password_login(
                credentials.username, credentials.password, conn.ip
            )
        except AuthError as exc:
            return {"status": -1, "message": exc.message}
        conn.principal, conn.token, conn.aborted = principal, token, None
        return {"status": 0, "user_id": principal.account_id, "token": token}

    async def _authenticate_with_token(self, conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, _Token)
        if conn.principal is not None:
            return {"status": -1, "message": "already logged in on this connection; log out first"}
        try:
            principal = await self.ctx.auth.authenticate(query.token, ip=conn.ip)
        except AuthError as exc:
            return {"status": -1, "message": exc.message}
        conn.principal, conn.token, conn.aborted = principal, query.token, None
        return {"status": 0, "user_id": principal.account_id, "username": principal.username}

    async def _logout(self, conn: WsConnection, content: Any) -> Any:
        principal = conn.principal
        assert principal is not None
        conn.principal = conn.token = None  # before the logout tells the other sessions
        conn.cancel_subscriptions()
        await self.ctx.auth.logout(principal, conn.ip)
        return None

    async def _system_overview(self, conn: WsConnection, content: Any) -> Any:
        """Counts over the whole daemon for an ADMIN; anyone else gets the same shape
        counting its own servers, its own sessions and itself."""
        principal = conn.principal
        assert principal is not None
        manager = self.ctx.servers
        if may_see_every_count(principal):
            names = manager.names()
            users = await self.ctx.db.call(accounts.count)
            sessions = self.hub.authenticated()
        else:
            names = ServerOps(self.ctx, principal, conn.ip).visible_names()
            users = 1
            sessions = len(self.hub.of_account(principal.account_id))
        counts = {state.value: 0 for state in State}
        for name in names:
            counts[manager.supervisor(name).state.value] += 1
        return {
            "instance_name": self.ctx.settings.daemon.instance_name,
            "config_version": 1,
            "uptime": max(0.0, self.ctx.now() - self.ctx.started_at),
            "modules": ["http", "websocket", "admin", "supervision"],
            "servers": counts,
            "sessions": sessions,
            "users": users,
        }

    async def _get_logs(self, conn: WsConnection, content: Any) -> Any:
        assert conn.principal is not None
        if not may_read_audit_log(conn.principal):
            raise PermissionDenied("reading the audit log needs the ADMIN flag")
        query = decode_content(content, LogsQuery)
        if query.sort not in ("asc", "desc"):
            raise WsError(
                StatusCode.INVALID_ARGUMENT, "sort must be asc or desc", {"field": "sort"}
            )
        page = max(query.p, 1)
        # The filters of the admin API's /log/ (one search for both surfaces).
        search = search_query(self.ctx.chat.core, query)

        def read(db: Any) -> tuple[int, list[audit_table.AuditEntry]]:
            if search is None:  # a text filter too long to match anything
                return 0, []
            total = audit_search.count(db, search)
            entries = audit_search.search(
                db,
                search,
                offset=(page - 1) * query.ps,
                limit=query.ps,
                newest_first=query.sort == "desc",
            )
            return total, entries

        total, entries = await self.ctx.db.call(read)
        return {
            "data": [
                {
                    "id": e.id,
                    "type": "log-message",
                    "attributes": {
                        "message": e.message,
                        "timestamp": int(e.timestamp),
                        "level": e.level,
                        "topic": e.topic,
                        "user": e.user_triple,
                        "session": e.session,
                    },
                }
                for e in entries
            ],
            "meta": {
                "total": total,
                "first": 1,
                "last": max(1, math.ceil(total / query.ps)),
                # What a session filter stands for, so live entries can be matched too.
                "sessions": [] if search is None else list(search.sessions),
            },
        }


def _logged_internal(kind: str, exc: BaseException) -> str:
    """Log an internal error of a call once, with its traceback; its correlation id."""
    correlation = secrets.token_hex(6)
    log.error("WebSocket call %s: internal error %s", kind, correlation, exc_info=exc)
    return correlation


def _actor(ip: str, name: str) -> Actor:
    return Actor(ip=ip, name=name[:64])

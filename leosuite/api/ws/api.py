"""The WebSocket API of seed 000 on ``/``: envelope, status codes, dispatch, seed calls.

Requests are ``{"type", "uuid", "content"}``; answers ``{"uuid", "type",
"status_code", "status_string", "content"}`` with the request's uuid and type (``""``
when a frame had none or not a string, SPEC §8). Requests of one connection are handled
concurrently; the dashboard calls (``server.*``, subscriptions) are in ``ws_dashboard``.
Errors map from the one error tree here and only here.
"""

from __future__ import annotations

import enum
import logging
import math
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec
import trio
from trio_websocket import WebSocketRequest

from ... import __version__
from ...audit import Actor
from ...errors import (
    AuthError,
    Conflict,
    InternalError,
    InvalidInput,
    LeosuiteError,
    NotFound,
    RateLimited,
    StoreError,
    TooLarge,
)
from ...store import accounts
from ...store import audit as audit_table
from ...supervision.states import State
from ..context import ApiContext
from .conn import CLOSE_POLICY, WsConnection, WsHub

__all__ = [
    "AfterSend",
    "StatusCode",
    "WsApi",
    "WsError",
    "envelope",
    "origin_allowed",
    "parse_frame",
    "push",
]

log = logging.getLogger("leosuite.ws")

T = TypeVar("T", bound=msgspec.Struct)


class StatusCode(enum.IntEnum):
    SUCCESS = 0
    GENERAL_FAILURE = 1
    PERMISSION_DENIED = 2
    RATE_LIMITED = 3
    MALFORMED = 4
    INVALID_CALL = 5
    TIMEOUT = 6
    SESSION_ABORTED = 7
    ENTITY_NOT_FOUND = 8
    DATABASE_ERROR = 9
    UNKNOWN = 10
    MODEL_EXCEPTION = 11
    INVALID_ARGUMENT = 12


class WsError(Exception):
    def __init__(self, status: StatusCode, message: str, content: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.content = content


def envelope(uuid: str, kind: str, status: StatusCode, content: Any, message: str = "") -> str:
    return msgspec.json.encode(
        {
            "uuid": uuid,
            "type": kind,
            "status_code": int(status),
            "status_string": message or status.name,
            "content": content,
        }
    ).decode()


def push(kind: str, content: Any) -> str:
    """A server-initiated message: a fresh server uuid."""
    return envelope(secrets.token_hex(16), kind, StatusCode.SUCCESS, content)


class Malformed(Exception):
    """A frame that is not a valid request; carries what could be read of it."""

    def __init__(self, reason: str, uuid: object = None, kind: object = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.uuid = uuid if isinstance(uuid, str) else ""
        self.kind = kind if isinstance(kind, str) else ""


def parse_frame(message: str | bytes) -> tuple[str, str, Any]:
    """``(uuid, type, content)`` of a request frame, or :class:`Malformed`."""
    if isinstance(message, bytes):
        raise Malformed("binary frames are not accepted; send JSON text frames")
    try:
        frame = msgspec.json.decode(message)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise Malformed("frame is not valid JSON") from None
    if not isinstance(frame, dict):
        raise Malformed("frame is not a JSON object")
    uuid, kind = frame.get("uuid"), frame.get("type")
    if not isinstance(uuid, str) or not isinstance(kind, str) or "content" not in frame:
        raise Malformed("frame needs a string 'uuid', a string 'type' and a 'content'", uuid, kind)
    return uuid, kind, frame["content"]


def model_error(field: str | None, detail: str) -> WsError:
    pointer = "/content" + (f"/{field.replace('.', '/')}" if field else "")
    return WsError(
        StatusCode.MODEL_EXCEPTION,
        detail,
        {"errors": [{"detail": detail, "source": {"pointer": pointer}}]},
    )


def decode_content(content: Any, kind: type[T]) -> T:
    """Typed content; a missing field or wrong type is MODEL_EXCEPTION naming it."""
    try:
        return msgspec.convert({} if content is None else content, kind, str_keys=True)
    except msgspec.ValidationError as exc:
        text = str(exc)
        message, _, where = text.partition(" - at `$")
        field = where.rstrip("`").lstrip(".") or None
        if "unknown field" in message or "missing required field" in message:
            # The field is named in the message; ``where`` is the object holding it.
            name = message.split("`")[1]
            field = f"{field}.{name}" if field else name
        raise model_error(field, f"{field}: {message}" if field else message) from None


def _error_of(exc: LeosuiteError) -> WsError:
    if isinstance(exc, AuthError):
        return WsError(StatusCode.PERMISSION_DENIED, exc.message)
    if isinstance(exc, NotFound):
        return WsError(StatusCode.ENTITY_NOT_FOUND, exc.message)
    if isinstance(exc, InvalidInput | TooLarge):
        return WsError(StatusCode.INVALID_ARGUMENT, exc.message, {"field": exc.field})
    if isinstance(exc, Conflict):
        return WsError(StatusCode.GENERAL_FAILURE, exc.message)
    if isinstance(exc, RateLimited):
        return WsError(StatusCode.RATE_LIMITED, exc.message)
    if isinstance(exc, StoreError):
        return WsError(StatusCode.DATABASE_ERROR, "database error")
    return WsError(StatusCode.GENERAL_FAILURE, exc.message)


Handler = Callable[[WsConnection, Any], Awaitable[Any]]


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


class _LogsQuery(msgspec.Struct, forbid_unknown_fields=True):
    p: int = 1
    ps: int = 20
    sort: str = "desc"


class WsApi:
    """Routes one connection's frames to handlers; ``public`` calls need no login."""

    def __init__(self, ctx: ApiContext, hub: WsHub) -> None:
        self.ctx = ctx
        self.hub = hub
        self.handlers: dict[str, tuple[Handler, bool]] = {}
        self._login_attempts: dict[str, deque[float]] = {}
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
        refusal = self.hub.refusal(ip)
        if refusal is not None:
            status, reason = refusal
            await self.ctx.audit.record("ws", f"connection refused: {reason}", level="warning")
            await request.reject(status, body=reason.encode())
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
            except Malformed as exc:
                uuid, kind, malformed = exc.uuid, exc.kind, exc.reason
            # ADMIN sessions are not limited (as on the HTTP API; ws.max_inflight still
            # bounds them): a bulk `leosuite server stop --all` must not crawl.
            admin = conn.principal is not None and "ADMIN" in conn.principal.flags
            if not admin and not conn.rate.take():  # malformed frames count too
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
        except LeosuiteError as exc:
            if isinstance(exc, InternalError) and not isinstance(exc, StoreError):
                log.exception("WebSocket call %s failed", kind, exc_info=exc)
            error = _error_of(exc)
            answer = envelope(uuid, kind, error.status, error.content, error.message)
        except trio.Cancelled:
            raise
        except Exception:
            correlation = secrets.token_hex(6)
            log.exception("WebSocket call %s failed (%s)", kind, correlation)
            answer = envelope(
                uuid,
                kind,
                StatusCode.UNKNOWN,
                None,
                f"internal error (correlation id {correlation})",
            )
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

    async def _require_session(self, conn: WsConnection) -> None:
        if conn.principal is None or conn.token is None:
            reason, conn.aborted = conn.aborted, None
            if reason is not None:
                raise WsError(StatusCode.SESSION_ABORTED, reason)
            raise WsError(StatusCode.PERMISSION_DENIED, "log in first (create_auth_token)")
        try:
            conn.principal = await self.ctx.auth.authenticate(conn.token)
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

    def _login_allowed(self, ip: str) -> bool:
        window = 60.0
        now = trio.current_time()
        attempts = self._login_attempts.setdefault(ip, deque())
        while attempts and attempts[0] <= now - window:
            attempts.popleft()
        if len(attempts) >= self.ctx.settings.ws.login_attempts_per_minute:
            return False
        attempts.append(now)
        if len(self._login_attempts) > 10000:  # forget idle addresses
            for key in [k for k, v in self._login_attempts.items() if not v]:
                del self._login_attempts[key]
        return True

    async def _create_auth_token(self, conn: WsConnection, content: Any) -> Any:
        credentials = decode_content(content, _Credentials)
        if conn.principal is not None:
            return {"status": -1, "message": "already logged in on this connection; log out first"}
        if not self._login_allowed(conn.ip):
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
            principal = await self.ctx.auth.authenticate(query.token)
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
        counts = {state.value: 0 for state in State}
        manager = self.ctx.servers
        for name in manager.names():
            counts[manager.supervisor(name).state.value] += 1
        users = await self.ctx.db.call(accounts.count)
        return {
            "instance_name": self.ctx.settings.daemon.instance_name,
            "config_version": 1,
            "uptime": max(0.0, self.ctx.now() - self.ctx.started_at),
            "modules": ["http", "websocket", "admin", "supervision"],
            "servers": counts,
            "sessions": self.hub.authenticated(),
            "users": users,
        }

    async def _get_logs(self, conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, _LogsQuery)
        if query.ps < 1 or query.ps > 1000:
            raise WsError(StatusCode.INVALID_ARGUMENT, "ps must be 1-1000", {"field": "ps"})
        if query.p < 0:
            raise WsError(StatusCode.INVALID_ARGUMENT, "p must not be negative", {"field": "p"})
        if query.sort not in ("asc", "desc"):
            raise WsError(
                StatusCode.INVALID_ARGUMENT, "sort must be asc or desc", {"field": "sort"}
            )
        page = max(query.p, 1)

        def read(db: Any) -> tuple[int, list[audit_table.AuditEntry]]:
            total = audit_table.count(db)
            entries = audit_table.page(
                db, offset=(page - 1) * query.ps, limit=query.ps, newest_first=query.sort == "desc"
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
            "meta": {"total": total, "first": 1, "last": max(1, math.ceil(total / query.ps))},
        }


def _actor(ip: str, name: str) -> Actor:
    return Actor(ip=ip, name=name[:64])


def origin_allowed(
    request: WebSocketRequest,
    allowed: list[str],
    *,
    own_origins: tuple[str, ...] = (),
    http_port: int | None = None,
) -> bool:
    """No Origin (not a browser) is fine; a present one must be the same host and port
    as the WebSocket, one of the daemon's own pages (``own_origins``: its HTTP API, so a
    page it serves may connect; ``http_port``: that API under the host name the browser
    used for the WebSocket, e.g. a LAN address of a daemon bound to 0.0.0.0), or in the
    allow list."""
    headers = {k.lower(): v for k, v in request.headers}
    origin_raw = headers.get(b"origin")
    if origin_raw is None:
        return True
    origin = origin_raw.decode("latin-1").rstrip("/")
    if origin in allowed:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https"):
        return False
    if any(parts.netloc.lower() == urlsplit(own).netloc.lower() for own in own_origins):
        return True
    # wsproto moves the Host header out of ``headers`` into its Request event, which
    # trio-websocket does not expose: read it there (the header stays as a fallback).
    event_host = getattr(getattr(request, "_event", None), "host", None)
    host = event_host if isinstance(event_host, str) else ""
    host = host or headers.get(b"host", b"").decode("latin-1")
    if not host:
        return False
    if parts.netloc.lower() == host.lower():
        return True
    try:
        origin_port = parts.port
    except ValueError:
        return False
    return (
        http_port is not None
        and origin_port == http_port
        and parts.hostname is not None
        and parts.hostname == urlsplit(f"//{host}").hostname
    )

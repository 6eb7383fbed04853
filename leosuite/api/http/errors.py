"""HTTP error mapping for the JSON API: one place turns every failure into
``{"error_type", "error_message"}`` with the right status code.

Framework errors (unknown route, wrong method, body over the limit) arrive as
werkzeug ``HTTPException``s; our own as :class:`~leosuite.errors.LeosuiteError` (a full
disk is 507 ``disk_full`` with its message); anything else is a bug: logged with a
correlation id, answered 500 without detail.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import msgspec
import trio
from quart import Quart, Response, has_request_context, has_websocket_context, request
from werkzeug.exceptions import HTTPException

from ...audit import Actor, AuditLog
from ...auth.limits import Limiter
from ...errors import LeosuiteError, is_internal

__all__ = [
    "HTTP_ERROR_TYPES",
    "BadInputRecorder",
    "error_body",
    "error_response",
    "install_error_handlers",
    "listener_refusal",
]

log = logging.getLogger("leosuite.api")

NO_WEBSOCKETS = "no WebSocket endpoint on this listener (the WebSocket listener has its own port)"

HTTP_ERROR_TYPES = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    421: "misdirected",
    429: "rate_limited",
    500: "internal",
    507: "disk_full",
}


def error_response(
    status: int, error_type: str, message: str, *, headers: dict[str, str] | None = None
) -> Response:
    body = msgspec.json.encode({"error_type": error_type, "error_message": message})
    response = Response(body, status=status, content_type="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def error_body(path: str, status: int, message: str) -> bytes:
    """A refusal's body in the shape of the endpoint asked: ``POST /rooms`` answers
    ``{"status": "error", "error_type", "text"}``, everything else the API's shape."""
    error_type = HTTP_ERROR_TYPES.get(status, "error")
    if path == "/rooms":
        return msgspec.json.encode({"status": "error", "error_type": error_type, "text": message})
    return msgspec.json.encode({"error_type": error_type, "error_message": message})


def listener_refusal(
    status: int, message: str, *, headers: dict[str, str] | None = None
) -> Response:
    """A refusal by the listener itself (wrong Host, body type, too many requests or
    connections) in the shape of the endpoint asked (:func:`error_body`)."""
    body = error_body(request.path, status, message)
    response = Response(body, status=status, content_type="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _from_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    headers: dict[str, str] = {}
    if status == 405:
        allow = exc.get_headers().__iter__()
        for key, value in allow:
            if key.lower() == "allow":
                headers["Allow"] = value
    message = {
        404: "no such endpoint",
        405: "method not allowed for this endpoint",
        408: "the request body did not arrive in time",
        413: "request body too large",
    }.get(status, exc.description or exc.name)
    # A framework refusal takes the shape of the endpoint asked, as the listener's own do.
    path = request.path if has_request_context() else ""
    body = error_body(path, status, message)
    response = Response(body, status=status, content_type="application/json")
    for key, value in headers.items():
        response.headers[key] = value
    return response


def _internal(exc: BaseException) -> Response:
    correlation = secrets.token_hex(6)
    log.error("internal error %s", correlation, exc_info=exc)
    return error_response(500, "internal", f"internal error (correlation id {correlation})")


class BadInputRecorder:
    """Writes rejected input (400, 413) to the audit log, at most ``per_minute``
    entries per client address so a flood of garbage cannot flood the log."""

    def __init__(self, audit: AuditLog, *, per_minute: int = 10) -> None:
        self._audit = audit
        self._recent = Limiter(trio.current_time, window=60.0, limit=per_minute)

    async def record(self, status: int, message: str) -> None:
        if not has_request_context():  # a WebSocket request: this listener serves none
            return
        ip = request.remote_addr or ""
        if not self._recent.allow(ip):
            return
        await self._audit.record(
            "http",
            f"bad input ({status}) on {request.method} {request.path[:200]}: {message}",
            actor=Actor(ip=ip),
            level="warning",
        )


def install_error_handlers(app: Quart, bad_input: BadInputRecorder | None = None) -> None:
    @app.errorhandler(LeosuiteError)
    async def _leosuite_error(exc: LeosuiteError) -> Any:
        if is_internal(exc):
            return _internal(exc)
        response = error_response(exc.http_status, exc.error_type, exc.message)
        if bad_input is not None and exc.http_status in (400, 413):
            await bad_input.record(exc.http_status, exc.message)
        return response

    @app.errorhandler(HTTPException)
    async def _http_error(exc: HTTPException) -> Any:
        if has_websocket_context():  # an upgrade request: WebSockets have their own port
            return error_response(404, "not_found", NO_WEBSOCKETS)
        response = _from_http_exception(exc)
        if bad_input is not None and response.status_code in (400, 413):
            await bad_input.record(response.status_code, exc.description or exc.name)
        return response

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Any:
        return _internal(exc)

"""HTTP error mapping for the JSON API: one place turns every failure into
``{"error_type", "error_message"}`` with the right status code.

Framework errors (unknown route, wrong method, body over the limit) arrive as
werkzeug ``HTTPException``s; our own as :class:`~leosuite.errors.LeosuiteError`;
anything else is a bug: logged with a correlation id, answered 500 without detail.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import msgspec
from quart import Quart, Response
from werkzeug.exceptions import HTTPException

from ..errors import LeosuiteError

__all__ = ["error_response", "install_error_handlers", "HTTP_ERROR_TYPES"]

log = logging.getLogger("leosuite.api")

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
    429: "rate_limited",
    500: "internal",
}


def error_response(
    status: int, error_type: str, message: str, *, headers: dict[str, str] | None = None
) -> Response:
    body = msgspec.json.encode({"error_type": error_type, "error_message": message})
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
    return error_response(status, HTTP_ERROR_TYPES.get(status, "error"), message, headers=headers)


def _internal(exc: BaseException) -> Response:
    correlation = secrets.token_hex(6)
    log.error("internal error %s", correlation, exc_info=exc)
    return error_response(500, "internal", f"internal error (correlation id {correlation})")


def install_error_handlers(app: Quart) -> None:
    @app.errorhandler(LeosuiteError)
    async def _leosuite_error(exc: LeosuiteError) -> Any:
        if exc.http_status >= 500:
            return _internal(exc)
        return error_response(exc.http_status, exc.error_type, exc.message)

    @app.errorhandler(HTTPException)
    async def _http_error(exc: HTTPException) -> Any:
        return _from_http_exception(exc)

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Any:
        return _internal(exc)

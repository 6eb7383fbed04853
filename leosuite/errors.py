"""The one exception tree of leosuite.

Every error that crosses a module boundary is one of these. Each surface maps
them in exactly one place (HTTP status + ``error_type`` in ``api/http/errors.py``;
WebSocket status codes and chat error messages in their own modules)::

    LeosuiteError                  base; ``error_type`` names it on the wire
    ├── ConfigError                bad settings or template (start-up: exit 1)
    ├── StartupError               cannot start: port taken, data dir locked (exit 1)
    ├── InvalidInput               400  malformed or invalid request
    ├── AuthError                  403  missing/invalid/expired token, failed login
    │   └── PermissionDenied       403  authenticated but not allowed
    ├── NotFound                   404  unknown server / route / entity
    ├── MethodNotAllowed           405
    ├── Conflict                   409  exists already, wrong state (not running ...)
    ├── TooLarge                   413  body, command or message over its limit
    ├── UnsupportedMediaType       415  a request body that is not application/json
    ├── RateLimited                429  too many attempts
    ├── DiskFull                   507  no space left on the data directory's filesystem
    ├── NodeUnreachable            503  the node that runs the server cannot be reached
    └── InternalError              500  a bug or an I/O failure; logged, never detailed
        ├── StoreError             SQLite failed (wraps ``sqlite3.Error``)
        │   └── StoreCorrupt       the database is damaged or from a newer version
        └── ProcessError           spawning or signalling a child failed (wraps OSError)

Foreign errors (``sqlite3.Error``, ``OSError``) are translated at the store and
process shells with ``raise ... from exc``. Only an error answered 500 is internal
(:func:`is_internal`): its detail is logged, and a client gets a correlation id.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ConfigError",
    "Conflict",
    "DiskFull",
    "InternalError",
    "InvalidInput",
    "LeosuiteError",
    "MethodNotAllowed",
    "NodeUnreachable",
    "NotFound",
    "PermissionDenied",
    "ProcessError",
    "RateLimited",
    "StoreCorrupt",
    "StartupError",
    "StoreError",
    "TooLarge",
    "UnsupportedMediaType",
    "is_internal",
]


class LeosuiteError(Exception):
    """Base of every leosuite error. ``str(exc)`` is safe to show a client."""

    error_type = "error"
    http_status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: The offending input field, when one can be named (``"server"``, ``"auth.pow_count"``).
        self.field = field


class ConfigError(LeosuiteError):
    error_type = "config"
    http_status = 500


class StartupError(LeosuiteError):
    error_type = "startup"
    http_status = 500


class InvalidInput(LeosuiteError):
    error_type = "invalid"
    http_status = 400


class AuthError(LeosuiteError):
    error_type = "forbidden"
    http_status = 403


class PermissionDenied(AuthError):
    error_type = "permission_denied"


class NotFound(LeosuiteError):
    error_type = "not_found"
    http_status = 404


class MethodNotAllowed(LeosuiteError):
    error_type = "method_not_allowed"
    http_status = 405


class Conflict(LeosuiteError):
    error_type = "conflict"
    http_status = 409


class TooLarge(LeosuiteError):
    error_type = "too_large"
    http_status = 413


class UnsupportedMediaType(LeosuiteError):
    error_type = "unsupported_media_type"
    http_status = 415


class RateLimited(LeosuiteError):
    error_type = "rate_limited"
    http_status = 429


class DiskFull(LeosuiteError):
    """A write failed for want of space (``SQLITE_FULL``, ``ENOSPC``, ``EDQUOT``). Its
    message says what failed and what to do, and names no path: a client may read it."""

    error_type = "disk_full"
    http_status = 507

    def __init__(self, what: str, *, in_store: bool = False) -> None:
        super().__init__(f"disk full: {what} (free space on the data directory's filesystem)")
        #: The store's write failed (rather than a file's).
        self.in_store = in_store


class NodeUnreachable(LeosuiteError):
    """The node that runs the server cannot be reached (stopped, cut off, or not
    answering as a node)."""

    error_type = "node_unreachable"
    http_status = 503


class InternalError(LeosuiteError):
    error_type = "internal"
    http_status = 500


class StoreError(InternalError):
    error_type = "store"


class StoreCorrupt(StoreError):
    error_type = "store_corrupt"


class ProcessError(InternalError):
    error_type = "process"


def is_internal(exc: BaseException) -> bool:
    """A bug or an I/O failure: anything outside the error tree, or an error of it
    answered 500. Its detail (paths, SQL) is logged, never sent to a client."""
    return not isinstance(exc, LeosuiteError) or exc.http_status == 500

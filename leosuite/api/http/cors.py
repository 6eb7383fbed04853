"""Cross-origin requests (CORS) for the few paths a page elsewhere may call.

Only the paths given to :func:`attach_cors` take part, and only for the origins the
operator lists (``http.cors_origins``): such a response names the asking origin in
``Access-Control-Allow-Origin``; a preflight (``OPTIONS`` with
``Access-Control-Request-Method``) also gets the methods and request headers allowed and
how long a browser may remember them. An unlisted origin, and every other path, get no
CORS header at all, so the browser keeps the answer from the page. No credentials are
allowed: the protocols served this way carry their token in the body.

The HTTP listener checks no ``Origin`` of its own (its ``Host`` check stops DNS
rebinding, and without CORS headers a page elsewhere cannot read an answer), so a listed
origin needs nothing else to pass.
"""

from __future__ import annotations

from collections.abc import Iterable

from quart import Quart, Response, request

from ..hosts import split_authority

__all__ = ["CorsPolicy", "attach_cors", "normal_origin"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Seconds a browser may reuse a preflight's answer.
PREFLIGHT_MAX_AGE = 600


def normal_origin(origin: str) -> str | None:
    """An origin as a browser sends it: lowercase scheme and host, no default port, no
    trailing slash; None when it is not an ``http``/``https`` origin."""
    scheme, sep, authority = origin.strip().rstrip("/").partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS:
        return None
    parts = split_authority(authority)
    if parts is None:
        return None
    name, port = parts
    host = f"[{name}]" if ":" in name else name
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class CorsPolicy:
    """Which origins may read the answers of ``paths``, with what methods and headers."""

    def __init__(
        self,
        origins: Iterable[str],
        *,
        paths: Iterable[str],
        methods: Iterable[str],
        headers: Iterable[str],
    ) -> None:
        self.origins = frozenset(o for o in map(normal_origin, origins) if o is not None)
        self.paths = frozenset(paths)
        self.methods = ", ".join(methods)
        self.headers = ", ".join(headers)

    def allowed(self, path: str, origin: str | None) -> str | None:
        """The origin to name in ``Access-Control-Allow-Origin``, or None."""
        if origin is None or path not in self.paths:
            return None
        normal = normal_origin(origin)
        return origin if normal is not None and normal in self.origins else None

    def preflight(self) -> Response:
        """The answer to an ``OPTIONS`` request for one of the paths."""
        response = Response(b"", status=204)
        response.headers["Allow"] = self.methods
        allowed = self.allowed(request.path, request.headers.get("Origin"))
        if allowed is not None and "Access-Control-Request-Method" in request.headers:
            response.headers["Access-Control-Allow-Methods"] = self.methods
            response.headers["Access-Control-Allow-Headers"] = self.headers
            response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
        return response

    def decorate(self, response: Response) -> Response:
        """Name a listed origin on an answer of one of the paths (errors included)."""
        if request.path not in self.paths:
            return response
        response.vary.add("Origin")
        allowed = self.allowed(request.path, request.headers.get("Origin"))
        if allowed is not None:
            response.headers["Access-Control-Allow-Origin"] = allowed
        return response


def attach_cors(app: Quart, policy: CorsPolicy) -> None:
    """Answer preflights for the policy's paths before routing (after the listener's
    own checks), and name a listed origin on every answer of those paths."""

    async def preflight() -> Response | None:
        if request.method == "OPTIONS" and request.path in policy.paths:
            return policy.preflight()
        return None

    async def decorate(response: Response) -> Response:
        return policy.decorate(response)

    app.before_request(preflight)
    app.after_request(decorate)

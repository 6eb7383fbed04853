"""What both HTTP listeners check before routing, each refusal in the listener's own
error shape (the ``refuse(status, message, headers=...)`` it is given):

==================  ===  ==================================================================
``check_host``      421  a ``Host`` the daemon is not served under (DNS rebinding; the
                         names are :class:`~.hosts.HostPolicy`'s)
``check_origin``    403  admin listener: an ``Origin`` that is not the listener's own, or
                         ``Sec-Fetch-Site: cross-site`` (a page elsewhere using the
                         browser's saved Basic credentials)
``check_body_type`` 415  a body that is not ``application/json`` (a cross-site form can
                         send ``text/plain`` or form types, never JSON)
``check_rate``      429  HTTP API (``/api/...``, ``/rooms``): more than
                         ``http.request_burst`` requests from one address, refilled at
                         ``http.request_rate`` a second; a Bearer token of an ADMIN
                         account is not limited
==================  ===  ==================================================================

Every kind of refusal is audited at most once a minute per address (with how many
were passed over since).
"""

from __future__ import annotations

from collections.abc import Callable

import trio
from quart import Response, request

from ..audit import Actor
from ..auth.limits import Limiter
from ..auth.permissions import exempt_from_request_rate
from ..errors import AuthError
from ..public_address import public_urls
from .context import ApiContext
from .hosts import HostPolicy, bound_addresses, normal_ip
from .requests import bearer_token, body_type_problem, peer_ip

__all__ = ["RATE_LIMITED_PREFIXES", "Refuse", "RequestGuards", "local_address"]

#: ``refuse(status, message, headers=None)``: the listener's error response.
Refuse = Callable[..., Response]

#: The paths the request rate applies to (the dashboard's files are not limited).
RATE_LIMITED_PREFIXES = ("/api/", "/rooms")

#: Audit entries per address and kind of refusal: one per this many seconds.
_AUDIT_WINDOW = 60.0


def local_address() -> tuple[str, int | None]:
    """The address and port this request's connection arrived on."""
    server = request.scope.get("server")
    if not server:
        return "", None
    host, port = server[0], server[1]
    return normal_ip(host), port if isinstance(port, int) else None


class RequestGuards:
    """The ``before_request`` checks of one listener (``topic`` names it in the audit
    log: ``http`` or ``admin``)."""

    def __init__(self, ctx: ApiContext, refuse: Refuse, *, topic: str) -> None:
        self._ctx = ctx
        self._refuse = refuse
        self._topic = topic
        http = ctx.settings.http
        # The HTTP listener is served under the public URLs' names; the admin API is not.
        public = public_urls(http.public_url, ctx.settings.ws.public_url) if topic == "http" else ()
        self.policy = HostPolicy(
            http.allowed_hosts, bound=bound_addresses(ctx.endpoints), public=public
        )
        self._rate = Limiter(
            trio.current_time,
            window=http.request_burst / http.request_rate,
            limit=http.request_burst,
        )
        self._noted = Limiter(trio.current_time, window=_AUDIT_WINDOW, limit=1)

    async def _refused(
        self, status: int, message: str, what: str, *, headers: dict[str, str] | None = None
    ) -> Response:
        ip = peer_ip()
        skipped = self._noted.first(f"{status}:{ip}")
        if skipped is not None:
            more = f" ({skipped} more since the last entry)" if skipped else ""
            await self._ctx.audit.record(
                self._topic,
                f"refused ({status}) {request.method} {request.path[:200]}: {what}{more}",
                actor=Actor(ip=ip),
                level="warning",
            )
        return self._refuse(status, message, headers=headers)

    async def check_host(self) -> Response | None:
        host = request.headers.get("Host")
        if self.policy.host_allowed(host, local_address()[0]):
            return None
        return await self._refused(
            421,
            "this daemon is not served under this host name (http.allowed_hosts lists "
            "the names it answers to besides its own addresses)",
            f"Host {(host or '')[:100]!r}",
        )

    async def check_origin(self) -> Response | None:
        origin = request.headers.get("Origin")
        site = request.headers.get("Sec-Fetch-Site", "").lower()
        local_ip, port = local_address()
        own = () if port is None else (port,)
        if site != "cross-site" and self.policy.origin_allowed(origin, local_ip, own):
            return None
        return await self._refused(
            403,
            "cross-site requests are refused: this Origin is not the admin API's own",
            f"Origin {(origin or '')[:100]!r}, Sec-Fetch-Site {site[:20]!r}",
        )

    async def check_body_type(self) -> Response | None:
        problem = body_type_problem(self._ctx.settings.http.max_body_bytes)
        if problem is None:
            return None
        kind = request.headers.get("Content-Type", "(none)")
        return await self._refused(415, problem, f"Content-Type {kind[:100]!r}")

    async def check_rate(self) -> Response | None:
        if not request.path.startswith(RATE_LIMITED_PREFIXES):
            return None
        if self._rate.take(peer_ip()) or await self._exempt():
            return None
        return await self._refused(
            429,
            "too many requests from this address; slow down",
            "over http.request_rate",
            headers={"Retry-After": "1"},
        )

    async def _exempt(self) -> bool:
        """A Bearer token of an ADMIN account (bulk tools) is not limited."""
        token = bearer_token()
        if not token:
            return False
        try:
            principal = await self._ctx.auth.authenticate(token, ip=peer_ip())
        except AuthError:
            return False
        return exempt_from_request_rate(principal)

"""Admin REST API (seed 002): ``GET /status/``.

``{"started", "sessions", "maxSessions", "users", "ext_host", "ext_port"}``: when the
daemon started (ISO 8601 UTC), the chat sessions open and their limit, the members
connected (chat connections and room users), and the address chat clients connect
to. ``ext_host``/``ext_port`` come from ``ws.public_address``; without it, from the
host and port of the WebSocket API's public URL (``ws.public_url``, or the one
``http.public_url`` implies); without either, they are the WebSocket listener's own
address, and for a listener bound to a wildcard (``0.0.0.0``, ``::``) the host the
admin request was sent to (its ``Host``, which the listener has already checked). A
``ws.public_address`` without a port takes the listener's port.
"""

from __future__ import annotations

import datetime
import ipaddress
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from quart import request

from ...public_address import parse_public_address, public_urls
from ...settings import parse_address

if TYPE_CHECKING:
    from ..context import ApiContext

__all__ = ["external_address", "status_view"]


def _wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _request_host() -> str:
    """The host part of this request's ``Host`` header (brackets of IPv6 removed)."""
    host = request.host
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def external_address(ctx: ApiContext) -> tuple[str, int]:
    """(host, port) chat clients are told to connect to."""
    url = ctx.endpoints.get("ws")
    if url:
        bound = urlsplit(url)
        host, port = bound.hostname or "", bound.port or 0
    else:
        address = parse_address(ctx.settings.ws.listen, key="ws.listen")
        host, port = address.host, address.port
    if _wildcard(host) or not host:
        host = _request_host()
    settings = ctx.settings
    public_url = public_urls(settings.http.public_url, settings.ws.public_url).ws
    if settings.ws.public_address:
        public_host, public_port = parse_public_address(
            settings.ws.public_address, key="ws.public_address"
        )
        host, port = public_host, public_port or port
    elif public_url:
        parts = urlsplit(public_url)
        host = parts.hostname or host
        port = parts.port or (443 if parts.scheme == "wss" else 80)
    return host, port


async def status_view(ctx: ApiContext) -> dict[str, Any]:
    started = datetime.datetime.fromtimestamp(ctx.started_at, tz=datetime.UTC)
    users = len(ctx.chat.core.members)  # connected members (chat and rooms), not accounts
    host, port = external_address(ctx)
    return {
        "started": started.isoformat().replace("+00:00", "Z"),
        "sessions": len(ctx.chat.core.sessions),
        "maxSessions": ctx.chat.core.limits.session_count_limit,
        "users": users,
        "ext_host": host,
        "ext_port": port,
    }

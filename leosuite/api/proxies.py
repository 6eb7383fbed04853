"""Requests through a trusted reverse proxy (``http.trusted_proxies``) on every listener.

An HTTP app served with :func:`serve_behind_proxies` sees the client's address, not the
proxy's, as the request's ``remote_addr`` (so in :func:`~.requests.peer_ip`): bans,
rate limits, login limits and audit entries apply to the client. The WebSocket
listener asks :meth:`~leosuite.forwarded.TrustedProxies.client_ip` on each handshake.
A trusted proxy's connections are not counted per address (it carries many clients;
the limits per client apply once the request head has named the client).
"""

from __future__ import annotations

from typing import Any

from quart_trio import QuartTrio

from ..forwarded import TrustedProxies
from ..settings import Settings

__all__ = ["ForwardedClient", "serve_behind_proxies", "trusted_proxies"]


def trusted_proxies(settings: Settings) -> TrustedProxies:
    """The proxies ``settings`` trust (none by default)."""
    return TrustedProxies(settings.http.trusted_proxies, settings.http.forwarded_header)


class ForwardedClient:
    """ASGI: the scope's ``client`` is the address the trusted proxies name."""

    def __init__(self, app: Any, proxies: TrustedProxies) -> None:
        self._app = app
        self._proxies = proxies

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client:
            ip = self._proxies.client_ip(str(client[0]), scope.get("headers", ()))
            if ip != client[0]:
                scope = {**scope, "client": (ip, 0)}
        await self._app(scope, receive, send)


def serve_behind_proxies(app: QuartTrio, proxies: TrustedProxies) -> None:
    """Give ``app``'s requests the client address the trusted proxies name."""
    if proxies:
        app.asgi_app = ForwardedClient(app.asgi_app, proxies)  # type: ignore[method-assign]

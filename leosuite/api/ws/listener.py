"""The WebSocket listener: one trio-websocket server, routing by path.

``/`` is the WebSocket API (seed 000), ``/chat/login/<nick>`` the chat (seed 003);
any other path is refused at the handshake with 404, a foreign ``Origin`` with 403.
Every handler catches everything: an exception escaping a trio-websocket handler would
take the whole listener down.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import msgspec
import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, WebSocketServer

from ..._compat.trio_websocket import handshake_host
from ...audit import Actor
from ..ban_check import refuse_banned_websocket
from ..context import ApiContext
from .api import WsApi
from .chat import CHAT_PREFIX, WsChat
from .dashboard import install_dashboard_calls
from .sessions import install_session_calls

__all__ = [
    "Route",
    "WebSocketListener",
    "origin_allowed",
    "serve_echo",
    "websocket_listener",
]

log = logging.getLogger("leosuite.ws")

Route = Callable[[WebSocketRequest, str], Awaitable[None]]


def _normal_ip(address: object) -> str:
    """``::ffff:1.2.3.4`` is the IPv4 peer ``1.2.3.4``."""
    text = str(address)
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


async def serve_echo(request: WebSocketRequest, ip: str) -> None:
    """Testing only (``ws.echo_path``): echo every message, for the Autobahn suite."""
    ws = await request.accept()
    while True:
        await ws.send_message(await ws.get_message())


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
    # wsproto takes the Host header out of ``headers``; the header stays as a fallback.
    host = handshake_host(request) or headers.get(b"host", b"").decode("latin-1")
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


def _error_body(status: int, message: str) -> bytes:
    return msgspec.json.encode(
        {"error_type": "not_found" if status == 404 else "forbidden", "error_message": message}
    )


class WebSocketListener:
    def __init__(self, ctx: ApiContext, sock: socket.socket) -> None:
        self._ctx = ctx
        self._socket = sock
        self._routes: list[tuple[str, Route]] = []

    def _own_origins(self) -> tuple[str, ...]:
        """The daemon's own HTTP API as a browser names it (``127.0.0.1`` also as
        ``localhost``): pages it serves may open the WebSocket."""
        http = self._ctx.endpoints.get("http", "")
        if not http:
            return ()
        return (http, http.replace("://127.0.0.1:", "://localhost:"))

    def route(self, prefix: str, handler: Route) -> None:
        """``prefix`` ``"/"`` matches only ``/``; others match the path prefix."""
        self._routes.append((prefix, handler))

    def _find(self, path: str) -> Route | None:
        for prefix, handler in self._routes:
            if (prefix == "/" and path == "/") or (prefix != "/" and path.startswith(prefix)):
                return handler
        return None

    async def _handle(self, request: WebSocketRequest) -> None:
        path = urlsplit(request.path).path
        handler = self._find(path)
        peer = request.remote
        ip = _normal_ip(peer.address if hasattr(peer, "address") else str(peer))
        try:
            if await refuse_banned_websocket(self._ctx, request, ip):
                return
            if handler is None:
                await request.reject(404, body=_error_body(404, f"no WebSocket endpoint at {path}"))
                return
            if not origin_allowed(
                request,
                self._ctx.settings.ws.allowed_origins,
                own_origins=self._own_origins(),
                http_port=urlsplit(self._ctx.endpoints.get("http", "")).port,
            ):
                await self._ctx.audit.record(
                    "ws",
                    f"handshake refused: foreign Origin on {path}",
                    actor=Actor(ip=str(ip)),
                    level="warning",
                )
                await request.reject(403, body=_error_body(403, "this Origin is not allowed"))
                return
            await handler(request, str(ip))
        except ConnectionClosed:
            pass
        except trio.Cancelled:
            raise
        except Exception:
            log.exception("WebSocket handler for %s failed", path)

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(self._socket))
        server = WebSocketServer(
            self._handle,
            [listener],
            max_message_size=self._ctx.settings.ws.max_message_bytes,
            connect_timeout=10,
            disconnect_timeout=5,
        )
        async with trio.open_nursery() as nursery:
            started: WebSocketServer = await nursery.start(server.run)
            task_status.started(started.port)


def websocket_listener(ctx: ApiContext, sock: socket.socket) -> WebSocketListener:
    """The listener with every route: the API on ``/``, the chat, and ``/echo`` when
    ``ws.echo_path`` is on."""
    listener = WebSocketListener(ctx, sock)
    ws_api = WsApi(ctx, ctx.ws_hub)
    install_dashboard_calls(ws_api)
    install_session_calls(ws_api)
    listener.route("/", ws_api.serve)
    listener.route(CHAT_PREFIX, WsChat(ctx).serve)
    if ctx.settings.ws.echo_path:
        log.warning("ws.echo_path is on: /echo echoes messages (for conformance tests only)")
        listener.route("/echo", serve_echo)
    return listener

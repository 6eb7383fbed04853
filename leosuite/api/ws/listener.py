"""The WebSocket listener: one trio-websocket server, routing by path.

``/`` is the WebSocket API (seed 000), ``/chat/login/<nick>`` the chat (seed 003).
The handshake is refused, in this order: a ``Host`` the daemon is not served under
with 421 (DNS rebinding), a banned address with 403, any other path with 404, and an
``Origin`` that is neither an allowed name on the daemon's own ports, nor in
``ws.allowed_origins``, nor another node's dashboard (its ``public_url``) with 403
(:class:`~leosuite.api.hosts.HostPolicy` decides both names). Every handler catches
everything: an exception escaping a trio-websocket handler would take the whole
listener down.

Behind a reverse proxy (``ws.public_url``, or ``/ws/`` under ``http.public_url``) the
proxy strips the public URL's path, so the listener serves its own paths whatever the
public one is. The public URLs' names and the dashboard's public origin are served. A
handshake from one of ``http.trusted_proxies`` counts as the client's that the
proxy's forwarding header names, for bans, limits and the audit log
(:mod:`leosuite.forwarded`).

Connections are counted per address from the moment they are accepted, before any
handshake: one more than twice ``ws.max_connections_per_ip`` from an address (API and
chat are capped separately after the handshake) is answered 429 within a second and
closed, without waiting for a handshake; one more than twice ``ws.max_connections`` in
all is closed at once. A connection that sends no handshake within
``ws.handshake_timeout`` seconds is closed.
With a :class:`~leosuite.api.fd_reserve.DescriptorReserve`, a connection that would
take the descriptors kept for the rest of the daemon is answered 503 and closed.

The listener can stop accepting while its connections live on
(:meth:`WebSocketListener.stop_accepting`), so that a reload closes them cleanly
(:meth:`WebSocketListener.close_connections`, code 1012) while new connection
attempts wait in the socket's accept queue for the next image.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from functools import partial
from urllib.parse import urlsplit

import msgspec
import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, WebSocketServer

from ..._compat.trio_websocket import connection_handler, handshake_host
from ...audit import Actor
from ...auth.limits import Limiter
from ...cluster.nodes import url_origin
from ...public_address import public_urls
from ..ban_check import refuse_banned_websocket
from ..context import ApiContext
from ..fd_reserve import DescriptorReserve, ReservedListener
from ..hosts import HostPolicy, bound_addresses, normal_ip
from ..proxies import trusted_proxies
from ..serve import ConnectionGate
from .admin_calls import install_admin_calls
from .api import WsApi
from .backups import install_backup_calls
from .chat import CHAT_PREFIX, WsChat
from .conn import WsHub
from .create_bulk import install_create_bulk
from .dashboard import install_dashboard_calls
from .fanout import echo
from .logfiles import install_logfile_calls
from .power_bulk import install_power_bulk
from .schedules import install_schedule_calls
from .sessions import install_session_calls
from .shares import install_share_calls

__all__ = [
    "CLOSE_SERVICE_RESTART",
    "Route",
    "WebSocketListener",
    "serve_echo",
    "websocket_listener",
]

log = logging.getLogger("leosuite.ws")

TOO_MANY_CONNECTIONS = "too many WebSocket connections from this address"
#: WebSocket close code (RFC 6455): the daemon restarts; reconnect.
CLOSE_SERVICE_RESTART = 1012
#: Connections over a cap that are answered at once; any more are closed unanswered.
_MAX_ANSWERING = 64

Route = Callable[[WebSocketRequest, str], Awaitable[None]]


async def serve_echo(request: WebSocketRequest, ip: str) -> None:
    """Testing only (``ws.echo_path``): echo every message, for the Autobahn suite,
    through the write path every connection uses (:func:`.fanout.echo`)."""
    await echo(await request.accept())


def _header(request: WebSocketRequest, name: bytes) -> str | None:
    for key, value in request.headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _address(endpoint: object) -> str:
    return normal_ip(getattr(endpoint, "address", endpoint))


def _error_body(status: int, message: str) -> bytes:
    error_type = {404: "not_found", 421: "misdirected", 429: "rate_limited"}.get(
        status, "forbidden"
    )
    return msgspec.json.encode({"error_type": error_type, "error_message": message})


class WebSocketListener:
    def __init__(
        self, ctx: ApiContext, sock: socket.socket, *, reserve: DescriptorReserve | None = None
    ) -> None:
        self._ctx = ctx
        self._socket = sock
        #: Refuses connections rather than let them exhaust the descriptors.
        self._reserve = reserve
        self._routes: list[tuple[str, Route]] = []
        public = public_urls(ctx.settings.http.public_url, ctx.settings.ws.public_url)
        #: The path the WebSocket API has in its public URL (a proxy strips it).
        self._public_path = urlsplit(public.ws).path if public.ws else "/"
        self.policy = HostPolicy(
            ctx.settings.http.allowed_hosts,
            ctx.settings.ws.allowed_origins,
            bound=bound_addresses(ctx.endpoints),
            public=public,
        )
        self.proxies = trusted_proxies(ctx.settings)
        self._noted = Limiter(trio.current_time, window=60.0, limit=1)
        caps = ctx.settings.ws
        self.gate = ConnectionGate(
            2 * caps.max_connections_per_ip,
            body=_error_body(429, TOO_MANY_CONNECTIONS),
            audit=ctx.audit,
            topic="ws",
            exempt=self.proxies.trusts,
        )
        self.max_open = 2 * caps.max_connections
        self._open = 0
        self._answering = 0
        #: Every hub whose connections this listener serves.
        self.hubs: list[WsHub] = [ctx.ws_hub]
        self._accepting = trio.CancelScope()
        #: Connections that have not sent their handshake request yet, by their task.
        self._handshaking: dict[trio.lowlevel.Task, trio.CancelScope] = {}

    def stop_accepting(self) -> None:
        """Close the listening socket and the connections that have not sent their
        handshake request yet; open WebSocket connections go on."""
        self._accepting.cancel()
        for handshake in self._handshaking.values():
            handshake.cancel()

    def close_connections(self, code: int, reason: str) -> None:
        """Close every open connection with ``code``."""
        for hub in self.hubs:
            hub.close_all(code, reason)

    def _own_ports(self, request: WebSocketRequest) -> tuple[int, ...]:
        """The ports of the daemon's own pages: this listener's and the HTTP API's."""
        ports = [
            getattr(request.local, "port", None),
            urlsplit(self._ctx.endpoints.get("http", "")).port,
        ]
        return tuple(port for port in ports if isinstance(port, int))

    def _fleet_page(self, origin: str | None) -> bool:
        """Whether ``origin`` is another node's dashboard (its ``public_url``): its
        pages read this node's consoles with console tokens."""
        nodes = self._ctx.nodes
        if origin is None or nodes is None:
            return False
        return url_origin(origin) in nodes.other_origins()[0]

    async def _refuse(
        self, request: WebSocketRequest, ip: str, status: int, message: str, what: str
    ) -> None:
        """Refuse the handshake; audited once a minute per address and status."""
        skipped = self._noted.first(f"{status}:{ip}")
        if skipped is not None:
            more = f" ({skipped} more since the last entry)" if skipped else ""
            path = urlsplit(request.path).path[:200]  # never the query: it may hold a token
            await self._ctx.audit.record(
                "ws",
                f"handshake refused ({status}) on {path}: {what}{more}",
                actor=Actor(ip=ip),
                level="warning",
            )
        await request.reject(status, body=_error_body(status, message))

    def route(self, prefix: str, handler: Route) -> None:
        """``prefix`` ``"/"`` matches only ``/``; others match the path prefix."""
        self._routes.append((prefix, handler))

    def _find(self, path: str) -> Route | None:
        for prefix, handler in self._routes:
            if (prefix == "/" and path == "/") or (prefix != "/" and path.startswith(prefix)):
                return handler
        return None

    async def _handle(self, request: WebSocketRequest) -> None:
        # Runs in the connection's own task: its handshake request has come.
        self._handshaking.pop(trio.lowlevel.current_task(), None)
        path = urlsplit(request.path).path
        handler = self._find(path)
        ip = self.proxies.client_ip(_address(request.remote), request.headers)
        local_ip = _address(request.local)
        try:
            # wsproto moves the Host header out of ``headers``; the header is a fallback.
            host = handshake_host(request) or _header(request, b"host")
            if not self.policy.host_allowed(host, local_ip):
                shown = (host or "")[:100]
                await self._refuse(
                    request,
                    ip,
                    421,
                    "this daemon is not served under this host name",
                    f"Host {shown!r}",
                )
                return
            if await refuse_banned_websocket(self._ctx, request, ip):
                return
            if handler is None:
                message = f"no WebSocket endpoint at {path}"
                if self._public_path != "/" and path.startswith(self._public_path.rstrip("/")):
                    message += f" (a reverse proxy must strip {self._public_path} before it)"
                await request.reject(404, body=_error_body(404, message))
                return
            origin = _header(request, b"origin")
            if not (
                self.policy.origin_allowed(origin, local_ip, self._own_ports(request))
                or self._fleet_page(origin)
            ):
                shown = (origin or "")[:100]
                await self._refuse(
                    request, ip, 403, "this Origin is not allowed", f"foreign Origin {shown!r}"
                )
                return
            await handler(request, ip)
        except ConnectionClosed:
            pass
        except trio.Cancelled:
            raise
        except Exception:
            log.exception("WebSocket handler for %s failed", path)

    async def _accepted(
        self, handle: Callable[[trio.SocketStream], Awaitable[None]], stream: trio.SocketStream
    ) -> None:
        """Serve one accepted connection, or refuse it at once when over a cap."""
        try:
            ip = _address(stream.socket.getpeername()[0])
        except OSError:  # the peer is already gone
            await trio.aclose_forcefully(stream)
            return
        if self._open >= self.max_open or not self.gate.enter(ip):
            if self._open >= self.max_open or self._answering >= _MAX_ANSWERING:
                await trio.aclose_forcefully(stream)
                return
            self._answering += 1
            try:
                await self.gate.refuse(stream, ip)
            finally:
                self._answering -= 1
            return
        self._open += 1
        task = trio.lowlevel.current_task()
        try:
            with trio.CancelScope() as handshake:
                self._handshaking[task] = handshake
                if self._accepting.cancel_called:
                    handshake.cancel()
                await handle(stream)
            if handshake.cancelled_caught:
                await trio.aclose_forcefully(stream)
        finally:
            self._handshaking.pop(task, None)
            self._open -= 1
            self.gate.leave(ip)

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(self._socket))
        server = WebSocketServer(
            self._handle,
            [listener],
            max_message_size=self._ctx.settings.ws.max_message_bytes,
            connect_timeout=self._ctx.settings.ws.handshake_timeout,
            disconnect_timeout=5,
        )
        handle = connection_handler(server)
        async with trio.open_nursery() as connections:
            with self._accepting:
                async with trio.open_nursery() as nursery:
                    if handle is None:
                        log.warning("WebSocket connections are counted only after their handshake")
                        started: WebSocketServer = await nursery.start(server.run)
                        task_status.started(started.port)
                        return
                    accepting: trio.abc.Listener[trio.SocketStream] = listener
                    if self._reserve is not None:
                        accepting = ReservedListener(listener, self._reserve)
                    serve = partial(
                        trio.serve_listeners,
                        partial(self._accepted, handle),
                        [accepting],
                        handler_nursery=connections,
                    )
                    await nursery.start(serve)
                    task_status.started(self._socket.getsockname()[1])


def websocket_listener(
    ctx: ApiContext, sock: socket.socket, *, reserve: DescriptorReserve | None = None
) -> WebSocketListener:
    """The listener with every route: the API on ``/``, the chat, and ``/echo`` when
    ``ws.echo_path`` is on."""
    listener = WebSocketListener(ctx, sock, reserve=reserve)
    ws_api = WsApi(ctx, ctx.ws_hub)
    install_dashboard_calls(ws_api)
    install_power_bulk(ws_api)
    install_create_bulk(ws_api)
    install_logfile_calls(ws_api)
    install_session_calls(ws_api)
    install_share_calls(ws_api)
    install_schedule_calls(ws_api)
    install_backup_calls(ws_api)
    install_admin_calls(ws_api)
    listener.route("/", ws_api.serve)
    chat = WsChat(ctx)
    listener.hubs.append(chat.hub)
    listener.route(CHAT_PREFIX, chat.serve)
    if ctx.settings.ws.echo_path:
        log.warning("ws.echo_path is on: /echo echoes messages (for conformance tests only)")
        listener.route("/echo", serve_echo)
    return listener

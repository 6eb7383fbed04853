"""Running a quart-trio app under hypercorn's trio worker on a socket we bound.

Binding ourselves (in the daemon, before anything starts) turns "port taken" into
one clear line instead of a traceback, and lets port 0 be read back at once. The
patches hypercorn needs under quart-trio are :mod:`leosuite._compat.hypercorn`'s.

An app may bring a :class:`ConnectionGate` (:func:`attach_connection_gate`): at most
so many connections per client address are served at once; one more is answered
with the gate's error and closed.

A request whose ``Host`` is no valid name (an empty label, one over 63 characters)
is answered 400 in the app's error shape (:func:`attach_error_shape`) before the app
sees it: the framework would fail on it with a 500 and a traceback.
"""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Callable
from typing import Any

import msgspec
import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app
from quart_trio import QuartTrio

from .._compat.hypercorn import install_shield_patches, set_connection_gate
from .._compat.hypercorn_listeners import install_listener_wrapping, set_listener_wrapper
from ..audit import Actor, AuditLog
from ..auth.limits import Limiter
from ..startup import LISTEN_BACKLOG
from .fd_reserve import DescriptorReserve, ReservedListener
from .hosts import normal_ip

__all__ = [
    "ConnectionGate",
    "ErrorShape",
    "attach_connection_gate",
    "attach_error_shape",
    "host_is_valid",
    "serve_app",
]

log = logging.getLogger("leosuite.http")

_GATE_KEY = "leosuite.connection_gate"
_SHAPE_KEY = "leosuite.error_shape"
MALFORMED_HOST = "the Host header is not a valid host name"

#: ``shape(path, status, message)``: the JSON body of an error answer for ``path``.
ErrorShape = Callable[[str, int, str], bytes]
#: How long a refused connection may take to send its request head, and then to read
#: the answer.
REFUSAL_DEADLINE = 1.0
#: The most of a refused connection's request that is read (and thrown away).
_REFUSAL_READ = 16 * 1024


class ConnectionGate:
    """At most ``per_ip`` open connections per client address on one listener. The
    one over it gets a 429 with the JSON ``body`` and is closed; refusals are audited
    once a minute per address. Peers for which ``exempt`` is true (trusted reverse
    proxies, which carry many clients) are not counted."""

    def __init__(
        self,
        per_ip: int,
        *,
        body: bytes,
        audit: AuditLog,
        topic: str,
        exempt: Callable[[str], bool] | None = None,
    ) -> None:
        self.per_ip = per_ip
        self._exempt = exempt
        self._open: dict[str, int] = {}
        self._audit = audit
        self._topic = topic
        self._noted = Limiter(trio.current_time, window=60.0, limit=1)
        self._answer = (
            "HTTP/1.1 429 Too Many Requests\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Retry-After: 1\r\n"
            "Connection: close\r\n\r\n"
        ).encode() + body

    def statistics(self) -> dict[str, int]:
        return {"open": sum(self._open.values()), "addresses": len(self._open)}

    def enter(self, peer: str) -> bool:
        ip = normal_ip(peer)
        if self._exempt is not None and self._exempt(ip):
            return True
        count = self._open.get(ip, 0)
        if count >= self.per_ip:
            return False
        self._open[ip] = count + 1
        return True

    def leave(self, peer: str) -> None:
        ip = normal_ip(peer)
        if self._exempt is not None and self._exempt(ip):
            return
        count = self._open.get(ip, 0) - 1
        if count > 0:
            self._open[ip] = count
        else:
            self._open.pop(ip, None)

    async def refuse(self, stream: trio.SocketStream, peer: str) -> None:
        """Read the request head (so closing does not reset the answer away), answer,
        and close; each step within :data:`REFUSAL_DEADLINE`."""
        ip = normal_ip(peer)
        try:
            await self._note(ip)
            with trio.move_on_after(REFUSAL_DEADLINE):
                received = b""
                while b"\r\n\r\n" not in received and len(received) < _REFUSAL_READ:
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        break
                    received += chunk
            with trio.move_on_after(REFUSAL_DEADLINE):
                await stream.send_all(self._answer)
                await stream.send_eof()
                while await stream.receive_some(4096):
                    pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await stream.aclose()

    async def _note(self, ip: str) -> None:
        skipped = self._noted.first(ip)
        if skipped is None:
            return
        more = f" ({skipped} more since the last entry)" if skipped else ""
        await self._audit.record(
            self._topic,
            f"connection refused: over {self.per_ip} open connections from this address{more}",
            actor=Actor(ip=ip),
            level="warning",
        )


def attach_connection_gate(app: QuartTrio, gate: ConnectionGate) -> None:
    """Serve ``app`` behind ``gate`` (read by :func:`serve_app`)."""
    app.extensions[_GATE_KEY] = gate


def attach_error_shape(app: QuartTrio, shape: ErrorShape) -> None:
    """Answer requests refused before ``app`` sees them in ``shape``."""
    app.extensions[_SHAPE_KEY] = shape


def _api_shape(path: str, status: int, message: str) -> bytes:
    return msgspec.json.encode({"error_type": "invalid", "error_message": message})


def host_is_valid(host: str) -> bool:
    """Whether the framework can route a request with this ``Host`` header: each label
    of its name (the port aside) 1 to 63 characters once IDNA-encoded."""
    name = host.lower().partition(":")[0]
    try:
        name.encode("idna")
    except UnicodeError:
        return False
    return True


class _HostCheck:
    """ASGI: a request with a malformed ``Host`` gets a 400 in the app's shape."""

    def __init__(self, app: Any, shape: ErrorShape) -> None:
        self._app = app
        self._shape = shape

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind in ("http", "websocket"):
            host = next((v for k, v in scope.get("headers", ()) if k == b"host"), b"")
            if not host_is_valid(host.decode("latin-1")):
                await self._refuse(scope, send)
                return
        await self._app(scope, receive, send)

    async def _refuse(self, scope: Any, send: Any) -> None:
        body = self._shape(scope.get("path", "/"), 400, MALFORMED_HOST)
        head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 400, "headers": head})
            await send({"type": "http.response.body", "body": body})
        elif "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": 400, "headers": head})
            await send({"type": "websocket.http.response.body", "body": body})
        else:  # pragma: no cover - every hypercorn we run offers the extension
            await send({"type": "websocket.close", "code": 1008})


async def serve_app(
    app: QuartTrio,
    sock: socket.socket,
    *,
    read_timeout: float,
    keep_alive_timeout: float,
    graceful_timeout: float,
    shutdown: trio.Event,
    reserve: DescriptorReserve | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until ``shutdown`` is set, then drain in-flight requests (bounded); with a
    ``reserve``, connections are refused rather than let exhaust the descriptors."""
    patched = install_shield_patches()
    config = Config()
    # hypercorn wants whole seconds; int() would turn 0.5 into 0, i.e. no timeout.
    config.read_timeout = math.ceil(read_timeout)
    config.keep_alive_timeout = keep_alive_timeout
    config.graceful_timeout = graceful_timeout
    config.accesslog = None
    config.errorlog = logging.getLogger("leosuite.hypercorn")
    config.include_server_header = False
    # Only used if hypercorn listens again: it must not shrink the accept queue.
    config.backlog = LISTEN_BACKLOG
    gate = app.extensions.get(_GATE_KEY)
    if isinstance(gate, ConnectionGate):
        if patched:
            set_connection_gate(config, gate)
        else:  # pragma: no cover - only with another hypercorn pinned
            log.warning("connections per address are not capped with this hypercorn")
    if reserve is not None and install_listener_wrapping():
        set_listener_wrapper(config, lambda listener: ReservedListener(listener, reserve))
    sockets = Sockets(secure_sockets=[], insecure_sockets=[sock], quic_sockets=[])
    shape = app.extensions.get(_SHAPE_KEY, _api_shape)
    await worker_serve(
        wrap_app(_HostCheck(app, shape), config.wsgi_max_body_size, "asgi"),
        config,
        sockets=sockets,
        shutdown_trigger=shutdown.wait,
        task_status=task_status,
    )

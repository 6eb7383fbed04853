"""Running a quart-trio app under hypercorn's trio worker on a socket we bound.

Binding ourselves (in the daemon, before anything starts) turns "port taken" into
one clear line instead of a traceback, and lets port 0 be read back at once. The
patches hypercorn needs under quart-trio are :mod:`leosuite._compat.hypercorn`'s.

An app may bring a :class:`ConnectionGate` (:func:`attach_connection_gate`): at most
so many connections per client address are served at once; one more is answered
with the gate's error and closed.
"""

from __future__ import annotations

import logging
import math
import socket

import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app
from quart_trio import QuartTrio

from .._compat.hypercorn import install_shield_patches, set_connection_gate
from ..audit import Actor, AuditLog
from ..auth.limits import Limiter
from .hosts import normal_ip

__all__ = ["ConnectionGate", "attach_connection_gate", "serve_app"]

log = logging.getLogger("leosuite.http")

_GATE_KEY = "leosuite.connection_gate"
#: How long a refused connection may take to send its request head, and then to read
#: the answer.
REFUSAL_DEADLINE = 1.0
#: The most of a refused connection's request that is read (and thrown away).
_REFUSAL_READ = 16 * 1024


class ConnectionGate:
    """At most ``per_ip`` open connections per client address on one listener. The
    one over it gets a 429 with the JSON ``body`` and is closed; refusals are audited
    once a minute per address."""

    def __init__(self, per_ip: int, *, body: bytes, audit: AuditLog, topic: str) -> None:
        self.per_ip = per_ip
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
        count = self._open.get(ip, 0)
        if count >= self.per_ip:
            return False
        self._open[ip] = count + 1
        return True

    def leave(self, peer: str) -> None:
        ip = normal_ip(peer)
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


async def serve_app(
    app: QuartTrio,
    sock: socket.socket,
    *,
    read_timeout: float,
    keep_alive_timeout: float,
    graceful_timeout: float,
    shutdown: trio.Event,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until ``shutdown`` is set, then drain in-flight requests (bounded)."""
    patched = install_shield_patches()
    config = Config()
    # hypercorn wants whole seconds; int() would turn 0.5 into 0, i.e. no timeout.
    config.read_timeout = math.ceil(read_timeout)
    config.keep_alive_timeout = keep_alive_timeout
    config.graceful_timeout = graceful_timeout
    config.accesslog = None
    config.errorlog = logging.getLogger("leosuite.hypercorn")
    config.include_server_header = False
    gate = app.extensions.get(_GATE_KEY)
    if isinstance(gate, ConnectionGate):
        if patched:
            set_connection_gate(config, gate)
        else:  # pragma: no cover - only with another hypercorn pinned
            log.warning("connections per address are not capped with this hypercorn")
    sockets = Sockets(secure_sockets=[], insecure_sockets=[sock], quic_sockets=[])
    await worker_serve(
        wrap_app(app, config.wsgi_max_body_size, "asgi"),
        config,
        sockets=sockets,
        shutdown_trigger=shutdown.wait,
        task_status=task_status,
    )

"""Running a quart-trio app under hypercorn's trio worker on a socket we bound.

Binding ourselves (in the daemon, before anything starts) turns "port taken" into
one clear line instead of a traceback, and lets port 0 be read back at once.

Also holds two small, version-pinned patches for hypercorn 0.18 under quart-trio,
which cancels a request's task as soon as its response is sent:

* STACK.md gotcha 1: when the app answers before a request body has fully arrived
  (404/405/413 on a big body), the cancelled task was running ``TCPServer._close()``
  and the connection was left hanging. ``_close`` now runs shielded.
* The same cancellation hit ``TCPServer.protocol_send(Updated(idle=True))`` after
  every response, so the keep-alive idle timer never started: idle keep-alive
  connections were never closed, and a graceful shutdown waited the whole
  ``graceful_timeout`` (30 s) for them. ``protocol_send`` now runs shielded (its
  socket writes were shielded already).
"""

from __future__ import annotations

import logging
import math
import socket
from importlib.metadata import version

import trio
from hypercorn.config import Config, Sockets
from hypercorn.events import Event
from hypercorn.trio.run import worker_serve
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.utils import wrap_app
from quart_trio import QuartTrio

__all__ = ["serve_app"]

log = logging.getLogger("leosuite.http")

_HYPERCORN = version("hypercorn")
_original_close = TCPServer._close
_original_protocol_send = TCPServer.protocol_send


async def _shielded_close(self: TCPServer) -> None:
    with trio.CancelScope(shield=True):
        await _original_close(self)


async def _shielded_protocol_send(self: TCPServer, event: Event) -> None:
    with trio.CancelScope(shield=True):
        await _original_protocol_send(self, event)


if _HYPERCORN.startswith("0.18."):
    TCPServer._close = _shielded_close  # type: ignore[method-assign]
    TCPServer.protocol_send = _shielded_protocol_send  # type: ignore[method-assign]
else:  # pragma: no cover - re-check gotcha 1 before widening the pin
    log.warning("hypercorn %s: the shield patches are not applied", _HYPERCORN)


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
    config = Config()
    # hypercorn wants whole seconds; int() would turn 0.5 into 0, i.e. no timeout.
    config.read_timeout = math.ceil(read_timeout)
    config.keep_alive_timeout = keep_alive_timeout
    config.graceful_timeout = graceful_timeout
    config.accesslog = None
    config.errorlog = logging.getLogger("leosuite.hypercorn")
    config.include_server_header = False
    sockets = Sockets(secure_sockets=[], insecure_sockets=[sock], quic_sockets=[])
    await worker_serve(
        wrap_app(app, config.wsgi_max_body_size, "asgi"),
        config,
        sockets=sockets,
        shutdown_trigger=shutdown.wait,
        task_status=task_status,
    )

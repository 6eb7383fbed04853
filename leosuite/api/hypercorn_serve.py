"""Running a quart-trio app under hypercorn's trio worker on a socket we bound.

Binding ourselves (in the daemon, before anything starts) turns "port taken" into
one clear line instead of a traceback, and lets port 0 be read back at once.

Also holds a small, version-pinned patch for hypercorn 0.18 (STACK.md gotcha 1):
when the app answers before a request body has fully arrived (404/405/413 on a big
body), quart-trio cancels the task running ``TCPServer._close()`` and the
connection is left hanging. Running the original ``_close`` under a shielded
cancel scope fixes it.
"""

from __future__ import annotations

import logging
import math
import socket
from importlib.metadata import version

import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.utils import wrap_app
from quart_trio import QuartTrio

__all__ = ["serve_app"]

log = logging.getLogger("leosuite.http")

_HYPERCORN = version("hypercorn")
_original_close = TCPServer._close


async def _shielded_close(self: TCPServer) -> None:
    with trio.CancelScope(shield=True):
        await _original_close(self)


if _HYPERCORN.startswith("0.18."):
    TCPServer._close = _shielded_close  # type: ignore[method-assign]
else:  # pragma: no cover - re-check gotcha 1 before widening the pin
    log.warning("hypercorn %s: the _close shield patch is not applied", _HYPERCORN)


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

"""Running a quart-trio app under hypercorn's trio worker on a socket we bound.

Binding ourselves (in the daemon, before anything starts) turns "port taken" into
one clear line instead of a traceback, and lets port 0 be read back at once. The
patches hypercorn needs under quart-trio are :mod:`leosuite._compat.hypercorn`'s.
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

from .._compat.hypercorn import install_shield_patches

__all__ = ["serve_app"]


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
    install_shield_patches()
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

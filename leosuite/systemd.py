"""The bits of the systemd service protocol leosuite speaks: ``sd_notify`` and the watchdog.

No dependency: a datagram to ``$NOTIFY_SOCKET`` is all ``READY=1``, ``STOPPING=1``,
``RELOADING=1`` and ``WATCHDOG=1`` need. Everything is a no-op outside systemd.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

import trio

__all__ = ["notify", "ping_watchdog", "watchdog_interval"]

log = logging.getLogger("leosuite.systemd")


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to systemd; False when not under systemd."""
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("sd_notify(%s) failed: %s", state, exc)
        return False
    return True


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WatchdogSec``), or None."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1_000_000 / 2


async def ping_watchdog(interval: float, environ: Mapping[str, str] | None = None) -> None:
    """Send ``WATCHDOG=1`` every ``interval`` seconds, forever."""
    while True:
        notify("WATCHDOG=1", environ)
        await trio.sleep(interval)

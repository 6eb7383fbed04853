"""hypercorn internals: two shield patches for hypercorn 0.18 under quart-trio, and a
connection gate.

quart-trio cancels a request's task as soon as its response is sent, which hit
``TCPServer`` in two places:

* when the app answers before a request body has fully arrived (404/405/413 on a big
  body), the cancelled task was running ``TCPServer._close()`` and the connection was
  left hanging: ``_close`` now runs shielded;
* ``TCPServer.protocol_send(Updated(idle=True))`` after every response was cancelled
  too, so the keep-alive idle timer never started: idle keep-alive connections were
  never closed and a graceful shutdown waited its whole ``graceful_timeout`` for them.
  ``protocol_send`` now runs shielded (its socket writes were shielded already).

Two more patches let a listener cap its connections per client address:

* ``TCPServer.run`` asks the :class:`ConnectionGate` set on the listener's ``Config``
  (:func:`set_connection_gate`) before serving a connection, and hands the ones it
  refuses back to it;
* a connection whose client has closed it lingered until its keep-alive timer ran out
  (the timer's task kept ``run`` from returning, and the socket open): once reading
  has ended, ``TCPServer._read_data`` now stops that timer.

Other hypercorn versions are served unpatched (and without a connection gate), with a
warning: check all four again before widening the pin.
"""

from __future__ import annotations

import logging
from importlib.metadata import version
from typing import Protocol

import trio
from hypercorn.config import Config
from hypercorn.events import Event
from hypercorn.trio.tcp_server import TCPServer

__all__ = [
    "HYPERCORN_VERSION",
    "PATCHED_FOR",
    "ConnectionGate",
    "install_shield_patches",
    "set_connection_gate",
]

log = logging.getLogger("leosuite.http")

HYPERCORN_VERSION = version("hypercorn")
#: The version prefix the patches were written for.
PATCHED_FOR = "0.18."

_original_close = TCPServer._close
_original_protocol_send = TCPServer.protocol_send
_original_run = TCPServer.run
_original_read_data = TCPServer._read_data
_installed: list[bool] = []
_GATE_ATTRIBUTE = "_leosuite_connection_gate"


class ConnectionGate(Protocol):
    """Admits connections by peer address; :meth:`refuse` answers and closes one."""

    def enter(self, peer: str) -> bool: ...

    def leave(self, peer: str) -> None: ...

    async def refuse(self, stream: trio.SocketStream, peer: str) -> None: ...


def set_connection_gate(config: Config, gate: ConnectionGate) -> None:
    """Every connection of the listener served with ``config`` passes ``gate`` first."""
    setattr(config, _GATE_ATTRIBUTE, gate)


async def _shielded_close(self: TCPServer) -> None:
    with trio.CancelScope(shield=True):
        await _original_close(self)


async def _shielded_protocol_send(self: TCPServer, event: Event) -> None:
    with trio.CancelScope(shield=True):
        await _original_protocol_send(self, event)


async def _read_data_then_stop_idle(self: TCPServer) -> None:
    await _original_read_data(self)
    await self.idle_task.stop()


async def _gated_run(self: TCPServer) -> None:
    gate: ConnectionGate | None = getattr(self.config, _GATE_ATTRIBUTE, None)
    stream = self.stream
    if gate is None or not isinstance(stream, trio.SocketStream):
        await _original_run(self)
        return
    try:
        peer = str(stream.socket.getpeername()[0])
    except OSError:  # gone already
        await stream.aclose()
        return
    if not gate.enter(peer):
        await gate.refuse(stream, peer)
        return
    try:
        await _original_run(self)
    finally:
        gate.leave(peer)


def install_shield_patches() -> bool:
    """Patch ``TCPServer`` once (the shields and the connection gate) if hypercorn is
    the version this was written for; return whether the patches are in place."""
    if not _installed:
        supported = HYPERCORN_VERSION.startswith(PATCHED_FOR)
        if supported:
            TCPServer._close = _shielded_close  # type: ignore[method-assign]
            TCPServer.protocol_send = _shielded_protocol_send  # type: ignore[method-assign]
            TCPServer.run = _gated_run  # type: ignore[method-assign]
            TCPServer._read_data = _read_data_then_stop_idle  # type: ignore[method-assign]
        else:  # pragma: no cover - only with another hypercorn pinned
            log.warning("hypercorn %s: the shield patches are not applied", HYPERCORN_VERSION)
        _installed.append(supported)
    return _installed[0]

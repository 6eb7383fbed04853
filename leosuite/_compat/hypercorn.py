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

And one for answers sent before the whole request arrived (a body over the limit):
``_close`` closed the socket with the rest of the body unread, and a close with unread
data makes the kernel reset the connection, dropping whatever of the answer it had not
sent yet, so the client saw the connection cut instead of its 400 or 413. ``_close``
now ends our side (FIN after the answer) and, while the client is still sending a
request, reads on, discarding, until the client closes its side or :data:`LINGER`
seconds have passed, as Apache and nginx do (an idle keep-alive client is closed at
once, as before). Such an answer also says ``Connection: close``: hypercorn closes a
connection whose request was not read to its end, and a client told nothing would send
its next request on it, to find it closed without an answer.

Other hypercorn versions are served unpatched (and without a connection gate), with a
warning: check all six again before widening the pin.
"""

from __future__ import annotations

import dataclasses
import logging
from importlib.metadata import version
from math import inf
from typing import Protocol

import h11
import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.events import Response
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.trio.tcp_server import MAX_RECV, TCPServer

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

_original_protocol_send = TCPServer.protocol_send
_original_run = TCPServer.run
_original_stream_send = H11Protocol.stream_send
_installed: list[bool] = []
_GATE_ATTRIBUTE = "_leosuite_connection_gate"
_READING_ATTRIBUTE = "_leosuite_reading"

#: The longest a connection closed by the server is drained while its client still sends.
LINGER = 2.0


class ConnectionGate(Protocol):
    """Admits connections by peer address; :meth:`refuse` answers and closes one."""

    def enter(self, peer: str) -> bool: ...

    def leave(self, peer: str) -> None: ...

    async def refuse(self, stream: trio.SocketStream, peer: str) -> None: ...


def set_connection_gate(config: Config, gate: ConnectionGate) -> None:
    """Every connection of the listener served with ``config`` passes ``gate`` first."""
    setattr(config, _GATE_ATTRIBUTE, gate)


class _Reading:
    """The read side of one connection: the task reading it, whether what arrives is
    only drained now, and whether reading has ended."""

    def __init__(self) -> None:
        self.task = trio.lowlevel.current_task()
        self.draining = False
        self.done = trio.Event()


async def _lingering_close(self: TCPServer) -> None:
    """End our side of the connection, drain what the client still sends (bounded by
    :data:`LINGER`), then close the socket; shielded, as the request's task that calls
    it is cancelled once its answer is sent."""
    with trio.CancelScope(shield=True):
        try:
            await self.stream.send_eof()
        except (
            trio.BrokenResourceError,
            AttributeError,  # a TLS stream has no half-close
            trio.BusyResourceError,
            trio.ClosedResourceError,
        ):
            pass
        else:
            reading: _Reading | None = getattr(self, _READING_ATTRIBUTE, None)
            if reading is not None and not reading.done.is_set() and _still_sending(self):
                reading.draining = True
                with trio.move_on_after(LINGER):
                    if reading.task is trio.lowlevel.current_task():
                        await _drain(self.stream)  # the reader itself closes: read on here
                    else:
                        await reading.done.wait()
        await self.stream.aclose()


def _still_sending(self: TCPServer) -> bool:
    """The client is in the middle of a request (its body, or bytes h11 refused): a
    close now would find them unread. An idle keep-alive client has nothing on its way."""
    connection = getattr(getattr(self, "protocol", None), "protocol", None)
    state = getattr(getattr(connection, "connection", None), "their_state", None)
    return state is h11.SEND_BODY or state is h11.ERROR


async def _drain(stream: trio.abc.ReceiveStream) -> None:
    try:
        while await stream.receive_some(MAX_RECV):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def _shielded_protocol_send(self: TCPServer, event: Event) -> None:
    with trio.CancelScope(shield=True):
        await _original_protocol_send(self, event)


async def _stream_send(self: H11Protocol, event: StreamEvent) -> None:
    """An answer that starts while the client is still sending its request's body says
    the connection closes after it (hypercorn closes it then)."""
    if (
        isinstance(event, Response)
        and event.status_code >= 200
        and self.connection.their_state is h11.SEND_BODY
        and not any(name.lower() == b"connection" for name, _ in event.headers)
    ):
        event = dataclasses.replace(event, headers=[*event.headers, (b"connection", b"close")])
    await _original_stream_send(self, event)


async def _read_data(self: TCPServer) -> None:
    """hypercorn's read loop, which also drains once the connection is closing and
    stops the keep-alive timer when reading has ended."""
    reading = _Reading()
    setattr(self, _READING_ATTRIBUTE, reading)
    try:
        while True:
            try:
                with trio.fail_after(self.config.read_timeout or inf):
                    data = await self.stream.receive_some(MAX_RECV)
            except (trio.ClosedResourceError, trio.BrokenResourceError, trio.TooSlowError):
                break
            if not reading.draining:
                await self.protocol.handle(RawData(bytes(data)))
            if data == b"":
                break
    finally:
        reading.done.set()
    await self.protocol.handle(Closed())
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
            TCPServer._close = _lingering_close  # type: ignore[method-assign]
            TCPServer.protocol_send = _shielded_protocol_send  # type: ignore[method-assign]
            TCPServer.run = _gated_run  # type: ignore[method-assign]
            TCPServer._read_data = _read_data  # type: ignore[method-assign]
            H11Protocol.stream_send = _stream_send  # type: ignore[method-assign]
        else:  # pragma: no cover - only with another hypercorn pinned
            log.warning("hypercorn %s: the shield patches are not applied", HYPERCORN_VERSION)
        _installed.append(supported)
    return _installed[0]

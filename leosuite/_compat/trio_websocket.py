"""trio-websocket internals, for trio-websocket 0.12.x (wsproto underneath).

* **Raw writes.** A connection's writer may write whole batches of frames it built
  itself, as trio-websocket's own ``_send`` does: it takes the connection's private
  ``_stream`` and ``_stream_lock``, and on a broken stream ``_abort_web_socket`` and
  ``_close_reason``. A server's text frame is unmasked and trio-websocket negotiates
  no extension, so the bytes are those wsproto would make. Other versions (or a
  stream that is not a plain TCP socket) get ``send_message`` per message instead.
* **The client's TCP stream.** trio-websocket 0.12 leaves it open when the peer
  closed first or the connection broke (``aclose`` returns early once a close reason
  is set): the client closes the private ``_stream`` itself. With other versions it
  relies on the library.
* **One accepted connection.** ``WebSocketServer._handle_connection(stream)`` reads
  the handshake (within its connect timeout), runs the handler and closes; calling it
  per accepted stream lets the listener count connections from accept on. With other
  versions the server accepts by itself.
* **The handshake's Host.** wsproto moves the ``Host`` header out of the headers into
  its ``Request`` event, which trio-websocket keeps as the private ``_event``; with
  other versions it is unknown here (callers fall back to the headers).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

import trio
import trio_websocket
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest
from wsproto.connection import ConnectionState

__all__ = [
    "FAST_WRITES",
    "SUPPORTED",
    "close_transport",
    "connection_handler",
    "handshake_host",
    "is_open",
    "raw_writes_possible",
    "write_raw",
]

#: The version prefix these functions were written for.
WRITTEN_FOR = "0.12."
#: The installed trio-websocket is that version: the private reaches may be used.
SUPPORTED = trio_websocket.__version__.startswith(WRITTEN_FOR)
#: Whether :func:`write_raw` may be used at all with the installed trio-websocket.
FAST_WRITES = SUPPORTED


def raw_writes_possible(ws: WebSocketConnection) -> bool:
    """:func:`write_raw` may be used on ``ws`` (checked once per connection)."""
    return FAST_WRITES and isinstance(getattr(ws, "_stream", None), trio.SocketStream)


def is_open(ws: WebSocketConnection) -> bool:
    """Neither side has started closing: raw frames may still be written."""
    return not ws._close_reason and ws._wsproto.state is ConnectionState.OPEN


async def write_raw(ws: WebSocketConnection, data: bytes) -> None:
    """Write ready-made frames, without a trip through the scheduler when the socket
    takes them all (the common case); a broken stream aborts the connection and raises
    :class:`ConnectionClosed`, as ``send_message`` would."""
    stream = ws._stream
    assert isinstance(stream, trio.SocketStream)
    lock = ws._stream_lock  # the reader's pongs and close frames take it too
    try:
        lock.acquire_nowait()
    except trio.WouldBlock:
        await lock.acquire()
    try:
        try:
            try:
                written = os.write(stream.socket.fileno(), data)
            except BlockingIOError:
                written = 0
            if written < len(data):
                await stream.send_all(memoryview(data)[written:])
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            await ws._abort_web_socket()
            assert ws._close_reason is not None
            raise ConnectionClosed(ws._close_reason) from None
    finally:
        lock.release()


def handshake_host(request: WebSocketRequest) -> str:
    """The ``Host`` wsproto took out of the handshake's headers, or ``""`` if unknown."""
    if not SUPPORTED:
        return ""
    host = getattr(getattr(request, "_event", None), "host", None)
    return host if isinstance(host, str) else ""


async def close_transport(ws: WebSocketConnection) -> None:
    """Close the TCP stream under ``ws`` if the library left it open; idempotent."""
    if not SUPPORTED:
        return
    stream = getattr(ws, "_stream", None)
    if stream is not None:
        await trio.aclose_forcefully(stream)


def connection_handler(
    server: trio_websocket.WebSocketServer,
) -> Callable[[trio.SocketStream], Awaitable[None]] | None:
    """What serves one accepted stream (handshake, handler, close), or None if unknown."""
    handler = getattr(server, "_handle_connection", None) if SUPPORTED else None
    return handler if callable(handler) else None

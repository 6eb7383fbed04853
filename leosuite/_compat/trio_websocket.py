"""trio-websocket internals, for trio-websocket 0.12.x (wsproto underneath).

* **Raw writes.** A connection's frames may be written straight to its socket, built
  by hand, as trio-websocket's own ``_send`` writes its events: :func:`direct_socket`
  takes the private ``_stream``'s socket and swaps the private ``_stream_lock`` (which
  ``_send`` holds around every write: pongs, close frames) for a lock a short write can
  hand to another task; :func:`is_open` reads ``_close_reason``; :func:`abort` calls
  ``_abort_web_socket`` on a broken stream. A server's text frame is unmasked and
  trio-websocket negotiates no extension, so the bytes are those wsproto would make.
  Other versions (or a stream that is not a plain TCP socket) get ``send_message`` per
  message instead.
* **The client's TCP stream.** trio-websocket 0.12 leaves it open when the peer
  closed first or the connection broke (``aclose`` returns early once a close reason
  is set): the client closes the private ``_stream`` itself. With other versions it
  relies on the library.
* **One accepted connection.** ``WebSocketServer._handle_connection(stream)`` reads
  the handshake (within its connect timeout), runs the handler and closes; calling it
  per accepted stream lets the listener count connections from accept on. With other
  versions the server accepts by itself.
* **Messages already received.** :func:`message_nowait` takes the next message from
  the private ``_recv_channel`` (where ``get_message`` waits) without waiting; with
  other versions there is none.
* **The handshake's Host.** wsproto moves the ``Host`` header out of the headers into
  its ``Request`` event, which trio-websocket keeps as the private ``_event``; with
  other versions it is unknown here (callers fall back to the headers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import trio
import trio_websocket
from trio_websocket import CloseReason, WebSocketConnection, WebSocketRequest

__all__ = [
    "FAST_WRITES",
    "SUPPORTED",
    "StreamLock",
    "abort",
    "close_transport",
    "connection_handler",
    "direct_socket",
    "handshake_host",
    "is_open",
    "message_nowait",
]

#: The version prefix these functions were written for.
WRITTEN_FOR = "0.12."
#: The installed trio-websocket is that version: the private reaches may be used.
SUPPORTED = trio_websocket.__version__.startswith(WRITTEN_FOR)
#: Frames may be written by hand (:func:`direct_socket`) with the installed trio-websocket.
FAST_WRITES = SUPPORTED


class StreamLock(Protocol):
    """What trio-websocket's ``_send`` does with its stream lock (``async with``)."""

    def locked(self) -> bool: ...

    async def __aenter__(self) -> None: ...

    async def __aexit__(self, *_: object) -> None: ...


def direct_socket(ws: WebSocketConnection, lock: StreamLock) -> trio.socket.SocketType | None:
    """The TCP socket under ``ws``, its stream lock now ``lock``; None (and nothing
    changed) when raw writes are not possible or a send holds the lock right now."""
    stream = getattr(ws, "_stream", None)
    if not FAST_WRITES or not isinstance(stream, trio.SocketStream):
        return None
    if ws._stream_lock.locked():
        return None
    ws._stream_lock = lock  # type: ignore[assignment]
    return stream.socket


async def abort(ws: WebSocketConnection) -> CloseReason | None:
    """The stream under ``ws`` broke: end the connection (1006) as trio-websocket does."""
    await ws._abort_web_socket()
    return ws._close_reason


def is_open(ws: WebSocketConnection) -> bool:
    """Neither side has started closing: raw frames may still be written.

    trio-websocket sets its close reason before it writes a close frame, except for
    the close answering a protocol error, after which it closes the socket at once
    (the next raw write then fails)."""
    return not ws._close_reason


def handshake_host(request: WebSocketRequest) -> str:
    """The ``Host`` wsproto took out of the handshake's headers, or ``""`` if unknown."""
    if not SUPPORTED:
        return ""
    host = getattr(getattr(request, "_event", None), "host", None)
    return host if isinstance(host, str) else ""


def message_nowait(ws: WebSocketConnection) -> str | bytes | None:
    """The next message if one has arrived already, else None (as ``get_message``,
    :class:`ConnectionClosed` once the connection ended and nothing is left)."""
    channel = getattr(ws, "_recv_channel", None) if SUPPORTED else None
    if not isinstance(channel, trio.MemoryReceiveChannel):
        return None
    try:
        message: str | bytes = channel.receive_nowait()
    except trio.WouldBlock:
        return None
    except (trio.ClosedResourceError, trio.EndOfChannel):
        raise trio_websocket.ConnectionClosed(ws._close_reason) from None
    return message


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

"""An async client of leosuite's WebSocket API (seed 000), over trio-websocket.

    async with open_ws_client("ws://127.0.0.1:8976/") as client:
        await client.login("admin", password)          # or client.authenticate(token)
        servers = (await client.call("server.list"))["servers"]
        async with client.subscribe_console("demo", from_=0) as console:
            async for event in console:
                if isinstance(event, ConsoleData):
                    sys.stdout.buffer.write(event.data)
                else:                                   # ConsoleOverrun
                    print(f"[{event.skipped} bytes skipped]", file=sys.stderr)

One reader task receives every frame: answers are matched to their call by uuid,
console pushes go to their :class:`ConsoleStream` (see :mod:`.ws_console`), every
other push (``event``, ``stats``, ``session_closed``, console pushes of servers with
no stream) to :attr:`WsClient.pushes`. The reader never blocks, so a slow consumer
can never keep an answer from its caller; memory stays bounded instead by dropping:
``pushes`` holds ``push_buffer`` messages, further ones are dropped and counted in
``WsClient.dropped_pushes``; a console stream holds ``console_buffer`` chunks and
reports what it dropped as a :class:`ConsoleOverrun`. The errors it raises are drawn
in :mod:`leosuite.client`.
"""

from __future__ import annotations

import binascii
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit

import msgspec
import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection
from trio_websocket import open_websocket_url as _open_websocket_url

from .._compat.trio_websocket import close_transport
from ..errors import AuthError, LeosuiteError
from .ws_console import CONSOLE_PUSHES, decode_frame
from .ws_console import ConsoleData as ConsoleData
from .ws_console import ConsoleEvent as ConsoleEvent
from .ws_console import ConsoleOverrun as ConsoleOverrun
from .ws_console import ConsoleStream as ConsoleStream
from .ws_console import Frame as _Frame
from .ws_console import Push as Push

__all__ = [
    "ConsoleData",
    "ConsoleEvent",
    "ConsoleOverrun",
    "ConsoleStream",
    "Push",
    "WsCallError",
    "WsClient",
    "WsConnectionError",
    "open_ws_client",
]

log = logging.getLogger("leosuite.client")

KiB = 1024
MiB = 1024 * KiB

#: A console push holds up to 256 KiB of bytes; as JSON text (escapes) it can be up
#: to six times that: accept well beyond.
DEFAULT_MAX_MESSAGE = 16 * MiB

_encode = msgspec.json.Encoder().encode


class WsCallError(LeosuiteError):
    """The daemon answered a call with a non-zero ``status_code``."""

    error_type = "ws_call_failed"

    def __init__(self, status_code: int, status_string: str, content: Any = None) -> None:
        super().__init__(f"{status_string} (status {status_code})")
        self.status_code = status_code
        self.status_string = status_string
        self.content = content


class WsConnectionError(LeosuiteError):
    """The WebSocket could not be opened, or it closed."""

    error_type = "ws_connection"


class _Pending:
    __slots__ = ("done", "frame")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.frame: _Frame | None = None


class WsClient:
    """One connection; made by :func:`open_ws_client`."""

    def __init__(
        self, ws: WebSocketConnection, *, push_buffer: int = 256, console_buffer: int = 64
    ) -> None:
        self.ws = ws
        self._pending: dict[str, _Pending] = {}
        self._consoles: dict[str, ConsoleStream] = {}
        self._console_buffer = console_buffer
        self._push_send, self.pushes = trio.open_memory_channel[Push](push_buffer)
        self._closed: str | None = None
        self.token: str | None = None
        self.user_id: int | None = None
        self.dropped_pushes = 0

    # -- calls ------------------------------------------------------------------------

    async def call(self, type: str, content: Any = None) -> Any:
        """Send one request and return the answer's ``content``.

        Raises :class:`WsCallError` when ``status_code`` is not 0 (SUCCESS)."""
        if self._closed is not None:
            raise WsConnectionError(self._closed)
        key = uuid.uuid4().hex
        pending = _Pending()
        self._pending[key] = pending
        frame = _encode({"type": type, "uuid": key, "content": {} if content is None else content})
        try:
            try:
                await self.ws.send_message(frame.decode())
            except ConnectionClosed as exc:
                raise WsConnectionError(self._closed or _closed_reason(exc)) from None
            await pending.done.wait()
        finally:
            del self._pending[key]
        answer = pending.frame
        if answer is None:
            raise WsConnectionError(self._closed or "the WebSocket closed")
        if answer.status_code != 0:
            raise WsCallError(answer.status_code, answer.status_string, answer.content)
        return answer.content

    async def login(self, username: str, password: str) -> dict[str, Any]:
        """``create_auth_token``; :class:`AuthError` when refused."""
        content = await self.call("create_auth_token", {"username": username, "password": password})
        return self._logged_in(content)

    async def authenticate(self, token: str) -> dict[str, Any]:
        """``authenticate_with_token`` (e.g. a saved token); :class:`AuthError` when refused."""
        content = await self.call("authenticate_with_token", {"token": token})
        self.token = token
        return self._logged_in(content)

    def _logged_in(self, content: Any) -> dict[str, Any]:
        if not isinstance(content, dict) or content.get("status") != 0:
            message = content.get("message") if isinstance(content, dict) else None
            self.token = None
            raise AuthError(str(message or "login refused"))
        self.token = content.get("token", self.token)
        self.user_id = content.get("user_id")
        return content

    @contextlib.asynccontextmanager
    async def subscribe_console(
        self, server: str, from_: int | None = None, *, console_token: str = ""
    ) -> AsyncIterator[ConsoleStream]:
        """``console.subscribe``: the backlog from ``from_`` (default: only new output),
        then live output; ``console.unsubscribe`` on the way out. ``console_token``: one
        minted for this node's server, on a connection that did not log in."""
        if server in self._consoles:
            raise WsCallError(5, f"already subscribed to {server}'s console here")
        stream = ConsoleStream(server, -1, self._console_buffer)
        self._consoles[server] = stream  # before the call: pushes follow its answer at once
        request: dict[str, Any] = {"server": server}
        if from_ is not None:
            request["from"] = from_
        if console_token:
            request["console_token"] = console_token
        try:
            answer = await self.call("console.subscribe", request)
            stream.read_index = int(answer["readIndex"])
            yield stream
        finally:
            if self._consoles.get(server) is stream:
                del self._consoles[server]
                if self._closed is None and not stream.closed and stream.read_index >= 0:
                    with (
                        trio.CancelScope(shield=True),
                        trio.move_on_after(5),
                        contextlib.suppress(WsCallError, WsConnectionError),
                    ):
                        await self.call("console.unsubscribe", {"server": server})

    # -- the reader -------------------------------------------------------------------

    async def _read(self) -> None:
        reason = "the WebSocket client was closed"
        try:
            while True:
                self._dispatch(await self.ws.get_message())
        except ConnectionClosed as exc:
            reason = _closed_reason(exc)
        finally:
            self._shutdown(reason)

    def _dispatch(self, message: str | bytes) -> None:
        try:
            frame = decode_frame(message)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
            log.warning("ignoring a frame that is not a leosuite message: %.100r", message)
            return
        pending = self._pending.get(frame.uuid)
        if pending is not None and pending.frame is None:
            pending.frame = frame
            pending.done.set()
            return
        if frame.type in CONSOLE_PUSHES:
            server = frame.content.get("server") if isinstance(frame.content, Mapping) else None
            stream = self._consoles.get(server) if isinstance(server, str) else None
            if stream is not None:
                try:
                    stream._deliver(frame)
                except (KeyError, TypeError, ValueError, binascii.Error):
                    log.warning("ignoring a malformed %s push", frame.type)
                if stream.closed:
                    del self._consoles[stream.server]
                return
        elif frame.type == "session_closed":
            reason = frame.content.get("reason") if isinstance(frame.content, Mapping) else None
            self.token = None
            for stream in self._consoles.values():
                stream._fail(AuthError(f"the daemon ended the session: {reason or 'no reason'}"))
            self._consoles.clear()
        try:
            self._push_send.send_nowait(Push(frame.type, frame.uuid, frame.content))
        except trio.WouldBlock:
            self.dropped_pushes += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    def _shutdown(self, reason: str) -> None:
        self._closed = reason
        for pending in self._pending.values():
            pending.done.set()
        for stream in self._consoles.values():
            stream._fail(WsConnectionError(reason))
        self._consoles.clear()
        self._push_send.close()


def _closed_reason(exc: ConnectionClosed) -> str:
    code = exc.reason.code if exc.reason is not None else None
    text = f": {exc.reason.reason}" if exc.reason and exc.reason.reason else ""
    return f"the WebSocket closed (code {code}{text})"


async def _close_transport(opened: list[WebSocketConnection]) -> None:
    """Close each TCP socket trio-websocket left open (see ``leosuite._compat``)."""
    for ws in opened:
        await close_transport(ws)


def _reraise_single(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Raise a one-exception group's exception as itself (keeping its context)."""
    exc = group.exceptions[0]
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context


@contextlib.asynccontextmanager
async def open_ws_client(
    url: str,
    *,
    push_buffer: int = 256,
    console_buffer: int = 64,
    max_message_size: int = DEFAULT_MAX_MESSAGE,
    receive_buffer_size: int = 256 * KiB,
) -> AsyncIterator[WsClient]:
    """Connect to ``url`` (e.g. ``ws://127.0.0.1:8976/``); close on the way out.

    :class:`WsConnectionError` when the daemon cannot be reached or refuses the
    handshake. Deadlines are the caller's cancel scopes (trio-websocket gives up
    connecting after 60 s)."""
    if urlsplit(url).path == "":
        url += "/"
    async with contextlib.AsyncExitStack() as stack:
        opened: list[WebSocketConnection] = []
        stack.push_async_callback(_close_transport, opened)  # runs after the close handshake
        try:
            ws = await stack.enter_async_context(
                _open_websocket_url(
                    url, max_message_size=max_message_size, receive_buffer_size=receive_buffer_size
                )
            )
        except HandshakeError as exc:
            cause = exc.__cause__ or exc
            raise WsConnectionError(
                f"cannot reach leosuite's WebSocket API at {url}: {cause or type(cause).__name__}"
            ) from None
        except ValueError as exc:  # a malformed URL
            raise WsConnectionError(f"bad WebSocket URL {url!r}: {exc}") from None
        opened.append(ws)
        client = WsClient(ws, push_buffer=push_buffer, console_buffer=console_buffer)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client._read)
                try:
                    yield client
                finally:
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            if len(group.exceptions) == 1:
                _reraise_single(group)
            raise

"""Helpers for the WebSocket API tests: a client that matches answers by uuid and keeps
the pushes it reads on the way, and a raw client (wsproto over a bare socket) whose
reads and pongs the test controls."""

from __future__ import annotations

import gc
import json
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from itertools import count
from typing import Any
from urllib.parse import urlsplit

import trio
import wsproto
from trio_websocket import WebSocketConnection, open_websocket_url
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon

PUSH_TYPES = frozenset(
    {"console_output", "console_overrun", "console_closed", "stats", "event", "session_closed"}
    | {"logfile_output", "logfile_overrun", "logfile_closed"}
)
ENVELOPE_KEYS = {"uuid", "type", "status_code", "status_string", "content"}
_uuids = count(1)


class WsClient:
    """One API connection: ``call`` sends a request and reads until its answer,
    keeping every push read meanwhile in ``pushes``."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.pushes: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        message = await self.ws.get_message()
        assert isinstance(message, str), message
        frame: dict[str, Any] = json.loads(message)
        assert set(frame) == ENVELOPE_KEYS, frame
        assert isinstance(frame["uuid"], str)
        assert isinstance(frame["type"], str)
        return frame

    async def call(self, kind: str, content: Any = None) -> dict[str, Any]:
        uuid = f"req-{next(_uuids)}"
        await self.ws.send_message(json.dumps({"type": kind, "uuid": uuid, "content": content}))
        return await self.answer(uuid)

    async def ok(self, kind: str, content: Any = None) -> Any:
        answer = await self.call(kind, content)
        assert answer["status_code"] == 0, answer
        return answer["content"]

    async def answer(self, uuid: str) -> dict[str, Any]:
        for i, frame in enumerate(self.pushes):  # read while waiting for another answer
            if frame["uuid"] == uuid and frame["type"] not in PUSH_TYPES:
                return self.pushes.pop(i)
        while True:
            frame = await self.receive()
            if frame["uuid"] == uuid and frame["type"] not in PUSH_TYPES:
                return frame
            self.pushes.append(frame)

    async def send_raw(self, frame: str | bytes) -> dict[str, Any]:
        """Send any frame; the next non-push message is its answer."""
        await self.ws.send_message(frame)
        while True:
            answer = await self.receive()
            if answer["type"] not in PUSH_TYPES:
                return answer
            self.pushes.append(answer)

    async def next_push(self, kind: str) -> dict[str, Any]:
        """The first push of ``kind`` (already read or the next one to arrive)."""
        for i, frame in enumerate(self.pushes):
            if frame["type"] == kind:
                return self.pushes.pop(i)
        while True:
            frame = await self.receive()
            if frame["type"] == kind:
                return frame
            self.pushes.append(frame)

    async def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
        content = await self.ok("create_auth_token", {"username": username, "password": password})
        assert content["status"] == 0, content
        token: str = content["token"]
        return token


@asynccontextmanager
async def ws_client(
    daemon: RunningDaemon, *, login: bool = False, **kwargs: Any
) -> AsyncIterator[WsClient]:
    async with open_websocket_url(daemon.endpoints.ws + "/", **kwargs) as ws:
        client = WsClient(ws)
        if login:
            await client.login()
        yield client


@contextmanager
def client_socket_leak_tolerated() -> Iterator[None]:
    """trio-websocket 0.12.2's client leaves its socket open when the server rejects
    the handshake or closes the connection abruptly: collect it, silencing that one
    ResourceWarning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "unclosed <socket", ResourceWarning)
        try:
            yield
        finally:
            gc.collect()


class Rejected(Exception):
    """The daemon refused a :class:`RawClient`'s handshake with ``status``."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class RawClient:
    """A WebSocket client over a bare socket: nothing is read or answered (no pongs)
    unless the test asks."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.proto = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self.events: list[Event] = []
        self._messages: list[dict[str, Any]] = []
        self._parts: list[str] = []
        self._answered = 0  # events already looked at for pings to answer

    @classmethod
    @asynccontextmanager
    async def open(
        cls, url: str, *, receive_buffer: int | None = None, source: str | None = None
    ) -> AsyncIterator[RawClient]:
        """Connect and finish the handshake (:class:`Rejected` if refused); ``source``
        is the local address to connect from (any of 127.0.0.0/8 on Linux)."""
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        sock = trio.socket.socket()
        if source is not None:
            await sock.bind((source, 0))
        if receive_buffer is not None:  # set before connect so the window stays small
            sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, receive_buffer)
        await sock.connect((parts.hostname, parts.port))
        client = cls(trio.SocketStream(sock))
        async with client.stream:
            await client.stream.send_all(
                client.proto.send(Request(host=parts.netloc, target=parts.path or "/"))
            )
            while not any(isinstance(e, AcceptConnection) for e in client.events):
                refusal = [e for e in client.events if isinstance(e, RejectConnection)]
                if refusal:
                    raise Rejected(refusal[0].status_code)
                if not await client.read_some():
                    raise AssertionError("connection closed during the handshake")
            yield client

    async def read_some(self) -> bool:
        """Read once from the socket; False at EOF. Events go to ``events``."""
        try:
            data = await self.stream.receive_some(65536)
        except trio.BrokenResourceError:
            data = b""
        self.proto.receive_data(data or None)
        for event in self.proto.events():
            self.events.append(event)
            if isinstance(event, TextMessage):
                self._parts.append(event.data)
                if event.message_finished:
                    self._messages.append(json.loads("".join(self._parts)))
                    self._parts = []
        return bool(data)

    def encode(self, kind: str, content: Any = None, uuid: str = "raw") -> bytes:
        frame = json.dumps({"type": kind, "uuid": uuid, "content": content})
        return self.proto.send(TextMessage(data=frame))

    async def send(self, kind: str, content: Any = None, uuid: str = "raw") -> None:
        await self.stream.send_all(self.encode(kind, content, uuid))

    async def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> None:
        """Log in and wait for the answer (requests are handled concurrently)."""
        await self.send("create_auth_token", {"username": username, "password": password}, "in")
        while not any(m["uuid"] == "in" for m in self.messages()):
            if not await self.read_some():
                raise AssertionError("closed during login")
        (answer,) = [m for m in self.messages() if m["uuid"] == "in"]
        assert answer["content"]["status"] == 0, answer

    async def answer_pings(self, pings: int) -> None:
        """Read until ``pings`` pings have come, answering each with its pong; fails if
        the connection closes first."""
        while self.pings() < pings:
            assert await self.read_some(), "closed although it answered pings"
            for event in self.events[self._answered :]:
                if isinstance(event, Ping):
                    await self.stream.send_all(self.proto.send(event.response()))
            self._answered = len(self.events)

    async def read_until_eof(self) -> None:
        while await self.read_some():
            pass

    def messages(self) -> list[dict[str, Any]]:
        """Complete text messages received so far (fragments joined)."""
        return list(self._messages)

    def count(self) -> int:
        return len(self._messages)

    def close_code(self) -> int | None:
        for event in self.events:
            if isinstance(event, CloseConnection):
                return int(event.code)
        return None

    def pings(self) -> int:
        return sum(isinstance(e, Ping) for e in self.events)

    def binary(self) -> list[bytes]:
        return [bytes(e.data) for e in self.events if isinstance(e, BytesMessage)]

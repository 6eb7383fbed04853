"""Requests as an attacker sends them: any ``Host`` and ``Origin`` on a WebSocket
handshake, raw HTTP/1.1 exchanges over sockets the test holds open (from a chosen
local address), and the error shapes each listener answers with."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import trio
import wsproto
from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request

from tests.helpers.daemon import ADMIN_PASSWORD

BASIC = "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()


def netloc(url: str) -> str:
    """``host:port`` of an endpoint URL."""
    return urlsplit(url).netloc


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


async def handshake(
    url: str,
    *,
    host: str | None = None,
    origin: str | None = None,
    connect_to: str = "127.0.0.1",
) -> tuple[int, dict[str, Any] | None]:
    """Open a WebSocket handshake to ``url``'s port on ``connect_to`` with these
    ``Host`` (default: the URL's) and ``Origin`` headers: (101, None) when accepted,
    else the refusal's status and JSON body. The connection is closed either way."""
    parts = urlsplit(url)
    assert parts.port is not None
    proto = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    extra = [] if origin is None else [(b"Origin", origin.encode())]
    request = Request(host=host or parts.netloc, target=parts.path or "/", extra_headers=extra)
    stream = await trio.open_tcp_stream(connect_to, parts.port)
    async with stream:
        await stream.send_all(proto.send(request))
        status = 0
        body = b""
        while True:
            data = await stream.receive_some(65536)
            proto.receive_data(data or None)
            for event in proto.events():
                if isinstance(event, AcceptConnection):
                    return 101, None
                if isinstance(event, RejectConnection):
                    status = event.status_code
                    if not event.has_body:
                        return status, None
                if isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        return status, json.loads(body)
            if not data:
                raise AssertionError("the connection closed during the handshake")


class RawHttp:
    """One HTTP/1.1 connection over a bare socket: requests byte for byte, answers
    parsed just enough (status, headers, a Content-Length body)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._buffer = b""

    @classmethod
    async def connect(cls, url: str, *, source: str | None = None) -> RawHttp:
        """Connect to ``url``'s host and port, from ``source`` (any of 127.0.0.0/8)."""
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        sock = trio.socket.socket()
        if source is not None:
            await sock.bind((source, 0))
        await sock.connect((parts.hostname, parts.port))
        return cls(trio.SocketStream(sock))

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def get(self, path: str, host: str, headers: str = "") -> tuple[int, dict[str, str], Any]:
        await self.stream.send_all(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n".encode())
        return await self.answer()

    async def answer(self) -> tuple[int, dict[str, str], Any]:
        """Read one answer: (status, lower-case headers, the JSON body or None)."""
        while b"\r\n\r\n" not in self._buffer:
            await self._more()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
        length = int(headers.get("content-length", "0"))
        while len(self._buffer) < length:
            await self._more()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return int(status_line.split()[1]), headers, json.loads(body) if body else None

    async def closed(self) -> bool:
        """Whether the daemon closed the connection (reads until EOF)."""
        try:
            while await self.stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass
        return True

    async def _more(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise AssertionError(f"connection closed after {self._buffer!r}")
        self._buffer += data


def assert_rooms_error(response: httpx.Response, status: int, error_type: str) -> str:
    """``POST /rooms``'s error shape: ``{"status": "error", "error_type", "text"}``."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"status", "error_type", "text"}, body
    assert (body["status"], body["error_type"]) == ("error", error_type), body
    text: str = body["text"]
    assert text
    return text

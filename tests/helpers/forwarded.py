"""Requests that name a client in forwarding headers, as a reverse proxy (or a client
forging one) sends them: HTTP from a chosen local address, and WebSocket handshakes
with any headers, over TCP or TLS."""

from __future__ import annotations

import json
import ssl
from typing import Any
from urllib.parse import urlsplit

import httpx
import trio
import wsproto
from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request


def client_from(
    base_url: str, source: str, *, verify: ssl.SSLContext | bool = True, **kwargs: Any
) -> httpx.AsyncClient:
    """An HTTP client whose connections come from ``source`` (any of 127.0.0.0/8)."""
    transport = httpx.AsyncHTTPTransport(local_address=source, verify=verify)
    return httpx.AsyncClient(base_url=base_url, timeout=10, transport=transport, **kwargs)


def xff(*hops: str) -> dict[str, str]:
    return {"X-Forwarded-For": ", ".join(hops)}


async def ws_handshake(
    url: str,
    *,
    source: str | None = None,
    host: str | None = None,
    headers: dict[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, Any] | None]:
    """A WebSocket handshake to ``url``'s port on 127.0.0.1 (``wss://``: over TLS with
    ``ssl_context``, for the URL's name) from ``source``, with this ``Host`` (default:
    the URL's) and extra ``headers``: (101, None) when accepted, else the refusal's
    status and JSON body. The connection is closed either way."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    sock = trio.socket.socket()
    if source is not None:
        await sock.bind((source, 0))
    await sock.connect(("127.0.0.1", parts.port))
    stream: trio.abc.Stream = trio.SocketStream(sock)
    if parts.scheme == "wss":
        assert ssl_context is not None
        stream = trio.SSLStream(stream, ssl_context, server_hostname=parts.hostname)
    proto = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    target = parts.path or "/"
    request = Request(host=host or parts.netloc, target=target, extra_headers=extra)
    async with stream:
        await stream.send_all(proto.send(request))
        status, body = 0, b""
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

"""Clients that connect from another local address (any of 127.0.0.0/8 on Linux), so
one test can be several peers: an attacker's addresses and a user's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import trio
from trio_websocket import wrap_client_stream

from tests.helpers.chat import Chat
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon


def http_from(daemon: RunningDaemon, source: str, **kwargs: Any) -> httpx.AsyncClient:
    """A client of the HTTP API whose requests come from ``source``."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    return httpx.AsyncClient(
        base_url=daemon.endpoints.http, timeout=10, transport=transport, **kwargs
    )


def admin_client(daemon: RunningDaemon) -> httpx.AsyncClient:
    """The admin API as the first admin (HTTP Basic), from 127.0.0.1."""
    return httpx.AsyncClient(
        base_url=daemon.endpoints.admin, auth=("admin", ADMIN_PASSWORD), timeout=10
    )


@asynccontextmanager
async def chat_from(daemon: RunningDaemon, nick: str, source: str) -> AsyncIterator[Chat]:
    """A chat guest connected from ``source`` that has read its own login broadcast."""
    parts = urlsplit(daemon.endpoints.ws)
    assert parts.hostname is not None
    assert parts.port is not None
    stream = await trio.open_tcp_stream(parts.hostname, parts.port, local_address=source)
    async with trio.open_nursery() as nursery:
        ws = await wrap_client_stream(
            nursery, stream, parts.netloc, f"/chat/login/{quote(nick, safe='')}"
        )
        try:
            client = Chat(ws, nick)
            client.login = await client.expect(2)
            yield client
        finally:
            await ws.aclose()

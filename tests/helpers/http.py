"""HTTP helpers: an authenticated client of the JSON API, the error shapes of the API
and of the admin listener, and raw request bodies."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio

from tests.helpers.accounts import PASSWORD
from tests.helpers.daemon import RunningDaemon, login

JSON = {"Content-Type": "application/json"}


class Api:
    """One authenticated HTTP client of the JSON API."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.token = token

    async def post(self, path: str, body: Any = None) -> httpx.Response:
        return await self.client.post(
            f"/api/{path}",
            json={} if body is None else body,
            headers={"Authorization": f"Bearer {self.token}"},
        )

    async def ok(self, path: str, body: Any = None) -> Any:
        response = await self.post(path, body)
        assert response.status_code in (200, 204), (path, response.status_code, response.text)
        return response.json() if response.status_code == 200 else None

    async def error(self, path: str, body: Any, status: int) -> dict[str, Any]:
        response = await self.post(path, body)
        return assert_error(response, status)

    async def status(self, server: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self.ok("server_status", {"server": server})
        return answer

    async def wait_status(self, server: str, *states: str) -> dict[str, Any]:
        """Poll until the server is in one of ``states`` (callers bound it with fail_after)."""
        while (status := await self.status(server))["status"] not in states:
            await trio.sleep(0.05)
        return status

    async def read_log(self, server: str, start: int = 0) -> tuple[bytes, int]:
        """Every byte from ``start`` to the current end (no wait); and the next index."""
        data = b""
        index = start
        while True:
            answer = await self.ok("server_log", {"server": server, "readIndex": index})
            data += decode_data(answer)
            index = answer["nextReadIndex"]
            if index >= answer["readIndex"]:
                return data, index

    async def wait_log(self, server: str, needle: bytes, start: int = 0) -> bytes:
        """Long-poll the console until ``needle`` appears; return the bytes read."""
        data = b""
        index = start
        while needle not in data:
            answer = await self.ok("server_log", {"server": server, "readIndex": index, "wait": 5})
            data += decode_data(answer)
            index = answer["nextReadIndex"]
        return data

    async def create(self, server: str, type_name: str, settings: dict[str, Any]) -> None:
        answer = await self.ok(
            "server_create", {"server": server, "type": type_name, "settings": settings}
        )
        assert answer == {"server": server, "readIndex": 0}


@asynccontextmanager
async def api_client(daemon: RunningDaemon, username: str = "admin") -> AsyncIterator[Api]:
    """An :class:`Api` logged in as the first admin, or as ``username`` with the
    password every test account gets."""
    async with daemon.http() as client:
        token = await (login(client) if username == "admin" else login(client, username, PASSWORD))
        yield Api(client, token)


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The API's error shape: ``{"error_type", "error_message"}``, both non-empty."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"error_type", "error_message"}, body
    assert body["error_type"]
    assert body["error_message"]
    return body


def decode_data(answer: dict[str, Any]) -> bytes:
    """The console bytes of a ``server_log`` answer (text or base64)."""
    if answer.get("encoding") == "base64":
        return base64.b64decode(answer["data"])
    data: str = answer["data"]
    return data.encode("utf-8")


def assert_admin_error(response: httpx.Response, status: int) -> str:
    """The admin listener's error shape: ``{"status": "error", "message"}``; the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"status", "message"}
    assert body["status"] == "error"
    message: str = body["message"]
    assert message
    return message


def assert_unauthorized(response: httpx.Response) -> None:
    assert_admin_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")


class Blob(httpx.AsyncByteStream):
    """``size`` bytes as a request stream; not an async generator, because httpx
    stops sending when the server answers early, and an unfinished generator is
    a ResourceWarning."""

    def __init__(self, size: int, chunk: int = 256 * 1024) -> None:
        self.left = size
        self.chunk = chunk

    def __aiter__(self) -> Blob:  # type: ignore[override]
        return self

    async def __anext__(self) -> bytes:
        if self.left <= 0:
            raise StopAsyncIteration
        n = min(self.chunk, self.left)
        self.left -= n
        return b" " * n


async def login_info(client: httpx.AsyncClient, username: str | None = None) -> dict[str, Any]:
    params = {"username": username} if username else None
    response = await client.get("/api/auth/login_info", params=params)
    assert response.status_code == 200, response.text
    info: dict[str, Any] = response.json()
    return info

"""The file calls of the HTTP API (``/api/server_files_*``) for one server, and a
snapshot of a directory tree to show that nothing in it changed."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import httpx

from tests.helpers.http import Api, assert_error

OCTETS = "application/octet-stream"


class Payload(httpx.AsyncByteStream):
    """``data`` as a request stream in chunks; not an async generator, because httpx
    stops sending when the server answers early, and an unfinished generator is a
    ResourceWarning."""

    def __init__(self, data: bytes, chunk: int = 64 * 1024) -> None:
        self.view = memoryview(data)
        self.chunk = chunk

    def __aiter__(self) -> Payload:  # type: ignore[override]
        return self

    async def __anext__(self) -> bytes:
        if not self.view:
            raise StopAsyncIteration
        head, self.view = self.view[: self.chunk], self.view[self.chunk :]
        return bytes(head)


class Files:
    """The file calls on ``server`` as ``api``'s account."""

    def __init__(self, api: Api, server: str) -> None:
        self.api = api
        self.server = server

    async def call(self, op: str, **body: Any) -> httpx.Response:
        return await self.api.post(f"server_files_{op}", {"server": self.server, **body})

    async def ok(self, op: str, **body: Any) -> Any:
        response = await self.call(op, **body)
        assert response.status_code in (200, 204), (op, body, response.text)
        return response.json() if response.status_code == 200 else None

    async def refused(self, op: str, status: int, **body: Any) -> dict[str, Any]:
        return assert_error(await self.call(op, **body), status)

    async def upload(
        self,
        path: str,
        content: bytes | httpx.AsyncByteStream,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST an upload: ``content`` bytes with their Content-Length, or a stream
        sent chunked (no length)."""
        sent = {"Authorization": f"Bearer {self.api.token}", "Content-Type": OCTETS}
        sent.update(headers or {})
        query = {"server": self.server, "path": path} if params is None else params
        client = self.api.client
        request = client.build_request("POST", "/api/server_files_upload", params=query)
        request.headers.update(sent)
        if isinstance(content, bytes):
            request.headers["Content-Length"] = str(len(content))
            request.stream = Payload(content)
        else:
            request.headers.pop("Content-Length", None)
            request.headers["Transfer-Encoding"] = "chunked"
            request.stream = content
        return await client.send(request)

    async def download(self, path: str) -> httpx.Response:
        return await self.call("download", path=path)


def snapshot(top: Path) -> dict[str, tuple[str, bytes | str, int]]:
    """Every entry under ``top`` (links not followed): its kind, content (a link's
    target) and modification time in nanoseconds."""
    found: dict[str, tuple[str, bytes | str, int]] = {}
    for directory, dirs, files in os.walk(top, followlinks=False):
        for name in (*dirs, *files):
            path = Path(directory, name)
            st = path.lstat()
            key = str(path.relative_to(top))
            if stat.S_ISLNK(st.st_mode):
                found[key] = ("link", os.readlink(path), st.st_mtime_ns)
            elif stat.S_ISREG(st.st_mode):
                found[key] = ("file", path.read_bytes(), st.st_mtime_ns)
            else:
                found[key] = ("dir" if stat.S_ISDIR(st.st_mode) else "other", "", st.st_mtime_ns)
    return found


def leftovers(directory: Path) -> list[str]:
    """Temporary files an upload or a write could have left in ``directory``."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".leosuite-"))

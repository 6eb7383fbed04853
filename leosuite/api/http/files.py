"""``/api/server_files_*``: the files in a server's directory (rules:
:mod:`leosuite.api.file_ops`; confinement: :mod:`leosuite.supervision.server_files`).

Every call is ``POST`` with a JSON body, but two move a file's bytes as they are:
``server_files_download`` answers the file as ``application/octet-stream`` (read from
disk as it is sent), and ``server_files_upload`` takes the file as its body
(``Content-Type: application/octet-stream``, ``?server=NAME&path=PATH``, the token in
the ``Authorization`` header only), written to disk as it arrives and stopped at
``servers.files_max_upload_bytes``. An upload's body is not JSON, so the listener's
body-type check leaves that one path to the route (:func:`skip_uploads`); a page
elsewhere cannot send it with a user's token, which only a header carries.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import trio
from quart import Blueprint, Response, request
from quart.wrappers.response import ResponseBody
from quart_trio.wrappers.request import TrioRequest
from werkzeug.exceptions import RequestEntityTooLarge, RequestTimeout

from ...errors import InvalidInput, TooLarge, UnsupportedMediaType
from ...supervision.server_files import PendingFile
from ..context import ApiContext
from ..file_ops import FileOps, Opened
from ..requests import authenticate, decode_body, peer_ip
from ..server_ops import ServerOps
from .auth import json_response
from .servers import ServerBody

__all__ = [
    "UPLOAD_PATH",
    "DeleteBody",
    "FileBody",
    "ListBody",
    "MkdirBody",
    "ReadBody",
    "RenameBody",
    "WriteBody",
    "files_blueprint",
    "skip_uploads",
    "upload_request_class",
]

UPLOAD_PATH = "/api/server_files_upload"
#: The slowest a download may be read on average (its answer's time limit follows).
MIN_DOWNLOAD_RATE = 64 * 1024
_CHUNK = 256 * 1024


class ListBody(ServerBody, kw_only=True, forbid_unknown_fields=True):
    #: A directory relative to the server's directory ("": the directory itself).
    path: str = ""


class FileBody(ServerBody, kw_only=True, forbid_unknown_fields=True):
    path: str


class ReadBody(FileBody, kw_only=True, forbid_unknown_fields=True):
    encoding: Literal["utf-8", "base64"] | None = None


class WriteBody(FileBody, kw_only=True, forbid_unknown_fields=True):
    data: str
    encoding: Literal["utf-8", "base64"] = "utf-8"


class RenameBody(FileBody, kw_only=True, forbid_unknown_fields=True):
    to: str


class DeleteBody(FileBody, kw_only=True, forbid_unknown_fields=True):
    recursive: bool = False


class MkdirBody(FileBody, kw_only=True, forbid_unknown_fields=True):
    parents: bool = False


def upload_request_class(limit: int) -> type[TrioRequest]:
    """The app's request class: an upload's body may reach ``limit`` bytes (every other
    body stays within ``http.max_body_bytes``)."""

    class Request(TrioRequest):
        def __init__(self, method: str, scheme: str, path: str, *args: Any, **kwargs: Any):
            if path == UPLOAD_PATH:
                kwargs["max_content_length"] = limit
            super().__init__(method, scheme, path, *args, **kwargs)

    return Request


def skip_uploads(
    check: Callable[[], Awaitable[Response | None]],
) -> Callable[[], Awaitable[Response | None]]:
    """``check`` (the listener's body-type check) for every path but an upload's."""

    async def checked() -> Response | None:
        # An upload's body is the file itself: its route checks the type it declares.
        return None if request.path == UPLOAD_PATH else await check()

    return checked


class _FileStream(ResponseBody):
    """A download's body: the opened file, read in a worker thread chunk by chunk up to
    the size it had when opened; the descriptor is closed when the answer ends."""

    def __init__(self, opened: Opened) -> None:
        self._fd = opened.fd
        self._left = opened.size
        self._offset = 0

    async def __aenter__(self) -> _FileStream:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __aiter__(self) -> _FileStream:
        return self

    async def __anext__(self) -> bytes:
        if self._left <= 0 or self._fd < 0:
            raise StopAsyncIteration
        fd, want, offset = self._fd, min(_CHUNK, self._left), self._offset
        chunk = await trio.to_thread.run_sync(os.pread, fd, want, offset)
        if not chunk:  # the file shrank meanwhile: the answer ends short
            raise StopAsyncIteration
        self._left -= len(chunk)
        self._offset += len(chunk)
        return chunk

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()  # an answer that was never sent


def _download(opened: Opened, read_timeout: float) -> Response:
    response = Response(_FileStream(opened), status=200, content_type="application/octet-stream")
    response.headers["Content-Length"] = str(opened.size)
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(opened.name)}"
    response.timeout = read_timeout + opened.size / MIN_DOWNLOAD_RATE
    return response


def _query(name: str) -> str:
    value = request.args.get(name)
    if value is None:
        raise InvalidInput(f"{name}: required (?server=NAME&path=PATH)", field=name)
    return value


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"the upload is larger than {limit} bytes (servers.files_max_upload_bytes)")


#: The slowest an upload may arrive on average, beside ``http.read_timeout``: a body
#: dripping in a byte a minute does not hold its connection and temp file for ever.
_MIN_RATE = 64 * 1024


async def _receive(pending: PendingFile, limit: int, read_timeout: float) -> None:
    """Write the request body to ``pending`` as it arrives, at most ``limit`` bytes,
    within ``read_timeout`` plus a second per 64 KiB of the announced (or largest) size."""
    expected = min(limit, request.content_length or limit)
    with trio.move_on_after(read_timeout + expected / _MIN_RATE):
        await _receive_all(pending, limit, read_timeout)
        return
    raise RequestTimeout()


async def _receive_all(pending: PendingFile, limit: int, read_timeout: float) -> None:
    body = request.body
    while True:
        chunk: bytes | None = None
        with trio.move_on_after(read_timeout):
            try:
                chunk = await body.__anext__()
            except StopAsyncIteration:
                return
            except RequestEntityTooLarge:  # more than the limit arrived before it was read
                raise _too_large(limit) from None
        if chunk is None:
            raise RequestTimeout()
        if pending.size + len(chunk) > limit:
            raise _too_large(limit)
        await trio.to_thread.run_sync(pending.write, chunk)


def files_blueprint(ctx: ApiContext) -> Blueprint:
    bp = Blueprint("files", __name__, url_prefix="/api")
    max_body = ctx.settings.http.max_body_bytes
    read_timeout = ctx.settings.http.read_timeout
    upload_limit = ctx.settings.servers.files_max_upload_bytes

    async def caller(token: str | None) -> FileOps:
        return FileOps(ServerOps(ctx, await authenticate(ctx.auth, token), peer_ip()))

    @bp.post("/server_files_list")
    async def server_files_list() -> Response:
        body = await decode_body(ListBody, max_body)
        answer = await (await caller(body.token)).list(body.server, body.path)
        # A file manager shows the limits before a read or an upload runs into them.
        limits = {"max_read_bytes": max_body, "max_upload_bytes": upload_limit}
        return json_response({**answer, **limits})

    @bp.post("/server_files_read")
    async def server_files_read() -> Response:
        body = await decode_body(ReadBody, max_body)
        files = await caller(body.token)
        answer = await files.read(body.server, body.path, encoding=body.encoding, limit=max_body)
        return json_response(answer)

    @bp.post("/server_files_write")
    async def server_files_write() -> Response:
        body = await decode_body(WriteBody, max_body)
        files = await caller(body.token)
        answer = await files.write(body.server, body.path, body.data, encoding=body.encoding)
        return json_response(answer)

    @bp.post("/server_files_download")
    async def server_files_download() -> Response:
        body = await decode_body(FileBody, max_body)
        opened = await (await caller(body.token)).open_download(body.server, body.path)
        return _download(opened, read_timeout)

    @bp.post("/server_files_upload")
    async def server_files_upload() -> Response:
        files = await caller(None)  # the header's token only: a body cannot carry one
        server, path = _query("server"), _query("path")
        if request.mimetype != "application/octet-stream":
            raise UnsupportedMediaType(
                "an upload's body is the file: Content-Type: application/octet-stream",
                field="Content-Type",
            )
        length = request.content_length
        if length is not None and length > upload_limit:
            raise _too_large(upload_limit)
        pending = await files.begin_upload(server, path)
        try:
            await _receive(pending, upload_limit, read_timeout)
            # The token and the rights are checked again: either may have gone meanwhile.
            answer = await (await caller(None)).end_upload(server, pending)
        except BaseException:
            pending.abort()
            raise
        return json_response(answer)

    @bp.after_request
    async def close_after_refused_upload(response: Response) -> Response:
        # A refused upload's body may still be coming: its connection ends, and says so.
        if request.path == UPLOAD_PATH and response.status_code >= 400:
            response.headers["Connection"] = "close"
        return response

    @bp.post("/server_files_rename")
    async def server_files_rename() -> Response:
        body = await decode_body(RenameBody, max_body)
        files = await caller(body.token)
        return json_response(await files.rename(body.server, body.path, body.to))

    @bp.post("/server_files_delete")
    async def server_files_delete() -> Response:
        body = await decode_body(DeleteBody, max_body)
        await (await caller(body.token)).delete(body.server, body.path, recursive=body.recursive)
        return Response(b"", status=204)

    @bp.post("/server_files_mkdir")
    async def server_files_mkdir() -> Response:
        body = await decode_body(MkdirBody, max_body)
        files = await caller(body.token)
        return json_response(await files.mkdir(body.server, body.path, parents=body.parents))

    return bp

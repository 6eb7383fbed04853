"""Fetching what an install downloads: blocking calls for a worker thread, standard
library only (``urllib``).

Only ``http`` and ``https`` URLs are fetched, through at most :data:`MAX_REDIRECTS`
redirects that stay on those schemes. A body goes in chunks to a new file beside its
target in the server's directory (opened with no symbolic link followed on the way,
see :class:`~.server_files.ServerFiles`), hashed while it is written, bounded in size,
and renamed into place only when complete and matching its checksum; anything else
removes it. A :class:`Stop` set from another thread ends the fetch with nothing left
behind: at its next chunk, or at once when it waits on a stalled connection (whose
socket it shuts down).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from http.client import HTTPException
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import msgspec

from leosuite.errors import LeosuiteError
from leosuite.supervision.file_paths import parse_path
from leosuite.supervision.server_files import ServerFiles

__all__ = [
    "MAX_REDIRECTS",
    "FetchStopped",
    "InstallFailed",
    "Stop",
    "download_into",
    "fetch_json",
]

MAX_REDIRECTS = 5
#: Seconds a connection or one read may hang before the fetch fails.
SOCKET_TIMEOUT = 30.0
_CHUNK = 64 * 1024


class InstallFailed(LeosuiteError):
    """An install step failed; the message says why (and names no local path)."""

    error_type = "install_failed"
    http_status = 502


class FetchStopped(Exception):
    """The fetch was stopped (the install was cancelled)."""


class Stop:
    """Ends fetches from another thread; the sockets they read are shut down at once."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        with self._lock:
            self._event.set()
            for sock in self._sockets:
                _shut(sock)

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self._event.is_set():
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InstallFailed(f"only http and https URLs are fetched, not {url[:200]!r}")


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:  # fmt: skip
        _check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener(stop: Stop) -> urllib.request.OpenerDirector:
    """urllib with the connections' sockets watched by ``stop``."""

    class Http(http.client.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            stop.watch(self.sock)

    class Https(http.client.HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            stop.watch(self.sock)

    context = ssl.create_default_context()

    class HttpHandler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(Http, req)

    class HttpsHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(Https, req, context=context)

    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        HttpHandler(),
        HttpsHandler(context=context),
        _Redirects(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def _open(url: str, stop: Stop) -> Any:
    _check_url(url)
    # The scheme was checked just above: http or https only.
    request = urllib.request.Request(url, headers={"User-Agent": "leosuite-install"})  # noqa: S310
    try:
        return _opener(stop).open(request, timeout=SOCKET_TIMEOUT)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise InstallFailed(f"{url[:200]} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, HTTPException) as exc:
        if stop.is_set():
            raise FetchStopped from None
        reason = getattr(exc, "reason", None) or exc
        raise InstallFailed(f"cannot fetch {url[:200]}: {reason}") from None


def _chunks(response: Any, url: str, max_bytes: int, stop: Stop) -> Any:
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise InstallFailed(f"{url[:200]} is larger than {max_bytes} bytes")
    got = 0
    while True:
        if stop.is_set():
            raise FetchStopped
        try:
            chunk = response.read1(_CHUNK)
        except (OSError, HTTPException) as exc:
            if stop.is_set():
                raise FetchStopped from None
            raise InstallFailed(f"cannot fetch {url[:200]}: {exc}") from None
        if stop.is_set():
            raise FetchStopped
        if not chunk:
            return
        got += len(chunk)
        if got > max_bytes:
            raise InstallFailed(f"{url[:200]} is larger than {max_bytes} bytes")
        yield chunk


def total_of(response: Any) -> int | None:
    length = response.headers.get("Content-Length")
    return int(length) if length is not None and length.isdigit() else None


def fetch_json(url: str, *, max_bytes: int, stop: Stop, sha1: str | None = None) -> Any:
    """A small JSON document (a manifest), checked against ``sha1`` when given."""
    with _open(url, stop) as response:
        body = b"".join(_chunks(response, url, max_bytes, stop))
    if sha1 is not None and hashlib.sha1(body).hexdigest() != sha1.lower():  # noqa: S324
        raise InstallFailed(f"{url[:200]} does not match its SHA-1")
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise InstallFailed(f"{url[:200]} is not valid JSON") from None


def download_into(
    root: Path,
    to: str,
    url: str,
    checksum: tuple[str, str],
    *,
    max_bytes: int,
    stop: Stop,
    progress: Callable[[int, int | None], None],
) -> int:
    """Fetch ``url`` into the file ``to`` of the directory ``root``; its size.

    ``checksum`` is ``(algorithm, hex)``; ``progress(done, total)`` is called after
    every chunk (``total`` None when the server does not say). A checksum mismatch,
    a body over ``max_bytes`` or an error leaves ``to`` as it was and no file beside it.
    """
    algo, expected = checksum
    hasher = hashlib.new(algo)
    parts = parse_path(to, field="to")
    with _open(url, stop) as response:
        total = total_of(response)
        pending = ServerFiles(root).create(parts)
        try:
            for chunk in _chunks(response, url, max_bytes, stop):
                pending.write(chunk)
                hasher.update(chunk)
                progress(pending.size, total)
            if hasher.hexdigest() != expected:
                raise InstallFailed(f"{to} does not match its {algo.upper()}: refused")
        except BaseException:
            pending.abort()
            raise
        pending.commit()
        return pending.size

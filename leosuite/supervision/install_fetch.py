"""Fetching what an install downloads: blocking calls for a worker thread, standard
library only (``urllib``).

Only ``http`` and ``https`` URLs are fetched, through at most :data:`MAX_REDIRECTS`
redirects that stay on those schemes. A body goes in chunks to a new file beside its
target in the server's directory (opened with no symbolic link followed on the way,
see :class:`~.server_files.ServerFiles`), hashed while it is written, bounded in size,
and renamed into place only when complete and matching its checksum; anything else
removes it. A :class:`Stop` set from another thread ends the fetch with nothing left
behind: at its next chunk, or at once when it connects or waits on a stalled connection
(whose socket it shuts down). A body that brings less than :data:`MIN_WINDOW_BYTES` in
any :data:`WINDOW` seconds fails (a trickle holds a worker thread as a stall does).

A download whose URL takes a setting (``guarded``) reaches public addresses only, on
the way to its URL's own host (which the type's author wrote) and to every redirect
target elsewhere (see :mod:`.install_net`), uses no proxy, and fails with a plain
"download of ... failed" whose reason only the daemon log has (an answer naming the
reason would tell which addresses and ports answer).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import msgspec

from leosuite.errors import LeosuiteError
from leosuite.supervision.file_paths import parse_path
from leosuite.supervision.install_net import connect
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
#: A body must bring at least this many bytes in every ``WINDOW`` seconds.
MIN_WINDOW_BYTES = 1024
WINDOW = 60.0

log = logging.getLogger(__name__)


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


def _opener(stop: Stop, trusted: tuple[str, int] | None) -> urllib.request.OpenerDirector:
    """urllib with the connections' sockets watched by ``stop``; with ``trusted`` (the
    host and port of a guarded URL), any other host must resolve to public addresses."""

    def create(address: tuple[str, int], timeout: Any = None, source: Any = None) -> socket.socket:
        host, port = address
        public_only = trusted is not None and (host.lower(), port) != trusted
        seconds = timeout if isinstance(timeout, (int, float)) else SOCKET_TIMEOUT
        return connect(host, port, timeout=seconds, stop=stop, public_only=public_only)

    class Http(http.client.HTTPConnection):
        def connect(self) -> None:
            self._create_connection = create
            super().connect()
            stop.watch(self.sock)

    class Https(http.client.HTTPSConnection):
        def connect(self) -> None:
            self._create_connection = create
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
        urllib.request.ProxyHandler({} if trusted is not None else None),
        HttpHandler(),
        HttpsHandler(context=context),
        _Redirects(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def _open(url: str, stop: Stop, *, guarded: bool = False) -> Any:
    _check_url(url)
    trusted: tuple[str, int] | None = None
    if guarded:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        trusted = ((parts.hostname or "").lower(), port)
    # The scheme was checked just above: http or https only.
    request = urllib.request.Request(url, headers={"User-Agent": "leosuite-install"})  # noqa: S310
    try:
        return _opener(stop, trusted).open(request, timeout=SOCKET_TIMEOUT)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise InstallFailed(f"{url[:200]} answered HTTP {exc.code}") from None
    except InstallFailed:
        raise
    except Exception as exc:  # whatever urllib, the resolver or a bad answer raise
        if stop.is_set():
            raise FetchStopped from None
        reason = getattr(exc, "reason", None) or exc
        raise InstallFailed(f"cannot fetch {url[:200]}: {reason}") from None


def _length(response: Any) -> int | None:
    """The Content-Length as ASCII digits only (``isdigit`` takes "²" too), else None."""
    length = response.headers.get("Content-Length")
    if length is None or not length.isascii() or not length.isdigit() or len(length) > 19:
        return None
    return int(length)


def _chunks(response: Any, url: str, max_bytes: int, stop: Stop) -> Any:
    length = _length(response)
    if length is not None and length > max_bytes:
        raise InstallFailed(f"{url[:200]} is larger than {max_bytes} bytes")
    got = 0
    window_end, window_start_got = time.monotonic() + WINDOW, 0
    while True:
        if stop.is_set():
            raise FetchStopped
        try:
            chunk = response.read1(_CHUNK)
        except Exception as exc:  # a broken connection or answer, whatever its kind
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
        now = time.monotonic()
        if now >= window_end:
            if got - window_start_got < MIN_WINDOW_BYTES:
                raise InstallFailed(f"{url[:200]} sends too slowly (under {MIN_WINDOW_BYTES} "
                                    f"bytes in {WINDOW:g} s)")  # fmt: skip
            window_end, window_start_got = now + WINDOW, got
        yield chunk


def total_of(response: Any) -> int | None:
    return _length(response)


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
    guarded: bool = False,
    owner: tuple[int, int] | None = None,
) -> int:
    """Fetch ``url`` into the file ``to`` of the directory ``root`` (the file handed to
    ``owner`` when given); its size.

    ``checksum`` is ``(algorithm, hex)``; ``progress(done, total)`` is called after
    every chunk (``total`` None when the server does not say). A checksum mismatch,
    a body over ``max_bytes`` or an error leaves ``to`` as it was and no file beside it.
    ``guarded``: see the module's doc.
    """
    algo, expected = checksum
    hasher = hashlib.new(algo)
    parts = parse_path(to, field="to")
    try:
        response = _open(url, stop, guarded=guarded)
    except InstallFailed as exc:
        if not guarded:
            raise
        log.warning("install: download of %s from %s failed: %s", to, url[:200], exc.message)
        raise InstallFailed(f"download of {to} failed") from None
    with response:
        total = total_of(response)
        pending = ServerFiles(root, owner=owner).create(parts)
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

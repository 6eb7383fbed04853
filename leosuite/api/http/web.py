"""The web dashboard: static files from ``leosuite/web`` at ``/`` and ``/ui/...``.

No build step: the files in the package are what the browser gets. Third-party code is
vendored under ``web/vendor`` (scripts/vendor-web). Every page is served with a strict
Content-Security-Policy: scripts only from this origin (no inline script, no eval),
connections only to this origin and the daemon's WebSocket, no framing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from quart import Blueprint, Response, request

from ...errors import NotFound

__all__ = ["WEB_ROOT", "content_security_policy", "web_blueprint"]

WEB_ROOT = Path(__file__).resolve().parents[2] / "web"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    "": "text/plain; charset=utf-8",  # LICENSE files
}


def content_security_policy(ws_url: str, fleet_sockets: Collection[str] = ()) -> str:
    """Scripts, styles, workers and connections from this origin only, plus the daemon's
    WebSocket (another port, so ``'self'`` does not cover it) and the other nodes'
    WebSocket APIs (``fleet_sockets``: their consoles are read there). Styles allow inline
    ``style`` because xterm.js writes its theme into ``<style>`` elements; scripts never
    run inline."""
    ws = urlsplit(ws_url)
    sockets = " ".join([f"{ws.scheme}://{ws.netloc}", *sorted(fleet_sockets)])
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "worker-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src 'self' {sockets}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


@dataclass(frozen=True)
class _File:
    mtime_ns: int
    body: bytes
    etag: str


class _StaticFiles:
    """Files under ``root`` by relative path, kept in memory with an ETag (re-read when
    the file changes on disk, so an upgrade in place is served at once)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._cache: dict[str, _File] = {}

    def _resolve(self, name: str) -> Path:
        parts = PurePosixPath(name).parts
        if not parts or any(p in ("..", ".") or p.startswith(".") or "\\" in p for p in parts):
            raise NotFound(f"no file {name!r}")
        path = self._root.joinpath(*parts)
        if path.suffix not in CONTENT_TYPES or not path.is_file():
            raise NotFound(f"no file {name!r}")
        return path

    def get(self, name: str) -> tuple[_File, str]:
        path = self._resolve(name)
        try:
            mtime = os.stat(path).st_mtime_ns
            cached = self._cache.get(name)
            if cached is None or cached.mtime_ns != mtime:
                body = path.read_bytes()
                etag = hashlib.sha256(body).hexdigest()[:32]
                cached = self._cache[name] = _File(mtime, body, etag)
        except OSError as exc:
            raise NotFound(f"no file {name!r}") from exc
        return cached, CONTENT_TYPES[path.suffix]


def web_blueprint(
    websocket_url: Callable[[], str], fleet_sockets: Callable[[], Collection[str]] = frozenset
) -> Blueprint:
    """``websocket_url()``: the WebSocket API's URL as the current request reaches it;
    ``fleet_sockets()``: the origins of the other nodes' WebSocket APIs. The dashboard
    itself reads everything through the public APIs."""
    bp = Blueprint("web", __name__)
    files = _StaticFiles(WEB_ROOT)

    def serve(name: str) -> Response:
        file, content_type = files.get(name)
        etag = f'"{file.etag}"'
        headers = {
            "ETag": etag,
            # Revalidate every time (cheap 304s): an upgraded daemon serves new files at once.
            "Cache-Control": "no-cache",
            "Content-Security-Policy": content_security_policy(websocket_url(), fleet_sockets()),
        }
        if request.headers.get("If-None-Match") == etag:
            return Response(b"", status=304, headers=headers)
        return Response(file.body, content_type=content_type, headers=headers)

    @bp.get("/")
    async def index() -> Response:
        return serve("index.html")

    @bp.get("/ui/<path:name>")
    async def static(name: str) -> Response:
        return serve(name)

    return bp

"""Where the client commands find the daemon, and with which token.

The HTTP API's URL is ``--url``, else the ``http`` entry of the local daemon's
``<data dir>/run/endpoints.json`` (``--data-dir``/``--config`` as for ``serve``),
else ``http://127.0.0.1:8975``. ``leosuite login`` saves it with the token; every
other command talks to the saved URL. The WebSocket and admin APIs listen apart: a
flag (``--ws-url``, ``--admin-url``) wins; else the WebSocket URL the daemon announced
at login; else endpoints.json when its ``http`` is the saved URL; else the saved
URL's host with the port of the local settings' ``ws.listen``/``admin.listen``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from ..errors import AuthError, ConfigError
from ..settings import Settings, WsSettings, load_settings
from .http import HttpClient, load_saved_token, token_file

__all__ = [
    "DEFAULT_URL",
    "local_settings",
    "local_ws_settings",
    "resolve_admin_url",
    "resolve_url",
    "resolve_ws_url",
    "saved_client",
]

DEFAULT_URL = "http://127.0.0.1:8975"
_DEFAULT_WS_PORT = 8976
_DEFAULT_ADMIN_PORT = 8977


def local_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """The settings ``serve`` would use here; :class:`ConfigError` when they are bad."""
    config = args.config or (
        Path(environ["LEOSUITE_CONFIG"]) if environ.get("LEOSUITE_CONFIG") else None
    )
    overrides = {"daemon": {"data_dir": args.data_dir}} if args.data_dir else None
    return load_settings(config, environ=environ, overrides=overrides)


def local_ws_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> WsSettings:
    """The local ``[ws]`` settings, or the defaults when the local settings are bad."""
    try:
        return local_settings(args, environ).ws
    except ConfigError:
        return WsSettings()


def _local_daemon(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[Settings | None, dict[str, Any]]:
    """The local settings and the local daemon's endpoints.json; ``None`` and ``{}``
    for what cannot be read (no config, no daemon running here)."""
    try:
        settings = local_settings(args, environ)
    except (OSError, ValueError, ConfigError):
        return None, {}
    try:
        endpoints = json.loads((settings.data_dir / "run" / "endpoints.json").read_text())
    except (OSError, ValueError):
        return settings, {}
    return settings, endpoints if isinstance(endpoints, dict) else {}


def _same_url(a: object, b: str) -> bool:
    return isinstance(a, str) and a.rstrip("/") == b.rstrip("/")


def _port(listen: str | None, default: int) -> int:
    try:
        return int(listen.rpartition(":")[2]) if listen else default
    except ValueError:
        return default


def _host(parts: SplitResult) -> str:
    host = parts.hostname
    return f"[{host}]" if host and ":" in host else host or "127.0.0.1"


def resolve_url(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """``--url``, else the running daemon's endpoints.json, else the default."""
    if getattr(args, "url", None):
        return str(args.url)
    _, endpoints = _local_daemon(args, environ)
    return str(endpoints["http"]) if "http" in endpoints else DEFAULT_URL


def resolve_ws_url(args: argparse.Namespace, environ: Mapping[str, str], http_url: str) -> str:
    """The WebSocket URL of the daemon behind the saved ``http_url``: ``--ws-url``; else
    the one the daemon announced at login (saved with the token); else the local
    daemon's endpoints.json when its ``http`` is ``http_url``; else ``http_url``'s host
    with the port of the local settings' ``ws.listen`` (default 8976)."""
    if getattr(args, "ws_url", None):
        return str(args.ws_url)
    saved = load_saved_token(environ) or {}
    if saved.get("ws_url") and _same_url(str(saved.get("url", "")), http_url):
        return str(saved["ws_url"])
    settings, endpoints = _local_daemon(args, environ)
    if _same_url(endpoints.get("http"), http_url) and "ws" in endpoints:
        return str(endpoints["ws"])
    parts = urlsplit(http_url)
    port = _port(settings.ws.listen if settings else None, _DEFAULT_WS_PORT)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{_host(parts)}:{port}/"


def resolve_admin_url(args: argparse.Namespace, environ: Mapping[str, str], http_url: str) -> str:
    """The admin API of the daemon behind the saved ``http_url``: ``--admin-url``; else
    the local daemon's endpoints.json when its ``http`` is ``http_url``; else
    ``http_url``'s host with the port of the local settings' ``admin.listen`` (default
    8977)."""
    if getattr(args, "admin_url", None):
        return str(args.admin_url)
    settings, endpoints = _local_daemon(args, environ)
    if _same_url(endpoints.get("http"), http_url) and "admin" in endpoints:
        return str(endpoints["admin"])
    parts = urlsplit(http_url)
    port = _port(settings.admin.listen if settings else None, _DEFAULT_ADMIN_PORT)
    return f"{parts.scheme or 'http'}://{_host(parts)}:{port}"


def saved_client(environ: Mapping[str, str]) -> HttpClient:
    """An :class:`HttpClient` of the URL and token ``leosuite login`` saved;
    :class:`AuthError` when there is none."""
    saved = load_saved_token(environ)
    if not saved or "url" not in saved or "token" not in saved:
        raise AuthError(
            f"not logged in (no token in {token_file(environ)}); run 'leosuite login' first"
        )
    return HttpClient(saved["url"], saved["token"])

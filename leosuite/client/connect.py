"""Where the client commands find the daemon, and with which token: one rule for all.

* The **local daemon** is the one of the data directory that ``--data-dir``,
  ``--config``, ``LEOSUITE_CONFIG`` or ``LEOSUITE_DAEMON_DATA_DIR`` name (as for
  ``serve``); without any of them, the one ``leosuite login`` logged in to (none when
  it logged in to a daemon of no local data directory); without a login,
  ``./leosuite-data``. Its ``run/endpoints.json`` names its three APIs while it runs.
* The **HTTP API** is ``--url``; else the local daemon's; else the URL ``login``
  saved; else ``http://127.0.0.1:8975``.
* The **WebSocket API** is ``--ws-url``; else the local daemon's when its HTTP API is
  the one in use; else the one saved at login for that HTTP API (``--ws-url`` given
  to ``login``, or the address the daemon announced); else the HTTP API's host with
  the port of the local settings' ``ws.listen`` (8976).
* The **admin API** is ``--admin-url``; else the local daemon's when its HTTP API is
  the one in use; else the one ``--admin-url`` gave ``login`` for that HTTP API; else
  the HTTP API's host with the port of the local settings' ``admin.listen`` (8977).

The token is the one ``login`` saved. ``login`` also saves the data directory whose
daemon it logged in to, so a daemon started again on other ports is found from any
working directory.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from ..errors import AuthError, ConfigError
from ..settings import Settings, WsSettings, load_settings
from .http import HttpClient, load_saved_token, token_file

__all__ = [
    "DEFAULT_URL",
    "Daemon",
    "add_endpoint_arguments",
    "connect",
    "local_settings",
    "local_ws_settings",
    "saved_client",
]

DEFAULT_URL = "http://127.0.0.1:8975"
_DEFAULT_WS_PORT = 8976
_DEFAULT_ADMIN_PORT = 8977


@dataclass(frozen=True)
class Daemon:
    """The three APIs of the daemon a command talks to, and the saved token."""

    http: str
    ws: str
    admin: str
    token: str
    #: The local data directory whose daemon serves ``http`` (None: not a local one).
    data_dir: Path | None

    def http_client(self) -> HttpClient:
        return HttpClient(self.http, self.token or None)

    def admin_client(self) -> HttpClient:
        return HttpClient(self.admin, self.token or None)


def add_endpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """``--url``, ``--ws-url`` and ``--admin-url``, as every client command takes them."""
    parser.add_argument(
        "--url",
        metavar="URL",
        help="the daemon's HTTP API (default: the local daemon's, else the one logged in "
        f"to, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--ws-url",
        metavar="URL",
        help="the daemon's WebSocket API (default: the local daemon's, else the one "
        "saved at login, else the HTTP API's host with ws.listen's port)",
    )
    parser.add_argument(
        "--admin-url",
        metavar="URL",
        help="the daemon's admin API (default: the local daemon's, else the one saved at "
        "login, else the HTTP API's host with admin.listen's port)",
    )


def local_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """The settings ``serve`` would use here; :class:`ConfigError` when they are bad."""
    config = getattr(args, "config", None) or (
        Path(environ["LEOSUITE_CONFIG"]) if environ.get("LEOSUITE_CONFIG") else None
    )
    data_dir = getattr(args, "data_dir", None)
    overrides = {"daemon": {"data_dir": data_dir}} if data_dir else None
    return load_settings(config, environ=environ, overrides=overrides)


def local_ws_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> WsSettings:
    """The local ``[ws]`` settings, or the defaults when the local settings are bad."""
    try:
        return local_settings(args, environ).ws
    except ConfigError:
        return WsSettings()


def _named_data_dir(args: argparse.Namespace, environ: Mapping[str, str]) -> bool:
    """The command line or the environment names a data directory or a configuration."""
    return bool(
        getattr(args, "data_dir", None)
        or getattr(args, "config", None)
        or environ.get("LEOSUITE_CONFIG")
        or environ.get("LEOSUITE_DAEMON_DATA_DIR")
    )


def _local_data_dir(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    settings: Settings | None,
    saved: Mapping[str, Any] | None,
) -> Path | None:
    if not _named_data_dir(args, environ) and saved is not None and "data_dir" in saved:
        return Path(saved["data_dir"]) if saved["data_dir"] else None
    if settings is not None:
        return settings.data_dir.absolute()
    data_dir = getattr(args, "data_dir", None)
    return Path(data_dir).absolute() if data_dir else None


def _endpoints(data_dir: Path | None) -> dict[str, Any]:
    """The daemon's ``run/endpoints.json``; ``{}`` when no daemon runs there."""
    if data_dir is None:
        return {}
    try:
        endpoints = json.loads((data_dir / "run" / "endpoints.json").read_text())
    except (OSError, ValueError):
        return {}
    return endpoints if isinstance(endpoints, dict) else {}


def _same_url(a: object, b: str) -> bool:
    return isinstance(a, str) and a.rstrip("/") == b.rstrip("/")


def _port(listen: str | None, default: int) -> int:
    try:
        port = int(listen.rpartition(":")[2]) if listen else default
    except ValueError:
        return default
    return port or default  # port 0: the daemon picks one, so only endpoints.json knows it


def _host(parts: SplitResult) -> str:
    host = parts.hostname
    return f"[{host}]" if host and ":" in host else host or "127.0.0.1"


def _saved_for(saved: Mapping[str, Any] | None, key: str, http: str) -> str | None:
    """What login saved under ``key`` for the HTTP API ``http``."""
    if saved and saved.get(key) and _same_url(saved.get("url"), http):
        return str(saved[key])
    return None


def connect(
    args: argparse.Namespace, environ: Mapping[str, str], *, need_token: bool = True
) -> Daemon:
    """The daemon a client command talks to, by the module's rule. :class:`AuthError`
    when ``need_token`` and ``leosuite login`` saved no token."""
    saved = load_saved_token(environ)
    if need_token and (not saved or "url" not in saved or "token" not in saved):
        raise AuthError(
            f"not logged in (no token in {token_file(environ)}); run 'leosuite login' first"
        )
    try:
        settings: Settings | None = local_settings(args, environ)
    except (OSError, ValueError, ConfigError):
        settings = None
    data_dir = _local_data_dir(args, environ, settings, saved)
    endpoints = _endpoints(data_dir)
    http = str(
        getattr(args, "url", None)
        or endpoints.get("http")
        or (saved or {}).get("url")
        or DEFAULT_URL
    ).rstrip("/")
    local = _same_url(endpoints.get("http"), http)
    parts = urlsplit(http)
    ws = getattr(args, "ws_url", None) or (endpoints.get("ws") if local else None)
    ws = ws or _saved_for(saved, "ws_url", http)
    if not ws:
        port = _port(settings.ws.listen if settings else None, _DEFAULT_WS_PORT)
        ws = f"{'wss' if parts.scheme == 'https' else 'ws'}://{_host(parts)}:{port}/"
    admin = getattr(args, "admin_url", None) or (endpoints.get("admin") if local else None)
    admin = admin or _saved_for(saved, "admin_url", http)
    if not admin:
        port = _port(settings.admin.listen if settings else None, _DEFAULT_ADMIN_PORT)
        admin = f"{parts.scheme or 'http'}://{_host(parts)}:{port}"
    token = ""
    if saved and saved.get("token"):
        if _token_for(saved, http, data_dir if local else None):
            token = str(saved["token"])
        elif need_token:
            raise AuthError(
                f"the saved login is for {saved.get('url')}, not {http}: "
                f"run 'leosuite login --url {http}' first"
            )
    return Daemon(http, str(ws), str(admin), token, data_dir if local else None)


def _token_for(saved: Mapping[str, Any], http: str, local_dir: Path | None) -> bool:
    """Whether the saved token may go to ``http``: the daemon it was saved for, at its
    saved URL or (restarted on other ports) found through the saved data directory.
    Never to a URL named on the command line or found in another directory."""
    if _same_url(saved.get("url"), http):
        return True
    saved_dir = saved.get("data_dir")
    return bool(saved_dir) and local_dir is not None and Path(str(saved_dir)) == local_dir


def saved_client(environ: Mapping[str, str], args: argparse.Namespace | None = None) -> HttpClient:
    """An :class:`HttpClient` of the daemon's HTTP API (by the module's rule, with the
    flags of ``args``) and the saved token; :class:`AuthError` when there is none."""
    return connect(args or argparse.Namespace(), environ).http_client()

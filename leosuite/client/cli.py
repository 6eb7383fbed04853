"""Client commands of ``leosuite`` (talk to a running daemon): login, logout."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import AuthError, ConfigError
from ..settings import Settings, load_settings
from .commands.bans import add_ban_commands, run_ban_command
from .commands.log import add_log_command, resolve_admin_url, run_log_command
from .commands.servers import add_server_commands, run_server_command
from .commands.sessions import add_session_commands, run_session_command
from .http import HttpClient, load_saved_token, login, save_token, token_file

__all__ = ["add_client_commands", "run_client_command"]

DEFAULT_URL = "http://127.0.0.1:8975"


def add_client_commands(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    login_parser = commands.add_parser(
        "login", help="log in to a running daemon and save the token"
    )
    common(login_parser)
    login_parser.add_argument(
        "--url", help="HTTP API base URL (default: from the data dir, else " + DEFAULT_URL + ")"
    )
    login_parser.add_argument("--username", "-u", help="account name (prompted if missing)")
    login_parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    logout_parser = commands.add_parser("logout", help="end the saved session")
    common(logout_parser)
    add_server_commands(commands, common)
    add_session_commands(commands, common)
    add_ban_commands(commands, common)
    add_log_command(commands, common)


def _local_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    config = args.config or (
        Path(environ["LEOSUITE_CONFIG"]) if environ.get("LEOSUITE_CONFIG") else None
    )
    overrides = {"daemon": {"data_dir": args.data_dir}} if args.data_dir else None
    return load_settings(config, environ=environ, overrides=overrides)


def resolve_url(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """``--url``, else the running daemon's endpoints.json, else the default."""
    if getattr(args, "url", None):
        return str(args.url)
    try:
        settings = _local_settings(args, environ)
        endpoints = json.loads((settings.data_dir / "run" / "endpoints.json").read_text())
        return str(endpoints["http"])
    except (OSError, ValueError, KeyError, ConfigError):
        return DEFAULT_URL


def resolve_ws_url(args: argparse.Namespace, environ: Mapping[str, str], http_url: str) -> str:
    """The WebSocket URL of the daemon behind the saved ``http_url``: ``--ws-url``; else
    the one the daemon announced at login (saved with the token); else the local
    daemon's endpoints.json when its ``http`` is ``http_url``; else ``http_url``'s host
    with the port of the local settings' ``ws.listen`` (default 8976)."""
    if getattr(args, "ws_url", None):
        return str(args.ws_url)
    saved = load_saved_token(environ) or {}
    if saved.get("ws_url") and str(saved.get("url", "")).rstrip("/") == http_url.rstrip("/"):
        return str(saved["ws_url"])
    parts = urlsplit(http_url)
    port = 8976
    try:
        settings = _local_settings(args, environ)
        port = int(settings.ws.listen.rpartition(":")[2])
        endpoints = json.loads((settings.data_dir / "run" / "endpoints.json").read_text())
        if str(endpoints["http"]).rstrip("/") == http_url.rstrip("/"):
            return str(endpoints["ws"])
    except (OSError, ValueError, KeyError, ConfigError):
        pass
    scheme = "wss" if parts.scheme == "https" else "ws"
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    return f"{scheme}://{host or '127.0.0.1'}:{port}/"


def saved_client(environ: Mapping[str, str]) -> HttpClient:
    saved = load_saved_token(environ)
    if not saved or "url" not in saved or "token" not in saved:
        raise AuthError(
            f"not logged in (no token in {token_file(environ)}); run 'leosuite login' first"
        )
    return HttpClient(saved["url"], saved["token"])


def run_client_command(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    if args.command == "login":
        url = resolve_url(args, environ)
        username = args.username or input("Username: ")
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = getpass.getpass("Password: ")
        client = HttpClient(url)

        def progress(done: int, total: int) -> None:
            if sys.stderr.isatty():
                print(f"\rproof of work {done}/{total}", end="", file=sys.stderr, flush=True)

        result = login(client, username, password, progress=progress)
        if sys.stderr.isatty():
            print(file=sys.stderr)
        path = save_token(
            url,
            result["user"]["username"],
            result["access_token"],
            environ,
            ws_url=client.websocket_url,
        )
        if args.json:
            print(json.dumps({"url": url, "user": result["user"], "token_file": str(path)}))
        else:
            print(f"logged in to {url} as {result['user']['username']}; token saved in {path}")
        return 0
    if args.command == "logout":
        client = saved_client(environ)
        try:
            client.post("/api/auth/logout")
        finally:
            token_file(environ).unlink(missing_ok=True)
        print("logged out")
        return 0
    if args.command == "server":
        try:
            client = saved_client(environ)
            if args.server_command == "logs" and args.follow:
                args.ws_url = resolve_ws_url(args, environ, client.base_url)
            return run_server_command(args, client)
        except KeyboardInterrupt:
            return 130
    if args.command == "session":
        client = saved_client(environ)
        ws_url = resolve_ws_url(args, environ, client.base_url)
        return run_session_command(args, ws_url, client.token or "")
    if args.command == "log":
        client = saved_client(environ)
        admin_url = resolve_admin_url(args, client.base_url, lambda: _local_settings(args, environ))
        return run_log_command(args, HttpClient(admin_url, client.token))
    if args.command == "ban":
        client = saved_client(environ)
        admin_url = resolve_admin_url(args, client.base_url, lambda: _local_settings(args, environ))
        return run_ban_command(args, admin_url, client.token or "")
    raise ConfigError(f"unknown command {args.command!r}")

"""The client commands of ``leosuite`` (talk to a running daemon): their argparse
wiring, and the dispatch of a parsed command line to its ``commands`` module."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError
from .commands.bans import add_ban_commands, run_ban_command
from .commands.log import add_log_command, run_log_command
from .commands.login import add_login_commands, run_login, run_logout
from .commands.servers import add_server_commands, run_server_command
from .commands.sessions import add_session_commands, run_session_command
from .connect import resolve_admin_url, resolve_ws_url, saved_client
from .http import HttpClient

__all__ = ["add_client_commands", "run_client_command"]


def add_client_commands(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    add_login_commands(commands, common)
    add_server_commands(commands, common)
    add_session_commands(commands, common)
    add_ban_commands(commands, common)
    add_log_command(commands, common)


def run_client_command(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    if args.command == "login":
        return run_login(args, environ)
    if args.command == "logout":
        return run_logout(environ)
    if args.command not in ("server", "session", "log", "ban"):
        raise ConfigError(f"unknown command {args.command!r}")
    client = saved_client(environ)
    if args.command == "server":
        return run_server_command(args, client, environ)
    if args.command == "session":
        ws_url = resolve_ws_url(args, environ, client.base_url)
        return run_session_command(args, ws_url, client.token or "")
    if args.command == "log":
        admin_url = resolve_admin_url(args, environ, client.base_url)
        return run_log_command(args, HttpClient(admin_url, client.token))
    admin_url = resolve_admin_url(args, environ, client.base_url)
    return run_ban_command(args, admin_url, client.token or "")

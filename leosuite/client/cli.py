"""The client commands of ``leosuite`` (talk to a running daemon): their argparse
wiring, and the dispatch of a parsed command line to its ``commands`` module."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError
from .commands.backups import add_backup_commands, run_backup_command
from .commands.bans import add_ban_commands, run_ban_command
from .commands.log import add_log_command, run_log_command
from .commands.login import add_login_commands, run_login, run_logout
from .commands.nodes import add_node_commands, run_node_command
from .commands.schedules import add_schedule_commands, run_schedule_command
from .commands.servers import add_server_commands, run_server_command
from .commands.sessions import add_session_commands, run_session_command
from .connect import add_endpoint_arguments, connect

__all__ = ["add_client_commands", "run_client_command"]


def add_client_commands(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    def client_common(parser: argparse.ArgumentParser) -> None:
        # Every client command finds its daemon by the one rule of the connect module.
        common(parser)
        add_endpoint_arguments(parser)

    add_login_commands(commands, client_common)
    add_server_commands(commands, client_common)
    add_session_commands(commands, client_common)
    add_ban_commands(commands, client_common)
    add_log_command(commands, client_common)
    add_schedule_commands(commands, client_common)
    add_backup_commands(commands, client_common)
    add_node_commands(commands, client_common)


def run_client_command(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    if args.command == "login":
        return run_login(args, environ)
    known = ("logout", "server", "session", "log", "ban", "schedule", "backup", "node")
    if args.command not in known:
        raise ConfigError(f"unknown command {args.command!r}")
    daemon = connect(args, environ)
    if args.command == "logout":
        return run_logout(args, daemon, environ)
    if args.command == "server":
        return run_server_command(args, daemon, environ)
    if args.command == "session":
        return run_session_command(args, daemon.ws, daemon.token)
    if args.command == "schedule":
        return run_schedule_command(args, daemon.http_client())
    if args.command == "backup":
        return run_backup_command(args, daemon)
    if args.command == "log":
        return run_log_command(args, daemon.admin_client())
    if args.command == "node":
        return run_node_command(args, daemon.admin, daemon.token)
    return run_ban_command(args, daemon.admin, daemon.token)

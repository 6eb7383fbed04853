"""``leosuite login`` and ``leosuite logout``: the saved session of a running daemon.

    leosuite login [--url URL] [--username NAME] [--password-stdin]
    leosuite logout

``login`` runs the proof-of-work login against the HTTP API that
:mod:`~leosuite.client.connect` finds (``--url``, else the local daemon's, ...) and
saves the URL, the token, the WebSocket URL the daemon announced (or ``--ws-url``),
``--admin-url`` if given, and the local data directory of that daemon (if it is a local
one) where :func:`~leosuite.client.token_file` says; every other client command uses
them. ``logout`` destroys the token on the daemon and deletes the file, even when the
daemon refused.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

from ..connect import Daemon, connect
from ..http import HttpClient, login, save_token, token_file

__all__ = ["add_login_commands", "run_login", "run_logout"]


def add_login_commands(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    login_parser = commands.add_parser(
        "login", help="log in to a running daemon and save the token"
    )
    common(login_parser)
    login_parser.add_argument("--username", "-u", help="account name (prompted if missing)")
    login_parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    logout_parser = commands.add_parser("logout", help="end the saved session")
    common(logout_parser)


def run_login(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    daemon = connect(args, environ, need_token=False)
    url = daemon.http
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
        ws_url=args.ws_url or client.websocket_url,
        admin_url=args.admin_url,
        data_dir=str(daemon.data_dir) if daemon.data_dir is not None else None,
    )
    if args.json:
        print(json.dumps({"url": url, "user": result["user"], "token_file": str(path)}))
    else:
        print(f"logged in to {url} as {result['user']['username']}; token saved in {path}")
    return 0


def run_logout(args: argparse.Namespace, daemon: Daemon, environ: Mapping[str, str]) -> int:
    try:
        daemon.http_client().post("/api/auth/logout")
    finally:
        token_file(environ).unlink(missing_ok=True)
    if args.json:
        print(json.dumps({"url": daemon.http, "logged_out": True}))
    else:
        print(f"logged out of {daemon.http}")
    return 0

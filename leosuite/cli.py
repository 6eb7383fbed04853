"""The ``leosuite`` command: the daemon (``serve``) and a client of a running daemon.

``leosuite user ...`` works on the store directly, so it also works while the daemon
is down; ``leosuite reload`` signals the daemon of the data directory (SIGHUP) and
waits until it serves again. Output is for humans; ``--json`` gives JSON.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from .errors import ConfigError, LeosuiteError, StartupError, StoreError
from .reload import Handoff, reload_daemon, take_handoff
from .settings import Settings, load_settings, parse_address

__all__ = ["main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
#: The status a shell reports for a tool that SIGPIPE ended (128 + 13).
EXIT_BROKEN_PIPE = 141


class _Version(argparse.Action):
    """``--version``: the version is read only when asked for (its metadata costs
    every command's start)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from . import __version__

        sys.stdout.write(f"leosuite {__version__}\n")
        parser.exit()


def _common(parser: argparse.ArgumentParser, *, json_help: str | None = None) -> None:
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML configuration file (env LEOSUITE_CONFIG)"
    )
    parser.add_argument(
        "--data-dir", metavar="DIR", help="data directory (default ./leosuite-data)"
    )
    parser.add_argument(
        "--json", action="store_true", help=json_help or "print JSON instead of text"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leosuite",
        description="Supervise game and application servers and host their community.",
        epilog="Run 'leosuite COMMAND --help' for a command's options. Docs: README.md",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", help="run the daemon in the foreground")
    _common(
        serve,
        json_help="print the addresses it serves on (as run/endpoints.json) as one JSON "
        "line on stdout once it serves, and again after each reload",
    )
    serve.add_argument(
        "--http", metavar="HOST:PORT", help="HTTP API address (default 127.0.0.1:8975)"
    )
    serve.add_argument(
        "--ws", metavar="HOST:PORT", help="WebSocket address (default 127.0.0.1:8976)"
    )
    serve.add_argument(
        "--admin", metavar="HOST:PORT", help="admin API address (default 127.0.0.1:8977)"
    )
    serve.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="daemon log level"
    )
    serve.add_argument(
        "--init",
        action="store_true",
        help="create a fresh store where the store file is missing or empty (refused "
        "where it holds data)",
    )

    reload = commands.add_parser(
        "reload",
        help="restart the daemon in place (new code, same sockets); every server keeps running",
    )
    _common(reload)

    config = commands.add_parser("config", help="show the effective configuration")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = config_commands.add_parser(
        "show",
        help="print the settings in effect and where each comes from (secrets masked); "
        "server settings the admin API stored are read from the store",
    )
    _common(show)
    show.add_argument(
        "--sources",
        action="store_true",
        help="with --json: print {settings, sources, server_settings} instead of the settings",
    )
    reset = config_commands.add_parser(
        "reset",
        help="remove server settings the admin API stored, so the configuration's values "
        "apply again (the daemon must be stopped; a running one: DELETE /server/)",
    )
    _common(reset)
    reset.add_argument(
        "keys", nargs="*", metavar="KEY", help="a setting's admin API name (default: all)"
    )

    user = commands.add_parser("user", help="manage accounts (works on the store directly)")
    user_commands = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    for name, text in (
        ("add", "create an account"),
        ("passwd", "set an account's password (ends its sessions)"),
        ("lock", "lock an account (ends its sessions)"),
        ("unlock", "unlock an account"),
        ("list", "list accounts"),
    ):
        sub = user_commands.add_parser(name, help=text)
        _common(sub)
        if name != "list":
            sub.add_argument("username")
        if name == "add":
            sub.add_argument(
                "--flags", default="", help="comma-separated flags: ADMIN, HOST, MOD (default none)"
            )
        if name in ("add", "passwd"):
            sub.add_argument(
                "--password-stdin",
                action="store_true",
                help="read the password from standard input instead of prompting",
            )

    from .client.cli import add_client_commands

    add_client_commands(commands, _common)
    return parser


def _settings(args: argparse.Namespace, environ: dict[str, str]) -> Settings:
    return load_settings(
        _config_file(args, environ), environ=environ, overrides=_flag_settings(args)
    )


def _config_file(args: argparse.Namespace, environ: dict[str, str]) -> Path | None:
    path: Path | None = args.config
    return path or (Path(environ["LEOSUITE_CONFIG"]) if environ.get("LEOSUITE_CONFIG") else None)


def _flag_settings(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The settings the command line's flags set, ``{section: {key: value}}``."""
    overrides: dict[str, dict[str, Any]] = {}
    if getattr(args, "data_dir", None):
        overrides.setdefault("daemon", {})["data_dir"] = args.data_dir
    for flag in ("http", "ws", "admin"):
        value = getattr(args, flag, None)
        if value:
            parse_address(value, key=f"--{flag}")
            overrides.setdefault(flag, {})["listen"] = value
    if getattr(args, "log_level", None):
        overrides.setdefault("daemon", {})["log_level"] = args.log_level
    return overrides


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise ConfigError("the passwords do not match")
    return first


def _print(args: argparse.Namespace, value: Any, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(value, indent=2, sort_keys=True))
    else:
        print(text)


def _cmd_serve(args: argparse.Namespace, settings: Settings, handoff: Handoff | None) -> int:
    from .audit import LogFormatter
    from .daemon import run_daemon

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.daemon.log_level.upper(), handlers=[handler])
    logging.getLogger("leosuite.hypercorn").setLevel(logging.WARNING)

    def announce(endpoints: Any) -> None:
        sys.stdout.write(msgspec.json.encode(endpoints).decode() + "\n")
        sys.stdout.flush()

    return run_daemon(
        settings, on_ready=announce if args.json else None, init=args.init, handoff=handoff
    )


def _cmd_reload(args: argparse.Namespace, settings: Settings) -> int:
    done = reload_daemon(settings.data_dir)
    _print(
        args,
        msgspec.to_builtins(done),
        f"leosuite (pid {done.pid}) reloaded: serving again after {done.seconds:.2f} s "
        f"(generation {done.generation})",
    )
    return EXIT_OK


def _cmd_config(args: argparse.Namespace, settings: Settings, environ: dict[str, str]) -> int:
    from .config_cli import reset_config, show_config

    if args.config_command == "reset":
        return reset_config(args, settings)
    return show_config(args, settings, _config_file(args, environ), environ, _flag_settings(args))


def _tell_nodes_tokens_ended(settings: Settings) -> None:
    """Daemons on a PostgreSQL store re-check their tokens and token-less chat connections
    at once, even when no token ended (on SQLite they see the store's file change)."""
    if not settings.store.url:
        return
    import psycopg

    from .cluster.pg_bus import publish_once

    try:
        publish_once(settings.store.url, f"{settings.node.name} (command line)", "token", {})
    except psycopg.Error as exc:
        print(f"warning: the running daemons were not told ({exc}); they notice within 30 s",
              file=sys.stderr)  # fmt: skip


def _cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    from .auth import accounts as account_ops
    from .auth.passwords import PasswordHasher
    from .store import accounts
    from .store.opening import open_store

    auth = settings.auth
    hasher = PasswordHasher(
        time_cost=auth.hash_time_cost,
        memory_kib=auth.hash_memory_kib,
        parallelism=auth.hash_parallelism,
    )
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = open_store(settings, data_dir=settings.data_dir)
    try:
        action = args.user_command
        if action == "list":
            rows = db.call_sync(accounts.list_all)
            value = [
                {"id": a.id, "username": a.username, "flags": sorted(a.flags), "locked": a.locked}
                for a in rows
            ]
            lines = [f"{'ID':>4}  {'USERNAME':<32}  {'FLAGS':<16}  LOCKED"] + [
                f"{a.id:>4}  {a.username:<32}  {accounts.format_flags(a.flags) or '-':<16}  "
                f"{'yes' if a.locked else 'no'}"
                for a in rows
            ]
            _print(args, value, "\n".join(lines))
        elif action == "add":
            accounts.validate_username(args.username)
            flags = [f for f in args.flags.split(",") if f.strip()]
            password = _read_password(args)
            account = account_ops.create_account(
                db,
                hasher,
                args.username,
                password,
                flags=flags,
                min_length=auth.min_password_length,
            )
            _print(
                args,
                {"id": account.id, "username": account.username},
                f"created account {account.username!r}",
            )
        elif action == "passwd":
            password = _read_password(args)
            ended = account_ops.set_password(
                db, hasher, args.username, password, min_length=auth.min_password_length
            )
            _tell_nodes_tokens_ended(settings)
            _print(args, {"tokens_destroyed": ended}, f"password changed; {ended} session(s) ended")
        elif action in ("lock", "unlock"):
            ended = account_ops.lock_account(db, args.username, action == "lock")
            if action == "lock":
                _tell_nodes_tokens_ended(settings)
            _print(
                args, {"tokens_destroyed": ended}, f"account {action}ed; {ended} session(s) ended"
            )
    finally:
        db.close()
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            status = _main(argv)
        except SystemExit:  # argparse's --help, --version and usage errors
            sys.stdout.flush()
            raise
        sys.stdout.flush()  # a reader gone shows here, not in the interpreter's exit
    except BrokenPipeError:
        return _broken_pipe()
    return status


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # What a reloading daemon handed this image; never seen as a setting or by a child.
    handoff = take_handoff(os.environ)
    environ = dict(os.environ)
    try:
        if args.command == "serve":
            return _cmd_serve(args, _settings(args, environ), handoff)
        if args.command == "config":
            return _cmd_config(args, _settings(args, environ), environ)
        if args.command in ("reload", "user"):
            settings = _settings(args, environ)
            handler = {"reload": _cmd_reload, "user": _cmd_user}
            return handler[args.command](args, settings)
        from .client.cli import run_client_command

        return run_client_command(args, environ)
    except (ConfigError, StartupError, StoreError) as exc:
        print(f"leosuite: {exc.message}", file=sys.stderr)
        return EXIT_FAILURE
    except LeosuiteError as exc:
        where = f" ({exc.field})" if exc.field else ""
        print(f"leosuite: {exc.message}{where}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except msgspec.MsgspecError as exc:  # pragma: no cover - defensive
        print(f"leosuite: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _broken_pipe() -> int:
    """The reader of our output went away (``| head``): end quietly, as a tool that
    SIGPIPE ended would, without the interpreter's complaint when it flushes stdout."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

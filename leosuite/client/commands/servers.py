"""``leosuite server ...``: manage servers of a running daemon with the saved token."""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

from ...errors import InvalidInput
from ..connect import Daemon, local_ws_settings
from ..http import HttpClient
from .console_source import TAIL_BYTES, ConsoleSource
from .files import add_files_arguments, run_files_command
from .install import run_install_command
from .kept import add_kept_arguments, run_kept_command
from .logfiles import print_logfile
from .shares import add_share_commands, run_share_command

__all__ = ["add_server_commands", "run_server_command"]

ACTIONS = ("start", "stop", "restart", "kill", "force-kill")
#: The states a start or restart that did not bring its server up answers with.
FAILED_START_STATES = ("crashed", "backoff")


def add_server_commands(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    server = commands.add_parser("server", help="manage servers of a running daemon")
    sub = server.add_subparsers(dest="server_command", metavar="ACTION", required=True)

    def add(name: str, text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=text)
        common(parser)
        return parser

    add("list", "servers this account may see")
    add("types", "server types this account may create, or one type's variables").add_argument(
        "type", nargs="?"
    )
    create = add("create", "create a server from a type")
    create.add_argument("name")
    create.add_argument(
        "--type", "-t", required=True, help="server type (see 'leosuite server types')"
    )
    create.add_argument(
        "--set",
        "-s",
        action="append",
        default=[],
        metavar="VAR=VALUE",
        help="a variable (repeatable)",
    )
    create.add_argument(
        "--node", help="the node that runs it (default: the daemon's own; see 'leosuite node list')"
    )
    destroy = add("destroy", "stop and remove a server")
    destroy.add_argument("name")
    destroy.add_argument(
        "--delete-files", action="store_true", help="also delete its directory and logs"
    )
    for action in ACTIONS:
        power = add(action, f"{action.replace('-', ' ')} servers (one, several, or --all)")
        power.add_argument(
            "names", nargs="*", metavar="NAME", help="one or more servers (several: one WebSocket)"
        )
        power.add_argument(
            "--all", dest="all_servers", action="store_true", help="every server you may see"
        )
        power.add_argument(
            "--parallel",
            type=_positive_int,
            metavar="N",
            help="actions under way at once with several servers (default and most: 1024)",
        )
    cmd = add("cmd", "send a console command line to a running server")
    cmd.add_argument("name")
    cmd.add_argument(
        "line", nargs="+", metavar="COMMAND", help="the command line (words are joined with spaces)"
    )
    add("status", "state, pid, uptime, CPU and memory (all servers without NAME)").add_argument(
        "name", nargs="?"
    )
    add("install", "run a server's install steps now, showing their progress").add_argument("name")
    settings = add("settings", "show or change a server's settings")
    settings.add_argument("name")
    settings.add_argument("--set", "-s", action="append", default=[], metavar="VAR=VALUE")
    add_share_commands(add)
    add_kept_arguments(add("kept", "what destroyed servers left behind: list, or purge (ADMIN)"))
    add_files_arguments(add("files", "a server's files: ls, cat, put, get, mv, rm, mkdir"), common)
    logs = add("logs", "print a server's console (-f: follow it live)")
    logs.add_argument("name")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new output")
    logs.add_argument(
        "--from",
        dest="from_index",
        type=int,
        default=None,
        metavar="INDEX",
        help="start at this readIndex (default: the last 64 KiB)",
    )
    logs.add_argument(
        "--file",
        default=None,
        metavar="FILE",
        help="one of the server's own log files (e.g. latest.log) instead of its console",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not at least 1")
    return value


def _coerce(text: str, kind: str, name: str) -> object:
    try:
        if kind in ("int", "port"):
            return int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        raise InvalidInput(f"{name}: {text!r} is not a number", field=name) from None
    if kind == "bool":
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise InvalidInput(f"{name}: {text!r} is not true or false", field=name)
    return text


def _parse_sets(pairs: list[str], kinds: Mapping[str, str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise InvalidInput(f"--set needs VAR=VALUE, got {pair!r}", field="set")
        if name not in kinds:
            raise InvalidInput(
                f"unknown variable {name!r} (known: {', '.join(sorted(kinds))})", field=name
            )
        values[name] = _coerce(text, kinds[name], name)
    return values


def _write_console(answer: Mapping[str, Any]) -> None:
    data = answer["data"]
    raw = base64.b64decode(data) if answer.get("encoding") == "base64" else data.encode("utf-8")
    sys.stdout.buffer.write(raw)
    sys.stdout.buffer.flush()


def _print_console(client: HttpClient, name: str, start: int | None) -> None:
    """``logs``: the console from ``start`` (default: its last bytes) to its end, read
    from the node that runs the server."""
    source = ConsoleSource(client, name)
    index = source.tail_start() if start is None else start
    while True:
        answer = source.read(index)
        if answer["oldReadIndex"] > index:
            print(f"[{answer['oldReadIndex'] - index} bytes no longer retained]", file=sys.stderr)
        _write_console(answer)
        index = answer["nextReadIndex"]
        if index >= answer["readIndex"]:
            return


def _follow(daemon: Daemon, client: HttpClient, name: str, start: int | None) -> None:
    """``logs -f``: from this daemon, or from the node that runs the server (a console
    token opens the subscription there; the subscription outlives the token)."""
    if _follow_ws(daemon.ws, daemon.token, name, start):
        return
    source = ConsoleSource(client, name, remote=True)  # its status was just read
    first = source.tail_start() if start is None else start
    token = source.token()  # names the node's WebSocket address too
    _follow_ws(source.ws_url, None, name, first, console_token=token)


def _follow_ws(
    url: str, token: str | None, name: str, start: int | None, *, console_token: str = ""
) -> bool:
    """``console.subscribe`` over one WebSocket (logged in with ``token``; or opened
    with ``console_token`` and no login, from ``start``), raw bytes to stdout. False
    when the daemon logged in to does not run the server (nothing was printed)."""
    from ..ws import ConsoleOverrun, open_ws_client
    from .ws_session import open_session, run_ws  # trio loads only when a command needs it

    async def follow() -> bool:
        async with contextlib.AsyncExitStack() as stack:
            first = start
            if token is None:
                ws = await stack.enter_async_context(open_ws_client(url))
            else:
                ws = await stack.enter_async_context(open_session(url, token))
                current = (await ws.call("server.status", {"server": name}))["readIndex"]
                if current is None:  # only the node that runs it knows where it ends
                    return False
                if first is None:
                    first = max(0, current - TAIL_BYTES)
            subscription = ws.subscribe_console(name, from_=first, console_token=console_token)
            async with subscription as console:
                async for event in console:
                    if isinstance(event, ConsoleOverrun):
                        print(f"[{event.skipped} bytes skipped]", file=sys.stderr, flush=True)
                    else:
                        sys.stdout.buffer.write(event.data)
                        sys.stdout.buffer.flush()
            print(f"[{name}'s console closed: the server was destroyed]", file=sys.stderr)
        return True

    return run_ws(follow)


def _failed_start(client: HttpClient, answer: Mapping[str, Any], as_json: bool) -> int:
    """A start that ended ``crashed`` or ``backoff`` fails the command, with the reason."""
    name = answer["server"]
    reason = client.post("/api/server_status", {"server": name}).get("last_error") or ""
    if as_json:
        print(json.dumps({**answer, "last_error": reason}, indent=2))
    else:
        print(
            f"leosuite: {name}: {answer['status']}: {reason or 'no reason given'}", file=sys.stderr
        )
    return 1


def _format_status(status: Mapping[str, Any]) -> str:
    memory = f"{status['memory'] / 1048576:.1f} MiB" if status.get("memory") else "-"
    cpu = f"{status['cpu']:.1f}%" if status.get("cpu") is not None else "-"
    uptime = f"{status['uptime']:.0f}s" if status.get("uptime") is not None else "-"
    line = (
        f"{status['server']:<24} {status['status']:<9} {status['type']:<12} "
        f"pid {status['pid'] or '-':<8} up {uptime:<8} cpu {cpu:<7} mem {memory}"
    )
    if status.get("last_error"):
        line += f"\n    last error: {status['last_error']}"
    return line


def _format_variable(v: Mapping[str, Any]) -> str:
    need = "required" if v["required"] else "default " + json.dumps(v["default"])
    return f"{v['name']:<20} {v['type']:<7} {need:<20} {v['description']}"


def _format_setting(v: Mapping[str, Any]) -> str:
    readonly = " (readonly)" if v["readonly"] else ""
    return f"{v['name']:<20} {json.dumps(v['value']):<24} {v['type']}{readonly}"


def _bulk_action(args: argparse.Namespace, daemon: Daemon, environ: Mapping[str, str]) -> int:
    """Several servers, or ``--all``: over one WebSocket (see :mod:`.bulk`)."""
    command = f"leosuite server {args.server_command}"
    if args.all_servers and args.names:
        print(f"{command}: give server names or --all, not both", file=sys.stderr)
        return 2
    if not args.all_servers and not args.names:
        print(f"{command}: give one or more server names, or --all", file=sys.stderr)
        return 2
    from .bulk import check_names, print_bulk, run_bulk  # trio loads only when a command needs it

    names = None if args.all_servers else check_names(args.names)
    hints = local_ws_settings(args, environ)  # the local daemon's (a remote one's may differ)
    result = run_bulk(
        daemon.ws,
        daemon.token,
        args.server_command,
        names,
        parallel=args.parallel,
        rate=hints.request_rate,
        burst=hints.request_burst,
        as_json=args.json,
    )
    return print_bulk(args.server_command, result, args.json, args.all_servers)


def run_server_command(args: argparse.Namespace, daemon: Daemon, environ: Mapping[str, str]) -> int:
    """One ``leosuite server`` action on ``daemon``; the exit status."""
    client = daemon.http_client()
    action = args.server_command
    out: Any
    if action == "list":
        out = client.post("/api/server_list")
        text = "\n".join(out["servers"]) or "(no servers)"
    elif action == "types":
        out = client.post("/api/server_create_options", {"type": args.type} if args.type else {})
        if args.type:
            text = "\n".join(_format_variable(v) for v in out["variables"])
        else:
            text = "\n".join(f"{t['type']:<16} {t['description']}" for t in out["types"])
    elif action == "create":
        options = client.post("/api/server_create_options", {"type": args.type})
        kinds = {v["name"]: v["type"] for v in options["variables"]}
        settings = _parse_sets(args.set, kinds)
        request = {"server": args.name, "type": args.type, "settings": settings}
        out = client.post(
            "/api/server_create", {**request, **({"node": args.node} if args.node else {})}
        )
        text = f"created {out['server']}" + (f" on node {args.node}" if args.node else "")
    elif action == "destroy":
        client.post("/api/server_destroy", {"server": args.name, "delete_files": args.delete_files})
        out, text = {"server": args.name}, f"destroyed {args.name}"
    elif action in ACTIONS:
        if args.all_servers or len(args.names) != 1:
            return _bulk_action(args, daemon, environ)
        out = client.post(f"/api/server_{action.replace('-', '_')}", {"server": args.names[0]})
        text = f"{out['server']}: {out['status']}"
        if action in ("start", "restart") and out["status"] in FAILED_START_STATES:
            return _failed_start(client, out, args.json)
    elif action == "cmd":
        client.post("/api/server_cmd", {"server": args.name, "command": " ".join(args.line)})
        out, text = {"server": args.name}, "sent"
    elif action == "status":
        if args.name:
            out = client.post("/api/server_status", {"server": args.name})
            text = _format_status(out)
        else:
            out = client.post("/api/server_status")
            text = "\n".join(_format_status(s) for s in out["servers"].values()) or "(no servers)"
    elif action == "settings":
        current = client.post("/api/server_settings", {"server": args.name})
        body: dict[str, Any] = {"server": args.name}
        if args.set:
            body["set"] = _parse_sets(args.set, {v["name"]: v["type"] for v in current})
            current = client.post("/api/server_settings", body)
        out = current
        text = "\n".join(_format_setting(v) for v in current)
    elif action == "logs":
        if args.file is not None:
            print_logfile(client, args.name, args.file, args.from_index, follow=args.follow)
        elif args.follow:
            _follow(daemon, client, args.name, args.from_index)
        else:
            _print_console(client, args.name, args.from_index)
        return 0
    elif action == "install":
        return run_install_command(daemon.ws, daemon.token, args.name, args.json)
    elif action in ("share", "shares"):
        return run_share_command(args, client)
    elif action == "kept":
        return run_kept_command(args, client)
    elif action == "files":
        return run_files_command(args, client)
    else:  # pragma: no cover - argparse restricts the choices
        raise InvalidInput(f"unknown server action {action!r}")
    print(json.dumps(out, indent=2) if args.json else text)
    return 0

"""``leosuite ban ...``: the server-wide IP bans of a running daemon, over its admin
API (``/banlist/``) with the saved token (``leosuite login``) as a Bearer token.

    leosuite ban list
    leosuite ban add IP [--subnet N] [--expires ISO|DURATION] [--comment TEXT]
    leosuite ban remove ID

IP may carry its prefix (``10.0.0.0/8``); ``--subnet 0`` (the default) bans the one
address. ``--expires`` is an ISO 8601 date (UTC unless it has an offset) or a
duration from now: ``90s``, ``30m``, ``1h``, ``2d``, ``1w`` or sums like ``1h30m``.
The admin API is found as for every client command (:mod:`leosuite.client.connect`:
``--admin-url``, else the local daemon's ``run/endpoints.json``, ...). The account must
have the ADMIN flag.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..http import HttpClient

__all__ = ["add_ban_commands", "parse_expiry", "run_ban_command"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(?:\d{1,9}[smhdw])+", re.ASCII)


def parse_expiry(text: str, now: float | None = None) -> str:
    """An ISO 8601 date as given, or a duration (``1h30m``) turned into the ISO 8601
    UTC date that far from ``now``; ``""`` stays ``""`` (never)."""
    text = text.strip()
    if not text:
        return ""
    if _DURATION.fullmatch(text.lower()):
        seconds = sum(
            int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([smhdw])", text.lower(), re.ASCII)
        )
        if seconds <= 0:
            raise argparse.ArgumentTypeError(f"{text!r}: a duration must be longer than 0")
        start = time.time() if now is None else now
        moment = datetime.datetime.fromtimestamp(start + seconds, tz=datetime.UTC)
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    try:
        datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an ISO 8601 date nor a duration like 1h or 2d"
        ) from None
    return text


def add_ban_commands(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    ban = commands.add_parser("ban", help="server-wide IP bans of a running daemon (ADMIN)")
    sub = ban.add_subparsers(dest="ban_command", metavar="ACTION", required=True)

    def add(name: str, text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=text)
        common(parser)
        return parser

    add("list", "the bans in force")
    adding = add("add", "ban an address or a network; its open connections are closed")
    adding.add_argument("ip", metavar="IP", help="IPv4 or IPv6 address, optionally with /PREFIX")
    adding.add_argument(
        "--subnet", type=int, metavar="N", help="prefix length (0, the default: just the address)"
    )
    adding.add_argument(
        "--expires",
        type=parse_expiry,
        metavar="WHEN",
        help="ISO 8601 date or a duration from now (90s, 30m, 1h, 2d, 1w); default never",
    )
    adding.add_argument("--comment", default="", help="free-form note")
    add("remove", "lift a ban").add_argument("id", type=int, metavar="ID", help="the ban's id")


def _target(ban: Mapping[str, Any]) -> str:
    return f"{ban['ip']}/{ban['subnet']}" if ban.get("subnet") else str(ban["ip"])


def _print_list(bans: list[dict[str, Any]]) -> None:
    if not bans:
        print("(no bans)")
        return
    rows = [
        (str(b["id"]), _target(b), b["expires"] or "never", b["added"], b["comment"]) for b in bans
    ]
    header = ("ID", "ADDRESS", "EXPIRES", "ADDED", "COMMENT")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        print("  ".join([*cells, row[4]]).rstrip())


def run_ban_command(args: argparse.Namespace, admin_url: str, token: str) -> int:
    client = HttpClient(admin_url, token)
    action = args.ban_command
    if action == "list":
        result: Any = client.get("/banlist/")
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            _print_list(result)
    elif action == "add":
        body: dict[str, Any] = {"ip": args.ip, "comment": args.comment}
        if args.subnet is not None:
            body["subnet"] = args.subnet
        if args.expires:
            body["expires"] = args.expires
        result = client.post("/banlist/", body)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            until = f"until {result['expires']}" if result["expires"] else "never expires"
            print(f"ban #{result['id']}: {_target(result)} ({until})")
            if result.get("appliesToYou"):
                print(f"warning: {result.get('message', 'this ban covers your own address')}")
    else:
        result = client.request("DELETE", f"/banlist/{args.id}/")
        if args.json:
            print(json.dumps({"id": args.id, **result}))
        else:
            print(f"ban #{args.id} removed")
    return 0

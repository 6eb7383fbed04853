"""``leosuite server kept``: what destroyed servers left behind, over the HTTP API
(``/api/server_kept_list``, ``/api/server_kept_purge``) with the saved token of an
ADMIN account.

    leosuite server kept [list] [NAME ...]
    leosuite server kept purge [NAME ...] [--older-than DAYS]

A purge needs server names, ``--older-than`` or both (``--older-than 0`` alone: every
entry); it exits 1 when an entry could not be removed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

from ..http import HttpClient

__all__ = ["add_kept_arguments", "run_kept_command"]


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not 0 <= value <= 36525:
        raise argparse.ArgumentTypeError(f"{text!r} is not 0 to 36525 days")
    return value


def add_kept_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "kept_action",
        nargs="?",
        choices=("list", "purge"),
        default="list",
        metavar="list|purge",
        help="list (the default) or purge what destroyed servers left behind",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="only these servers' entries")
    parser.add_argument(
        "--older-than",
        type=_days,
        metavar="DAYS",
        help="purge: only entries set aside at least DAYS days ago (0: any age)",
    )


def _size(size: int) -> str:
    """Bytes as ``512 B``, ``1.5 KiB`` ... ``2.0 TiB``."""
    value, unit = float(size), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"


def _line(entry: Mapping[str, Any]) -> str:
    return (
        f"{entry['kind']:<6} {entry['server']:<24} {_size(entry['size']):>10}  "
        f"{entry['since']}  {entry['path']}"
    )


def run_kept_command(args: argparse.Namespace, client: HttpClient) -> int:
    """``list`` or ``purge``; the exit status."""
    if args.kept_action == "list":
        if args.older_than is not None:
            print("leosuite server kept list: --older-than is for purge", file=sys.stderr)
            return 2
        out = client.post("/api/server_kept_list")
        if args.names:
            out = {"kept": [e for e in out["kept"] if e["server"] in args.names]}
        total = sum(e["size"] for e in out["kept"])
        lines = [_line(e) for e in out["kept"]]
        text = "\n".join([*lines, f"{len(lines)} kept, {_size(total)}"]) if lines else "(none)"
        print(json.dumps(out, indent=2) if args.json else text)
        return 0
    if not args.names and args.older_than is None:
        print(
            "leosuite server kept purge: give server names, --older-than DAYS, or both "
            "(--older-than 0 alone purges everything kept)",
            file=sys.stderr,
        )
        return 2
    body: dict[str, Any] = {}
    if args.names:
        body["servers"] = args.names
    if args.older_than is not None:
        body["older_than"] = args.older_than
    out = client.post("/api/server_kept_purge", body)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for entry in out["purged"]:
            print(f"purged {entry['path']} ({_size(entry['size'])})")
        if not out["purged"] and not out["failed"]:
            print("(nothing to purge)")
    for failure in out["failed"]:
        print(f"could not purge {failure['path']}: {failure['message']}", file=sys.stderr)
    return 1 if out["failed"] else 0

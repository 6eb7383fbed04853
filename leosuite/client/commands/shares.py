"""``leosuite server share NAME ACCOUNT --rights R,R`` and ``leosuite server shares NAME``:
give another account rights on a server (``--rights ""`` or ``--revoke`` takes them all
away) and list who has which; the owner of the server or an ADMIN only."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from ...auth.permissions import RIGHTS
from ..http import HttpClient

__all__ = ["add_share_commands", "run_share_command"]


def add_share_commands(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    share = add("share", "give another account rights on a server (owner or ADMIN)")
    share.add_argument("name")
    share.add_argument("account", help="the username of the account")
    given = share.add_mutually_exclusive_group(required=True)
    given.add_argument(
        "--rights",
        metavar="R,R",
        help=f"exactly these rights, comma-separated ({', '.join(RIGHTS)}); '' revokes",
    )
    given.add_argument("--revoke", action="store_true", help="take every right away")
    add("shares", "the accounts a server is shared with and their rights").add_argument("name")


def run_share_command(args: argparse.Namespace, client: HttpClient) -> int:
    out: Any
    if args.server_command == "share":
        rights = [] if args.revoke else [r.strip() for r in args.rights.split(",") if r.strip()]
        body = {"server": args.name, "account": args.account, "rights": rights}
        out = client.post("/api/server_share_set", body)
        granted = ", ".join(out["rights"]) or "no rights (revoked)"
        text = f"{out['server']}: {out['account']} has {granted}"
    else:
        out = client.post("/api/server_share_list", {"server": args.name})
        lines = [
            f"{s['account']:<32} {','.join(s['rights'])}{'  (locked)' if s.get('locked') else ''}"
            for s in out["shares"]
        ]
        text = "\n".join(lines) or "(not shared)"
    print(json.dumps(out, indent=2) if args.json else text)
    return 0

"""``leosuite node list``: the nodes sharing the store of a running daemon, over its
admin API (``/nodes/``) with the saved token (``leosuite login``) of an ADMIN
account, one line each: name, state, seconds since its heartbeat moved, servers, URL.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from typing import Any

from ..http import HttpClient

__all__ = ["add_node_commands", "run_node_command"]


def add_node_commands(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    node = commands.add_parser("node", help="the nodes sharing the daemon's store (ADMIN)")
    sub = node.add_subparsers(dest="node_command", metavar="ACTION", required=True)
    common(sub.add_parser("list", help="every node, its state and last heartbeat"))


def _line(entry: Mapping[str, Any]) -> str:
    mark = " (this node)" if entry["this"] else ""
    return (
        f"{entry['name']:<24} {entry['state']:<11} {entry['heartbeat_age']:>8.1f}s "
        f"{entry['servers']:>5} servers  {entry['public_url']}{mark}"
    )


def run_node_command(args: argparse.Namespace, admin_url: str, token: str) -> int:
    nodes: list[dict[str, Any]] = HttpClient(admin_url, token).get("/nodes/")
    if args.json:
        print(json.dumps(nodes, indent=2))
    else:
        print("\n".join(_line(n) for n in nodes) or "(no nodes)")
    return 0

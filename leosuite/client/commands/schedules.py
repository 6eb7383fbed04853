"""``leosuite schedule list|add|rm|run``: a server's schedules, through the HTTP API
(``/api/server_schedule_*``).

    leosuite schedule list SERVER
    leosuite schedule add SERVER NAME (--cron "M H DOM MON DOW" | --every SECONDS)
        [--zone ZONE] --step STEP [--step STEP ...] [--only-if-running]
        [--only-if-players] [--disabled] [--replace]
    leosuite schedule rm SERVER NAME
    leosuite schedule run SERVER NAME

A step is ``command <line>``, ``start``, ``stop``, ``restart``, ``backup`` or ``wait
<seconds>``; ``--replace`` changes the schedule of that name instead of creating one.
"""

from __future__ import annotations

import argparse
import datetime
import json
from collections.abc import Callable, Mapping
from typing import Any

from ..http import HttpClient

__all__ = ["add_schedule_commands", "format_schedule", "run_schedule_command"]


def add_schedule_commands(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    schedule = commands.add_parser("schedule", help="the schedules of a server")
    sub = schedule.add_subparsers(dest="schedule_command", metavar="ACTION", required=True)

    def add(name: str, text: str, *, named: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=text)
        common(parser)
        parser.add_argument("server", metavar="SERVER")
        if named:
            parser.add_argument("name", metavar="NAME", help="the schedule's name")
        return parser

    add("list", "a server's schedules and when each runs next", named=False)
    create = add("add", "create a schedule, or change one with --replace (owner or ADMIN)")
    when = create.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", metavar="'M H DOM MON DOW'", help="five crontab fields")
    when.add_argument("--every", type=float, metavar="SECONDS", help="an interval instead")
    create.add_argument("--zone", help="the time zone of --cron (default UTC), e.g. Europe/Berlin")
    create.add_argument(
        "--step",
        action="append",
        required=True,
        metavar="STEP",
        help="command LINE, start, stop, restart, backup or wait SECONDS; repeat, in order",
    )
    create.add_argument("--only-if-running", action="store_true", help="skip unless running")
    create.add_argument(
        "--only-if-players", action="store_true", help="skip unless players are online"
    )
    create.add_argument("--disabled", action="store_true", help="store it without running it")
    create.add_argument("--replace", action="store_true", help="change the existing schedule")
    add("rm", "delete a schedule (owner or ADMIN)")
    add("run", "run a schedule now (owner or ADMIN)")


def _iso_utc(stamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(stamp, tz=datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def format_schedule(s: Mapping[str, Any]) -> str:
    when = f"cron {s['cron']} {s['zone']}" if s["cron"] else f"every {s['interval']:g}s"
    following = _iso_utc(s["next_run"]) if s["next_run"] is not None else "(disabled)"
    flags = "".join(
        f" [{flag}]"
        for flag, on in (("only if running", s["only_if_running"]),
                         ("only if players", s["only_if_players"]))
        if on
    )  # fmt: skip
    line = f"{s['name']:<20} next {following}  {when}{flags}: {'; '.join(s['steps'])}"
    return f"{line}\n{'':<20} last: {s['last_result']}" if s["last_result"] else line


def run_schedule_command(args: argparse.Namespace, client: HttpClient) -> int:
    out: Any
    action = args.schedule_command
    named = {"server": args.server, "name": getattr(args, "name", "")}
    if action == "list":
        out = client.post("/api/server_schedule_list", {"server": args.server})
        text = "\n".join(format_schedule(s) for s in out["schedules"]) or "(no schedules)"
    elif action == "add":
        body = {
            **named,
            "cron": args.cron,
            "interval": args.every,
            "zone": args.zone,
            "steps": args.step,
            "enabled": not args.disabled,
            "only_if_running": args.only_if_running,
            "only_if_players": args.only_if_players,
        }
        path = "update" if args.replace else "create"
        out = client.post(f"/api/server_schedule_{path}", body)
        text = format_schedule(out["schedule"])
    elif action == "rm":
        client.post("/api/server_schedule_delete", named)
        out = {**named, "deleted": True}
        text = f"deleted schedule {args.name} of {args.server}"
    else:
        out = client.post("/api/server_schedule_run", named)
        text = f"schedule {args.name} of {args.server} started"
    print(json.dumps(out, indent=2) if args.json else text)
    return 0

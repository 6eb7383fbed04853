"""``leosuite session ...``: chat sessions of a running daemon, over its WebSocket API
(``session.*`` calls) with the saved token.

    leosuite session list
    leosuite session show SESSION
    leosuite session close SESSION [--reason TEXT]
    leosuite session say SESSION MESSAGE... [--alert]
    leosuite session set SESSION [--title T] [--closed on|off] [--persistent on|off]
                                 [--nsfm on|off] [--max-users N] [--preserve-chat on|off]

SESSION is a session's id or name. close, say and set need an ADMIN or MOD account.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from typing import Any

from ...errors import InvalidInput

__all__ = ["add_session_commands", "run_session_command"]

_SWITCHES = {"on": True, "off": False, "true": True, "false": False, "yes": True, "no": False}


def _switch(text: str) -> bool:
    try:
        return _SWITCHES[text.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"{text!r} is not on or off") from None


def add_session_commands(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    session = commands.add_parser("session", help="chat sessions of a running daemon")
    sub = session.add_subparsers(dest="session_command", metavar="ACTION", required=True)

    def add(name: str, text: str, *, target: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=text)
        common(parser)
        if target:
            parser.add_argument("session", metavar="SESSION", help="a session's id or name")
        return parser

    add("list", "every session", target=False)
    add("show", "a session's properties and users")
    add("close", "shut a session down (ADMIN or MOD)").add_argument(
        "--reason", default="", help="told to its members"
    )
    say = add("say", "a SYSTEM message to every member (ADMIN or MOD)")
    say.add_argument("message", nargs="+", metavar="MESSAGE", help="words are joined by spaces")
    say.add_argument("--alert", action="store_true", help="send it as an alert")
    change = add("set", "change a session's properties (ADMIN or MOD)")
    change.add_argument("--title")
    for flag, help_text in (
        ("--closed", "closed to new users"),
        ("--persistent", "kept across daemon restarts, even when empty"),
        ("--nsfm", "not safe for minors"),
        ("--preserve-chat", "keep chat in the history (replayed to new members)"),
    ):
        change.add_argument(flag, type=_switch, metavar="on|off", help=help_text)
    change.add_argument(
        "--max-users", type=int, metavar="N", help="user limit (users already in stay)"
    )


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _flags(s: Mapping[str, Any]) -> str:
    names = [
        name
        for name, key in (
            ("password", "hasPassword"),
            ("closed", "closed"),
            ("persistent", "persistent"),
            ("nsfm", "nsfm"),
        )
        if s.get(key)
    ]
    return ",".join(names) or "-"


def _format_list(sessions: list[Mapping[str, Any]]) -> str:
    if not sessions:
        return "(no sessions)"
    lines = [f"{'NAME':<24} {'USERS':>5}  {'FLAGS':<26} {'SIZE':>9}  {'STARTED':<20}  ID"]
    for s in sessions:
        lines.append(
            f"{s['alias']:<24} {s['userCount']:>5}  {_flags(s):<26} {s['size']:>9}  "
            f"{s['startTime']:<20}  {s['id']}"
        )
        if s["title"]:
            lines.append(f"    {s['title']}")
    return "\n".join(lines)


def _format_detail(s: Mapping[str, Any]) -> str:
    lines = [
        f"session      {s['alias']} ({s['id']})",
        f"title        {s['title'] or '-'}",
        f"founder      {s['founder'] or '-'}",
        f"started      {s['startTime']}",
        f"users        {s['userCount']} of at most {s['maxUserCount']}",
        f"history      {s['size']} of {s['maxSize']} bytes"
        + ("" if s["preserveChat"] else " (chat not preserved)"),
        f"password     {_yes(s['hasPassword'])}",
        f"closed       {_yes(s['closed'])}",
        f"persistent   {_yes(s['persistent'])}",
        f"nsfm         {_yes(s['nsfm'])}",
    ]
    for u in s["users"]:
        roles = [r for r in ("op", "mod", "muted") if u[r]] + ([] if u["auth"] else ["guest"])
        lines.append(f"  {u['id']:>6} {u['name']:<32} {u['ip'] or '-':<16} {' '.join(roles)}")
    return "\n".join(lines)


def _set_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"session": args.session}
    for option, key in (
        ("title", "title"),
        ("closed", "closed"),
        ("persistent", "persistent"),
        ("nsfm", "nsfm"),
        ("preserve_chat", "preserveChat"),
        ("max_users", "maxUserCount"),
    ):
        value = getattr(args, option)
        if value is not None:
            body[key] = value
    if len(body) == 1:
        raise InvalidInput(
            "nothing to change: give --title, --closed, --persistent, --nsfm, "
            "--preserve-chat or --max-users"
        )
    return body


def _request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    action = args.session_command
    if action == "list":
        return "session.list", {}
    if action == "show":
        return "session.show", {"session": args.session}
    if action == "close":
        return "session.close", {"session": args.session, "reason": args.reason}
    if action == "say":
        text = " ".join(args.message)
        return "session.say", {"session": args.session, "message": text, "alert": args.alert}
    if action == "set":
        return "session.set", _set_body(args)
    raise InvalidInput(f"unknown session action {action!r}")  # pragma: no cover


def _call(url: str, token: str, kind: str, content: dict[str, Any]) -> Any:
    from .ws_session import open_session, run_ws  # trio loads only when a command needs it

    async def call() -> Any:
        async with open_session(url, token) as ws:
            return await ws.call(kind, content)

    return run_ws(call)


def run_session_command(args: argparse.Namespace, ws_url: str, token: str) -> int:
    kind, content = _request(args)
    out = _call(ws_url, token, kind, content)
    action = args.session_command
    if action == "list":
        text = _format_list(out)
    elif action in ("show", "set"):
        text = _format_detail(out)
    elif action == "close":
        text = f"closed {args.session}"
    else:
        text = f"sent to {args.session} (message {out['id']})"
    print(json.dumps(out, indent=2) if args.json else text)
    return 0

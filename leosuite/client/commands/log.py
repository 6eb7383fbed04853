"""``leosuite log``: the audit log of a running daemon, read over its admin API
(``GET /log/``) with the saved token as a Bearer token (the account must be ADMIN).

    leosuite log [--session S] [--after TIME] [--page N] [--json] [--admin-url URL]
    leosuite log -f [--session S] [--after TIME] [--interval SECONDS] [--json]

Text output is one line per entry, oldest first: ``TIME LEVEL TOPIC [SESSION] USER:
MESSAGE``. ``--json`` prints the page as the API answers it (newest first); with
``-f`` it prints one JSON object per line instead. ``-f`` prints the newest page,
then asks for entries after the newest one it has every ``--interval`` seconds
(default 1) and prints them as they come, until interrupted.

The admin API listens apart from the HTTP API; it is found as for every client
command (:mod:`leosuite.client.connect`: ``--admin-url``, else the local daemon's
``run/endpoints.json``, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import IO, Any

from ...errors import AuthError, InvalidInput
from ..http import ApiError, HttpClient

__all__ = ["add_log_command", "run_log_command"]

PAGE_SIZE = 100
#: Pages one follow poll reads at most (entries beyond are reported as skipped).
_MAX_FOLLOW_PAGES = 20


def add_log_command(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = commands.add_parser(
        "log", help="the audit log of a running daemon (admin API; ADMIN accounts)"
    )
    common(parser)
    parser.add_argument("--session", metavar="S", help="only this session's entries (any case)")
    parser.add_argument(
        "--after", metavar="TIME", help="only entries after TIME (ISO 8601 or unix seconds)"
    )
    parser.add_argument("--page", type=int, metavar="N", help="page N (0: the newest 100)")
    parser.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new entries as they come"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="with -f: how often to ask for new entries (default 1)",
    )


def format_entry(entry: Mapping[str, Any]) -> str:
    line = f"{entry['timestamp']} {entry['level']:<5} {entry['topic']}"
    if entry.get("session"):
        line += f" [{entry['session']}]"
    if entry.get("user"):
        line += f" {entry['user']}"
    return f"{line}: {entry['message']}"


def _key(entry: Mapping[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True)


class _Reader:
    def __init__(self, client: HttpClient, session: str | None) -> None:
        self.client = client
        self.session = session

    def page(self, page: int, after: str | None) -> list[dict[str, Any]]:
        query = {"page": str(page)}
        if self.session:
            query["session"] = self.session
        if after:
            query["after"] = after
        try:
            entries = self.client.get("/log/?" + urllib.parse.urlencode(query))
        except ApiError as exc:
            if exc.message.endswith("(HTTP 401)"):
                raise AuthError(
                    "the admin API refused the saved token (expired, or not an ADMIN "
                    "account); run 'leosuite login' again"
                ) from None
            raise
        if not isinstance(entries, list):
            raise ApiError(f"unexpected answer from the admin API: {str(entries)[:200]}")
        return entries


def run_log_command(
    args: argparse.Namespace,
    client: HttpClient,
    *,
    out: IO[str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    out = out or sys.stdout
    reader = _Reader(client, args.session)
    if args.page is not None and args.page < 0:
        raise InvalidInput("--page must be 0 or more", field="page")
    if not args.follow:
        entries = reader.page(args.page or 0, args.after)
        if args.json:
            print(json.dumps(entries, indent=2), file=out)
        elif not entries:
            print("(no entries)", file=out)
        else:
            for entry in reversed(entries):
                print(format_entry(entry), file=out)
        return 0
    if args.page is not None:
        raise InvalidInput("-f follows the newest entries: leave --page out", field="page")
    if not args.interval > 0:
        raise InvalidInput("--interval must be more than 0", field="interval")
    _follow(reader, args.after, args.interval, args.json, out, sleep)
    return 0  # pragma: no cover - _follow returns only by an exception


def _follow(
    reader: _Reader,
    after: str | None,
    interval: float,
    as_json: bool,
    out: IO[str],
    sleep: Callable[[float], None],
) -> None:
    cursor = after
    seen: set[str] = set()  # entries already shown whose timestamp is the cursor
    first = True
    while True:
        fetched: list[dict[str, Any]] = []
        for number in range(_MAX_FOLLOW_PAGES if not first else 1):
            batch = reader.page(number, cursor)
            fetched.extend(batch)
            if len(batch) < PAGE_SIZE:
                break
        else:
            if not first:
                print(
                    f"leosuite: more than {_MAX_FOLLOW_PAGES * PAGE_SIZE} new entries since "
                    "the last look; older ones among them were skipped",
                    file=sys.stderr,
                    flush=True,
                )
        first = False
        fresh = [e for e in reversed(fetched) if _key(e) not in seen]
        for entry in fresh:
            print(json.dumps(entry) if as_json else format_entry(entry), file=out, flush=True)
        if fresh:
            newest = max(str(e["timestamp"]) for e in fresh)
            if newest != cursor:
                cursor, seen = newest, set()
            seen.update(_key(e) for e in fetched if e["timestamp"] == cursor)
        sleep(interval)

"""Bulk power actions: ``leosuite server stop a b c`` / ``leosuite server stop --all``.

Several servers are handled over ONE WebSocket connection (no new daemon API): the
``server.<action>`` calls are pipelined, at most ``parallel`` in flight (the daemon
handles up to ``ws.max_inflight`` of one connection at once). ADMIN sessions are not
rate limited; other accounts' connections are (``ws.request_rate`` after a burst of
``ws.request_burst``): the first RATE_LIMITED answer, which the daemon gives before
doing anything, makes the client pace itself with a token bucket seeded from the local
settings (slower at every further refusal) and send that call again.

One line per server as its answer arrives (or one JSON document at the end), then a
summary; exit 1 if any server failed.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from ...errors import InvalidInput
from ...store.servers import validate_name
from ..ws import WsCallError, WsClient, WsConnectionError
from .ws_session import open_session, run_ws

__all__ = ["BulkResult", "Outcome", "check_names", "print_bulk", "run_bulk"]

RATE_LIMITED = 3
PROGRESS_INTERVAL = 2.0


@dataclass
class Outcome:
    """One server's answer: ``status`` on success, else ``error`` (and ``status_code``
    for a refused call, or ``status`` for a start that ended crashed)."""

    server: str
    status: str | None = None
    error: str | None = None
    status_code: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_json(self) -> dict[str, Any]:
        if self.ok:
            return {"server": self.server, "ok": True, "status": self.status}
        failed: dict[str, Any] = {
            "server": self.server,
            "ok": False,
            "error": self.error,
            "status_code": self.status_code,
        }
        if self.status is not None:
            failed["status"] = self.status
        return failed


@dataclass
class BulkResult:
    names: list[str]
    outcomes: dict[str, Outcome]
    #: Set when the connection was lost: the servers without an outcome are unknown.
    lost: str | None = None
    seconds: float = 0.0


def check_names(names: Sequence[str]) -> list[str]:
    """The names in order without repeats; :class:`InvalidInput` naming the first bad one
    (before anything is sent)."""
    for name in names:
        try:
            validate_name(name)
        except InvalidInput as exc:
            raise InvalidInput(f"invalid server name {name!r}: {exc.message}") from None
    return list(dict.fromkeys(names))


class Pacer:
    """Unpaced until the daemon refuses a call (ADMIN sessions never are); from then on
    a client-side token bucket kept under the daemon's: ``rate`` calls a second after a
    burst of ``burst``. Every further refusal empties it and lowers the rate by a fifth
    (the daemon's setting may be lower than the local hint)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = max(rate, 0.1)
        self.burst = float(max(burst, 1))
        self.tokens = self.burst
        self.stamp = trio.current_time()
        self.refused = 0

    async def take(self) -> None:
        if not self.refused:
            await trio.lowlevel.checkpoint()
            return
        while True:
            now = trio.current_time()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await trio.sleep((1 - self.tokens) / self.rate)

    def refused_once(self) -> None:
        if self.refused:
            self.rate = max(0.5, self.rate * 0.8)
        self.refused += 1
        self.tokens = 0.0
        self.stamp = trio.current_time()


async def _call(ws: WsClient, pacer: Pacer, kind: str, name: str) -> Outcome:
    while True:
        await pacer.take()
        try:
            answer = await ws.call(kind, {"server": name})
        except WsCallError as exc:
            if exc.status_code == RATE_LIMITED:
                pacer.refused_once()
                continue
            return Outcome(name, error=exc.status_string, status_code=exc.status_code)
        status = answer.get("status") if isinstance(answer, dict) else None
        if kind in ("server.start", "server.restart") and status in ("crashed", "backoff"):
            return await _failed_start(ws, name, str(status))
        return Outcome(name, status=str(status) if status is not None else "done")


async def _failed_start(ws: WsClient, name: str, status: str) -> Outcome:
    """A start that ended ``crashed`` or ``backoff`` is a failure, with its reason."""
    try:
        reason = (await ws.call("server.status", {"server": name})).get("last_error")
    except WsCallError:
        reason = None
    return Outcome(name, status=status, error=f"{status}: {reason or 'no reason given'}")


async def _bulk(
    url: str,
    token: str,
    action: str,
    names: list[str] | None,
    *,
    parallel: int,
    rate: float,
    burst: int,
    on_outcome: Callable[[Outcome, int, int], None],
) -> BulkResult:
    kind = "server." + action.replace("-", "_")
    result = BulkResult([], {})
    t0 = trio.current_time()
    async with open_session(url, token) as ws:
        pacer = Pacer(rate, burst)
        if names is None:
            await pacer.take()
            names = sorted((await ws.call("server.list"))["servers"])
        result.names = names
        queue: Iterator[str] = iter(names)

        async def worker() -> None:
            for name in queue:
                outcome = await _call(ws, pacer, kind, name)
                result.outcomes[name] = outcome
                on_outcome(outcome, len(result.outcomes), len(names))

        try:
            async with trio.open_nursery() as nursery:
                for _ in range(min(parallel, len(names))):
                    nursery.start_soon(worker)
        except* WsConnectionError as group:
            result.lost = group.exceptions[0].args[0] if group.exceptions[0].args else "lost"
    result.seconds = trio.current_time() - t0
    return result


def _printable(name: str) -> str:
    return name if name.isprintable() else repr(name)


def run_bulk(
    url: str,
    token: str,
    action: str,
    names: list[str] | None,
    *,
    parallel: int,
    rate: float,
    burst: int,
    as_json: bool,
) -> BulkResult:
    """Run the bulk action, printing a line per server as it is answered (text mode)
    and, on a TTY in JSON mode, a count every few seconds on stderr."""
    last = [-math.inf]
    tty = sys.stderr.isatty()

    def on_outcome(outcome: Outcome, done: int, total: int) -> None:
        if not as_json:
            if outcome.ok:
                print(f"{outcome.server}: {outcome.status}", flush=True)
            else:
                print(f"{_printable(outcome.server)}: error: {outcome.error}", flush=True)
        elif tty:
            now = trio.current_time()
            if now - last[0] >= PROGRESS_INTERVAL or done == total:
                last[0] = now
                print(f"\r{action}: {done}/{total}", end="", file=sys.stderr, flush=True)

    async def main() -> BulkResult:
        return await _bulk(
            url,
            token,
            action,
            names,
            parallel=parallel,
            rate=rate,
            burst=burst,
            on_outcome=on_outcome,
        )

    try:
        return run_ws(main)
    finally:
        if as_json and tty and last[0] != -math.inf:
            print(file=sys.stderr)


def print_bulk(action: str, result: BulkResult, as_json: bool, all_servers: bool) -> int:
    """The summary (text) or the whole document (JSON); the exit code."""
    ok = sum(1 for o in result.outcomes.values() if o.ok)
    failed = len(result.outcomes) - ok
    unknown = len(result.names) - len(result.outcomes)
    if as_json:
        document: dict[str, Any] = {
            "action": action,
            "servers": [result.outcomes[n].as_json() for n in result.names if n in result.outcomes],
            "ok": ok,
            "failed": failed,
        }
        if result.lost is not None:
            document["connection_lost"] = result.lost
            document["unknown"] = [n for n in result.names if n not in result.outcomes]
        print(json.dumps(document, indent=2))
    elif not result.names:
        print("no servers" + (" (this account sees none)" if all_servers else ""))
    else:
        line = f"{action}: {ok} ok, {failed} failed of {len(result.names)}"
        if result.lost is not None:
            line += f"; connection lost ({result.lost}): {unknown} unknown"
        print(f"{line} in {result.seconds:.1f} s")
    return 1 if failed or result.lost is not None else 0

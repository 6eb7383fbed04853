"""Bulk power actions: ``leosuite server stop a b c`` / ``leosuite server stop --all``.

Several servers are handled by ONE ``server.power_bulk`` call on one WebSocket: the
daemon checks each server as the single call does, runs the actions (at most
``parallel`` at once, the daemon's own bound when not given) and pushes a
``power_bulk_result`` as each ends; its answer lists every server's outcome again, so a
push the client missed is still reported. A RATE_LIMITED answer (given before anything
is done; ADMIN sessions are never limited) is retried after a pause that grows at every
further refusal.

One line per server as its result arrives (or one JSON document at the end), then a
summary; exit 1 if any server failed.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
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
#: A start that ended in one of these states failed (its reason is asked for).
FAILED_STARTS = ("crashed", "backoff")


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


def _outcome_of(result: Mapping[str, Any]) -> Outcome:
    """A ``power_bulk_result`` (or an entry of the answer's ``servers``)."""
    server = str(result.get("server", ""))
    if "status_code" in result:
        return Outcome(
            server,
            error=str(result.get("status_string") or "failed"),
            status_code=int(result["status_code"]),
        )
    return Outcome(server, status=str(result.get("status", "done")))


async def _failed_start(ws: WsClient, outcome: Outcome) -> Outcome:
    """A start that ended ``crashed`` or ``backoff`` is a failure, with its reason."""
    status = str(outcome.status)
    try:
        reason = (await ws.call("server.status", {"server": outcome.server})).get("last_error")
    except WsCallError:
        reason = None
    return Outcome(outcome.server, status=status, error=f"{status}: {reason or 'no reason given'}")


async def _call_paced(ws: WsClient, request: dict[str, Any], rate: float) -> Any:
    """The call, sent again after a pause while the daemon answers RATE_LIMITED."""
    pause = 1.0 / max(rate, 0.1)
    while True:
        try:
            return await ws.call("server.power_bulk", request)
        except WsCallError as exc:
            if exc.status_code != RATE_LIMITED:
                raise
        await trio.sleep(pause)
        pause = min(pause * 1.5, 10.0)


async def _bulk(
    url: str,
    token: str,
    action: str,
    names: list[str] | None,
    *,
    parallel: int | None,
    rate: float,
    on_outcome: Callable[[Outcome, int, int], None],
) -> BulkResult:
    kind = action.replace("-", "_")
    result = BulkResult(list(names or []), {})
    starting = kind in ("start", "restart")
    request: dict[str, Any] = {"action": kind}
    request.update({"all": True} if names is None else {"servers": names})
    if parallel is not None:
        request["parallel"] = parallel
    t0 = trio.current_time()
    total = [len(result.names)]

    def settle(outcome: Outcome) -> None:
        if outcome.server in result.outcomes:
            return
        result.outcomes[outcome.server] = outcome
        on_outcome(outcome, len(result.outcomes), max(total[0], len(result.outcomes)))

    try:
        async with open_session(url, token) as ws:
            deferred: list[Outcome] = []  # failed starts: their reason is asked at the end

            def take(outcome: Outcome) -> None:
                if starting and outcome.ok and outcome.status in FAILED_STARTS:
                    deferred.append(outcome)
                else:
                    settle(outcome)

            async with trio.open_nursery() as nursery:

                async def watch() -> None:
                    async for message in ws.pushes:
                        if message.type == "power_bulk_result" and isinstance(
                            message.content, dict
                        ):
                            take(_outcome_of(message.content))

                nursery.start_soon(watch)
                answer = await _call_paced(ws, request, rate)
                nursery.cancel_scope.cancel()
            listed = [_outcome_of(entry) for entry in answer.get("servers", [])]
            result.names = [o.server for o in listed]
            total[0] = len(result.names)
            for outcome in listed:
                if outcome.server not in result.outcomes and outcome not in deferred:
                    take(outcome)
            for outcome in deferred:
                settle(await _failed_start(ws, outcome))
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
    parallel: int | None,
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

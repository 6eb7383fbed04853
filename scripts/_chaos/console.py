"""Readers of the servers' consoles during a run, across every restart of the daemon.

- :func:`follow_http` reads one console from index 0 with ``server_log`` long polls and
  checks that each answer starts where the last one ended, or announces the gap
  (``oldReadIndex`` beyond the index asked); with a :class:`LineCheck` it checks the
  numbered lines too. Now and then it stops reading for a while, so that retention
  drops bytes it has not read and the gap path is taken.
- :func:`subscribe_ws` holds a WebSocket console subscription that reads slowly (and
  checks that each ``console_output`` starts where the last ended, or that a
  ``console_overrun`` announced the jump) or never reads at all; it reconnects, from
  where it stopped, whenever its connection ends.

Both run until cancelled, and report violations to the run's :class:`Tally`.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from dataclasses import dataclass
from typing import Any

import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection, open_websocket_url

from .daemon import Api, CallFailed, Daemon
from .lines import LineCheck
from .report import Tally

__all__ = ["NETWORK", "ConsoleStats", "Refused", "follow_http", "subscribe_ws", "ws_call"]

#: What a WebSocket reader shrugs off: the daemon went away, or refused it for now.
NETWORK = (ConnectionClosed, HandshakeError, OSError, trio.BrokenResourceError, trio.TooSlowError)


@dataclass
class ConsoleStats:
    bytes_read: int = 0
    gaps: int = 0
    overruns: int = 0
    connections: int = 0


def _data(answer: dict[str, Any]) -> bytes:
    if answer.get("encoding") == "base64":
        return base64.b64decode(answer["data"])
    text: str = answer["data"]
    return text.encode("utf-8")


async def follow_http(
    api: Api,
    server: str,
    check: LineCheck | None,
    tally: Tally,
    stats: ConsoleStats,
    rng: random.Random,
    *,
    lag_every: float,
    lag_for: float,
) -> None:
    index = 0
    next_lag = trio.current_time() + rng.uniform(0.5, 1.5) * lag_every
    while True:
        if trio.current_time() >= next_lag:
            await trio.sleep(lag_for)
            next_lag = trio.current_time() + rng.uniform(0.5, 1.5) * lag_every
        try:
            answer = await api.call(
                "server_log",
                {"server": server, "readIndex": index, "wait": 2, "encoding": "base64"},
            )
        except CallFailed as exc:
            if exc.status == 400:
                tally.violate("console", f"{server}: readIndex {index} refused: {exc}")
                end = (await api.call("server_status", {"server": server}))["readIndex"]
                index = end
                if check is not None:
                    check.gap(end)
            await trio.sleep(0.2)
            continue
        old, data = answer["oldReadIndex"], _data(answer)
        if old < index:
            tally.violate("console", f"{server}: asked {index}, the answer starts at {old}")
        if old > index:
            stats.gaps += 1
            if check is not None:
                check.gap(old)
        if answer["nextReadIndex"] != old + len(data):
            tally.violate(
                "console",
                f"{server}: answer at {old} has {len(data)} bytes but nextReadIndex "
                f"{answer['nextReadIndex']}",
            )
        stats.bytes_read += len(data)
        tally.check("console", check.feed(data) if check is not None else [])
        index = answer["nextReadIndex"]


async def ws_call(ws: WebSocketConnection, kind: str, content: dict[str, Any]) -> Any:
    """One request; its answer's content (pushes before it are dropped)."""
    key = str(uuid.uuid4())
    await ws.send_message(json.dumps({"type": kind, "uuid": key, "content": content}))
    while True:
        message = json.loads(await ws.get_message())
        if message.get("uuid") == key:
            if message.get("status_code") != 0:
                raise Refused(f"{kind}: {message.get('status_string')} {message.get('content')}")
            return message.get("content")


class Refused(Exception):
    """A WebSocket call answered with a status other than SUCCESS."""


async def subscribe_ws(
    daemon: Daemon,
    server: str,
    *,
    reads: bool,
    check: LineCheck | None,
    tally: Tally,
    stats: ConsoleStats,
    rng: random.Random,
    max_connections: int,
) -> None:
    expected: int | None = None
    for _ in range(max_connections):
        url = daemon.endpoints.get("ws") if daemon.running else None
        if url is None or daemon.token is None:
            await trio.sleep(0.5)
            continue
        stats.connections += 1
        try:
            async with open_websocket_url(
                url,
                message_queue_size=4 if reads else 1,
                connect_timeout=5,
                disconnect_timeout=2,
            ) as ws:
                with trio.fail_after(10):
                    await ws_call(ws, "authenticate_with_token", {"token": daemon.token})
                    start = {"from": expected} if reads and expected is not None else {}
                    if not reads:
                        start = {"from": 0}
                    answer = await ws_call(ws, "console.subscribe", {"server": server, **start})
                if not reads:
                    await trio.sleep(rng.uniform(5, 20))  # never reads a push
                    continue
                if expected is None:
                    expected = int(answer["readIndex"])
                    if check is not None:
                        check.gap(expected)
                expected = await _read_slowly(ws, server, expected, check, tally, stats, rng)
        except* Refused as group:
            tally.note(f"WebSocket subscriber of {server}: {group.exceptions[0]}")
        except* NETWORK:
            pass
        await trio.sleep(rng.uniform(0.3, 1.0))


async def _read_slowly(
    ws: WebSocketConnection,
    server: str,
    expected: int,
    check: LineCheck | None,
    tally: Tally,
    stats: ConsoleStats,
    rng: random.Random,
) -> int:
    """Read pushes one by one with a pause after each until the connection ends; the
    index expected next (kept across reconnections)."""
    try:
        while True:
            message = json.loads(await ws.get_message())
            kind, content = message.get("type"), message.get("content") or {}
            if kind == "console_overrun":
                stats.overruns += 1
                if content["readIndex"] <= expected:
                    tally.violate(
                        "console",
                        f"{server} (WebSocket): console_overrun to {content['readIndex']} "
                        f"while at {expected}",
                    )
                expected = content["readIndex"]
                if check is not None:
                    check.gap(expected)
            elif kind == "console_output":
                data = _data(content)
                if content["readIndex"] != expected:
                    tally.violate(
                        "console",
                        f"{server} (WebSocket): console_output at {content['readIndex']}, "
                        f"expected {expected} (no console_overrun)",
                    )
                    if check is not None:
                        check.gap(content["readIndex"])
                stats.bytes_read += len(data)
                problems = check.feed(data) if check is not None else []
                tally.check("console", [f"(WebSocket) {problem}" for problem in problems])
                expected = content["nextReadIndex"]
            elif kind == "console_closed":
                tally.note(f"{server} (WebSocket): console_closed at {content.get('readIndex')}")
            await trio.sleep(rng.uniform(0.05, 0.4))
    except NETWORK:
        return expected

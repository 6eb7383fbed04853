"""scripts/soak: a long mixed load on a real daemon, and how its resources move.

    scripts/soak [--minutes N] [--interval S] [--seed S] [--keep] [--small-buffers]
                 [--census MINUTES]

Starts ``leosuite serve`` (127.0.0.1, ports 0) in a temporary data directory and keeps
it busy for N minutes (120 by default): 10 demo-games talking on their consoles,
servers created, started, stopped and destroyed in turn, 20 WebSocket clients
subscribing to consoles (some also to events and stats) and reconnecting, chat members
joining a channel and talking, and HTTP calls (status, list, console reads, commands).
Every --interval seconds (30) it prints the daemon's resident memory, descriptors,
threads and children, the store's and its WAL's size, and the p50/p99 of a
``server_status`` probe made every half second; at the end, the least-squares slope
per hour of each. A flat line is the goal: a slope that stays positive over a long
run is a leak. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from . import census
from .chaos import watch_signals
from .console import NETWORK, Refused, ws_call
from .daemon import Api, CallFailed, Daemon
from .fleet import FAST_DEMO
from .procs import kill_all
from .report import markdown_table
from .rundir import RunDir
from .stats import percentile, slope

GAMES = 10
WS_CLIENTS = 20
CHAT_MEMBERS = 6
COLUMNS = ["RSS MiB", "fds", "threads", "children", "store KiB", "WAL KiB", "p50 ms", "p99 ms"]


@dataclass
class Load:
    daemon: Daemon
    rng: random.Random
    counts: Counter[str] = field(default_factory=Counter)
    probes: list[float] = field(default_factory=list)


async def http_calls(load: Load) -> None:
    api = Api(load.daemon)
    games = [f"game-{n}" for n in range(1, GAMES + 1)]
    index: dict[str, int] = {}
    while True:
        game = load.rng.choice(games)
        call = load.rng.choice(["server_list", "server_status", "server_log", "server_cmd"])
        body: dict[str, object] = {"server": game}
        if call == "server_list":
            body = {}
        elif call == "server_log":
            body["readIndex"] = index.get(game, 0)
        elif call == "server_cmd":
            body["command"] = f"say soak {load.counts['http']}"
        try:
            answer = await api.call(call, body)
            if call == "server_log":
                index[game] = answer["nextReadIndex"]
            load.counts["http"] += 1
        except CallFailed as exc:
            load.counts[f"http error {exc.status}"] += 1
        await trio.sleep(0.1)


async def probe(load: Load) -> None:
    api = Api(load.daemon)
    while True:
        began = trio.current_time()
        try:
            await api.call("server_status", {"server": "game-1"})
            load.probes.append(trio.current_time() - began)
        except CallFailed:
            load.counts["probe error"] += 1
        await trio.sleep(0.5)


async def churn(load: Load) -> None:
    api = Api(load.daemon)
    for n in range(1, 10**6):
        name = f"churn-{n}"
        try:
            settings = {**FAST_DEMO, "port": 30000 + n % 30000}
            await api.call(
                "server_create", {"server": name, "type": "demo-game", "settings": settings}
            )
            await api.call("server_start", {"server": name})
            await trio.sleep(load.rng.uniform(2, 6))
            await api.call("server_stop", {"server": name})
            await api.call("server_destroy", {"server": name, "delete_files": True})
            load.counts["churned"] += 1
        except CallFailed as exc:
            load.counts[f"churn error {exc.status}"] += 1
            await trio.sleep(1)
            await destroy_left_over(load, api, name)


async def destroy_left_over(load: Load, api: Api, name: str) -> None:
    """Destroy a churned server whose cycle failed (a call timed out on a loaded
    machine): one left running would grow the daemon's memory as a leak would."""
    for _ in range(5):
        try:
            await api.call("server_destroy", {"server": name, "delete_files": True})
            return
        except CallFailed as exc:
            if exc.status == 404:
                return  # never made, or destroyed by the call that timed out
            await trio.sleep(2)
    load.counts["churn servers left over"] += 1


async def ws_client(load: Load, rng: random.Random) -> None:
    """Subscribe to a console (and now and then to events and stats), read everything,
    hang up after a while, connect again."""
    while True:
        url, token = load.daemon.endpoints["ws"], load.daemon.token
        try:
            async with open_websocket_url(url, connect_timeout=10, disconnect_timeout=5) as ws:
                await ws_call(ws, "authenticate_with_token", {"token": token})
                server = f"game-{rng.randint(1, GAMES)}"
                await ws_call(ws, "console.subscribe", {"server": server, "from": 0})
                if rng.random() < 0.3:
                    await ws_call(ws, "events.subscribe", {})
                    await ws_call(ws, "stats.subscribe", {})
                load.counts["ws connections"] += 1
                with trio.move_on_after(rng.uniform(10, 60)):
                    while True:
                        await ws.get_message()
                        load.counts["ws messages"] += 1
        except* NETWORK:
            load.counts["ws dropped"] += 1
        except* Refused:
            load.counts["ws refused"] += 1
        await trio.sleep(rng.uniform(0.2, 1.0))


async def restarting(load: Load, fn: Callable[..., Awaitable[None]], *args: object) -> None:
    """Run a load task for the whole run: a cancellation that reaches it while nothing
    cancelled it (one that escaped the WebSocket client's context manager) is counted
    and the task starts again, instead of silently ending the whole load loop."""
    while True:
        stray = False
        try:
            await fn(*args)
            return
        except* trio.Cancelled:
            await trio.lowlevel.checkpoint_if_cancelled()  # a real cancellation ends it
            stray = True
        if stray:
            load.counts[f"stray cancellation in {fn.__name__}"] += 1


async def chat_member(load: Load, number: int, rng: random.Random) -> None:
    """A guest in channel #soak: joins, talks every few seconds, reads everything,
    leaves after a while and comes back under a new nick."""
    for generation in range(10**6):
        base = load.daemon.endpoints["ws"].rstrip("/")
        nick = f"soak{number}g{generation}"
        try:
            async with open_websocket_url(
                f"{base}/chat/login/{nick}", connect_timeout=10, disconnect_timeout=5
            ) as ws:
                await ws.send_message(json.dumps({"type": 4, "channel": "#soak"}))
                load.counts["chat logins"] += 1
                with trio.move_on_after(rng.uniform(20, 90)):
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(_chat_reader, load, ws)
                        while True:
                            await trio.sleep(rng.uniform(2, 6))
                            text = f"{nick} says {load.counts['chat sent']}"
                            await ws.send_message(
                                json.dumps({"type": 0, "dest": "soak", "message": text})
                            )
                            load.counts["chat sent"] += 1
                await ws.send_message(json.dumps({"type": 3}))
        except* NETWORK:
            load.counts["chat dropped"] += 1
        await trio.sleep(rng.uniform(0.5, 2))


async def _chat_reader(load: Load, ws: WebSocketConnection) -> None:
    while True:
        message = json.loads(await ws.get_message())
        load.counts["chat error" if message.get("type") == -1 else "chat received"] += 1


def cells(row: list[float]) -> list[str]:
    """A row's values: counts as integers, the rest with one decimal."""
    return [
        f"{v:.0f}" if name in ("fds", "threads", "children") else f"{v:.1f}"
        for name, v in zip(COLUMNS, row, strict=True)
    ]


def sample(load: Load, data_dir: Path) -> list[float]:
    proc = psutil.Process(load.daemon.pid)
    db = data_dir / "leosuite.db"
    wal = data_dir / "leosuite.db-wal"
    probes, load.probes = load.probes, []
    return [
        proc.memory_info().rss / 2**20,
        proc.num_fds(),
        proc.num_threads(),
        len(proc.children()),
        (db.stat().st_size if db.exists() else 0) / 1024,
        (wal.stat().st_size if wal.exists() else 0) / 1024,
        percentile(probes, 50) * 1000,
        percentile(probes, 99) * 1000,
    ]


async def soak(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    rundir = RunDir("soak", None, None)
    settings: dict[str, str] = {}
    if args.small_buffers:  # what fills up to its bound fills within minutes
        settings = {
            "LEOSUITE_COMMUNITY_SESSION_SIZE_LIMIT": str(256 * 1024),
            "LEOSUITE_SERVERS_CONSOLE_RETENTION_BYTES": str(256 * 1024),
            "LEOSUITE_STORE_CACHE_KIB": "256",
        }
    census_dir = rundir.root / "census"
    if args.census:
        settings |= census.install(census_dir, args.census)
        path = [str(census_dir), os.environ.get("PYTHONPATH", "")]
        settings["PYTHONPATH"] = os.pathsep.join(filter(None, path))
    daemon = Daemon(rundir.data_dir, rundir.logs, settings, nofile=None)
    load = Load(daemon, rng)
    api = Api(daemon)
    rows: list[list[float]] = []
    times: list[float] = []
    interrupted: list[str] = []
    print(f"soak: {args.minutes:g} min, seed {args.seed}, files in {rundir.root}", flush=True)
    try:
        await daemon.start("stop")
        for n in range(1, GAMES + 1):
            game = {**FAST_DEMO, "port": 27200 + n, "player_interval": rng.uniform(1, 3)}
            game["autostart"] = True
            await api.call(
                "server_create", {"server": f"game-{n}", "type": "demo-game", "settings": game}
            )
            await api.call("server_start", {"server": f"game-{n}"})
        began, wall_began = trio.current_time(), time.time()
        print("| min | " + " | ".join(COLUMNS) + " |", flush=True)
        async with trio.open_nursery() as nursery:
            early = trio.CancelScope()  # SIGINT or SIGTERM: stop, clean up and report
            nursery.start_soon(watch_signals, early, interrupted, "soak")
            for task in (http_calls, probe, churn):
                nursery.start_soon(restarting, load, task, load)
            for _ in range(WS_CLIENTS):
                nursery.start_soon(restarting, load, ws_client, load, random.Random(rng.random()))
            for number in range(CHAT_MEMBERS):
                chat_rng = random.Random(rng.random())
                nursery.start_soon(restarting, load, chat_member, load, number, chat_rng)
            end = began + args.minutes * 60
            with early:
                while trio.current_time() < end:
                    await trio.sleep(min(args.interval, end - trio.current_time()))
                    if not daemon.running:
                        print(f"the daemon exited ({daemon.returncode}):\n{daemon.log_tail()}")
                        return 1
                    row = sample(load, rundir.data_dir)
                    minutes = (trio.current_time() - began) / 60
                    rows.append(row)
                    times.append(minutes)
                    print(f"| {minutes:5.1f} | {' | '.join(cells(row))} |", flush=True)
            if not interrupted and trio.current_time() < end:  # says why, should it happen
                print(
                    f"the load loop ended before its end: early cancel called "
                    f"{early.cancel_called}, caught {early.cancelled_caught}; the load's "
                    f"cancel called {nursery.cancel_scope.cancel_called}",
                    flush=True,
                )
            nursery.cancel_scope.cancel()
        # Says so if the run's clock and the wall clock disagree on how long it ran.
        print(
            f"\nran {(trio.current_time() - began) / 60:.1f} min by the run's clock, "
            f"{(time.time() - wall_began) / 60:.1f} by the wall clock",
            flush=True,
        )
        daemon.send(signal.SIGTERM)
        code = await daemon.wait_exit(90)
    finally:
        with trio.CancelScope(shield=True):
            if daemon.running:
                await daemon.kill()
            kill_all(rundir.data_dir)
            await api.aclose()
    hours = [t / 60 for t in times]
    slopes = [slope(hours, [row[i] for row in rows]) for i in range(len(COLUMNS))]
    print()
    print(
        markdown_table(
            ["", *COLUMNS],
            [
                ["first", *cells(rows[0])] if rows else ["first"] + ["-"] * 8,
                ["last", *cells(rows[-1])] if rows else ["last"] + ["-"] * 8,
                ["slope per hour", *(f"{v:+.2f}" for v in slopes)],
            ],
        )
    )
    if interrupted:
        print(f"\nstopped early by {interrupted[0]}")
    print(f"\nload: {dict(sorted(load.counts.items()))}")
    print(f"daemon exit code after SIGTERM: {code}")
    if args.census:
        print(census.compare(census_dir))
    print(rundir.close(args.keep))
    return 0 if code == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--minutes", type=float, default=120.0, help="minutes of load (120)")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between rows (30)")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument("--keep", action="store_true", help="keep the data directory and logs")
    parser.add_argument(
        "--small-buffers",
        action="store_true",
        help="256 KiB chat histories, console retention and store page cache, so that "
        "bounded buffers are full early and what still grows is a leak",
    )
    parser.add_argument(
        "--census",
        type=float,
        metavar="MINUTES",
        help="tracemalloc snapshots of the daemon every MINUTES, compared at the end (slows "
        "the daemon and multiplies its memory: run beside a plain soak)",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return trio.run(partial(soak, args))


if __name__ == "__main__":
    sys.exit(main())

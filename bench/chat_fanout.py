"""Chat fan-out: one channel, N members, one sender; leosuite vs a `websockets` chat.

``.venv/bin/pip install websockets`` first (the baseline; not a dependency).

Servers: the leosuite daemon (``ws://…/chat/login/<nick>``, seed 003), optionally
variants of it with one lever removed (``leosuite:nocache``, ``leosuite:writer``,
``leosuite:announce1``, ``leosuite:permsg``; see ``_chat_variants.py``), and a minimal
asyncio `websockets` chat implementing the same subset (login by path, type 4 join, type
0 to the channel, ``websockets.broadcast``). Each server gets its own members (nicks
``m0``…, spread over one client process per ~250 members, lean raw-socket clients from
``_chat_roles.py``) and its own sender process; all members connect once, and the cases
(ascending N) add members to the channels ``c<N>``. The cases of the servers are
interleaved so that the machine's load drifts alike for all.

Per case, two modes, each ``--warmup`` + ``--window`` seconds:

* ``rate``: the sender offers ``--offered / N`` messages/s (so ``--offered``
  deliveries/s in total), open loop;
* ``sat``: saturated, closed loop: the sender (a member too) keeps ``--sat-window``
  messages not yet echoed back to it.

Measured in the window: delivered messages/s to the members (total), p50/p99 latency
(arrival minus the sender's stamp in the text; one machine, one clock), the server
process's CPU (user+system, psutil) per delivery, and members disconnected.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _chat_variants import SITECUSTOMIZE
from _common import (
    BENCH_DIR,
    Leosuite,
    Reaper,
    bench_session,
    cpu_seconds,
    fmt,
    machine,
    percentile,
    print_table,
    raise_nofile,
    ratio,
)

ROLES = BENCH_DIR / "_chat_roles.py"
PER_PROCESS = 250


class Child:
    """A role of ``_chat_roles.py`` in a child process, spoken to by JSON lines."""

    def __init__(self, reaper: Reaper, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROLES), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        reaper.add(self.proc, grace=10.0)  # type: ignore[arg-type]  # text mode

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def answer(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"child {self.proc.args!r} exited ({self.proc.wait()})")
        return json.loads(line)

    def ask(self, line: str) -> Any:
        self.tell(line)
        return self.answer()

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.tell("quit")
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Server:
    """One chat server under test, its member processes and its sender."""

    def __init__(self, reaper: Reaper, root: Path, spec: str, members: int, queue: int) -> None:
        self.name = spec
        self.baseline: Child | None = None
        started = time.monotonic()
        if spec == "websockets":
            self.baseline = Child(reaper, "baseline")
            self.url = str(self.baseline.answer()["url"])
            self.pid = self.baseline.proc.pid
        else:
            _, _, variant = spec.partition(":")
            home = root / spec.replace(":", "-")
            home.mkdir()
            caps = str(members + 64)
            env = {
                "LEOSUITE_WS_MAX_CONNECTIONS": caps,
                "LEOSUITE_WS_MAX_CONNECTIONS_PER_IP": caps,
                "LEOSUITE_WS_REQUEST_RATE": "1000000",
                "LEOSUITE_WS_REQUEST_BURST": "1000000",
                "LEOSUITE_COMMUNITY_DEFAULT_MAX_USERS": str(members + 16),
                "LEOSUITE_COMMUNITY_CHAT_QUEUE_SIZE": str(queue),
                "LEOSUITE_COMMUNITY_GUEST_LOGINS_PER_MINUTE": caps,
            }
            if variant:
                (home / "variant").mkdir()
                (home / "variant" / "sitecustomize.py").write_text(
                    SITECUSTOMIZE.format(bench=str(BENCH_DIR))
                )
                env["LEOSUITE_BENCH_SRC"] = str(home / "variant")
                env["BENCH_CHAT_VARIANT"] = variant
            self.daemon = Leosuite(reaper, home, env=env)
            self.url = str(self.daemon.endpoints["ws"]).rstrip("/")
            self.pid = self.daemon.pid
        procs = max(1, math.ceil(members / PER_PROCESS))
        self.shares = [list(range(p, members, procs)) for p in range(procs)]
        self.clients = [
            Child(reaper, "members", self.url, ",".join(map(str, share))) for share in self.shares
        ]
        self.sender = Child(reaper, "sender", self.url)
        for child in [*self.clients, self.sender]:
            child.answer()  # {"ready": n}
        self.settle()
        print(f"  {spec}: {members} members connected in {time.monotonic() - started:.1f} s")

    def settle(self, limit: float = 180.0) -> None:
        """Wait for the server to drain its backlog (logins and joins are announced to
        everyone: ~N²/2 frames): below 3 % of a core for two half-seconds in a row."""
        deadline, quiet = time.monotonic() + limit, 0
        while quiet < 2 and time.monotonic() < deadline:
            cpu0 = cpu_seconds(self.pid)
            time.sleep(0.5)
            quiet = quiet + 1 if cpu_seconds(self.pid) - cpu0 < 0.015 else 0

    def join(self, channel: str, count: int) -> None:
        started = time.monotonic()
        for child, share in zip(self.clients, self.shares, strict=True):
            child.tell(f"join {channel} {','.join(str(i) for i in share if i < count)}")
        for child in self.clients:
            child.answer()
        self.sender.ask(f"join {channel}")
        self.settle()
        print(f"  {self.name}: {count} joined {channel} in {time.monotonic() - started:.1f} s")

    def close(self) -> None:
        for child in [self.sender, *self.clients]:
            child.close()
        if self.baseline is not None:
            self.baseline.close()


@dataclass
class Result:
    offered: float  # messages/s the sender sent (in the whole run)
    delivered: float  # deliveries/s to members in the window
    p50: float  # ms
    p99: float
    cpu: float  # % of one core
    us_per_delivery: float
    dropped: int  # member connections closed during the case


def run_case(server: Server, mode: str, args: argparse.Namespace) -> Result:
    seconds = args.warmup + args.window
    server.sender.tell(f"run {mode} {seconds}")
    time.sleep(args.warmup)
    first = [child.ask("mark") for child in server.clients]
    t0, cpu0 = time.monotonic(), cpu_seconds(server.pid)
    time.sleep(args.window)
    last = [child.ask("end") for child in server.clients]
    elapsed, cpu1 = time.monotonic() - t0, cpu_seconds(server.pid)
    sent = server.sender.answer()
    delivered = sum(b["count"] - a["count"] for a, b in zip(first, last, strict=True))
    latencies = [x / 1000 for b in last for x in b["lat"]]
    return Result(
        offered=sent["sent"] / seconds,
        delivered=delivered / elapsed,
        p50=percentile(latencies, 50),
        p99=percentile(latencies, 99),
        cpu=100 * (cpu1 - cpu0) / elapsed,
        us_per_delivery=1e6 * (cpu1 - cpu0) / max(1, delivered),
        dropped=sum(b["closed"] - a["closed"] for a, b in zip(first, last, strict=True)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", default="10,100,1000", help="comma-separated counts")
    parser.add_argument(
        "--servers",
        default="leosuite,websockets",
        help="leosuite[:nocache|:writer|:nocork|:permsg],websockets",
    )
    parser.add_argument("--modes", default="rate,sat", help="rate and/or sat")
    parser.add_argument("--offered", type=float, default=5000, help="rate mode: deliveries/s")
    parser.add_argument("--sat-window", type=int, default=32, help="sat mode: messages in flight")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--window", type=float, default=6.0, help="seconds measured per case")
    parser.add_argument("--queue", type=int, default=1024, help="leosuite chat_queue_size")
    args = parser.parse_args()

    counts = sorted(int(n) for n in args.members.split(","))
    specs = args.servers.split(",")
    modes = args.modes.split(",")
    raise_nofile()
    print(f"# chat fan-out, {machine()}")
    rows: list[list[str]] = []
    with bench_session("chat") as (reaper, root):
        servers: list[Server] = []
        try:
            for spec in specs:
                servers.append(Server(reaper, root, spec, max(counts), args.queue))
            for count in counts:
                for server in servers:
                    server.join(f"c{count}", count)
                for mode in modes:
                    arg = f"sat{args.sat_window}" if mode == "sat" else f"{args.offered / count:g}"
                    results: dict[str, Result] = {}
                    for server in servers:
                        r = results[server.name] = run_case(server, arg, args)
                        print(
                            f"  {count} members, {mode}, {server.name}: {fmt(r.delivered, 0)}/s"
                            f" p99 {fmt(r.p99)} ms, {fmt(r.us_per_delivery)} µs CPU/delivery",
                            flush=True,
                        )
                    base = results.get("websockets")
                    for server in servers:
                        r = results[server.name]
                        rows.append(
                            [
                                str(count),
                                mode,
                                server.name,
                                fmt(r.offered, 0),
                                fmt(r.delivered, 0),
                                fmt(r.p50),
                                fmt(r.p99),
                                fmt(r.cpu, 0),
                                fmt(r.us_per_delivery),
                                str(r.dropped),
                                ratio(r.delivered, base.delivered) if base else "-",
                                ratio(base.us_per_delivery, r.us_per_delivery) if base else "-",
                            ]
                        )
        finally:
            for server in servers:
                server.close()
    print()
    print_table(
        [
            "members",
            "mode",
            "server",
            "sent msg/s",
            "delivered/s",
            "p50 ms",
            "p99 ms",
            "server CPU %",
            "CPU µs/delivery",
            "dropped",
            "delivered vs websockets",
            "CPU efficiency vs websockets",
        ],
        rows,
    )


if __name__ == "__main__":
    main()

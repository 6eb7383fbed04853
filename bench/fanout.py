"""Console fan-out over WebSockets: leosuite vs a minimal `websockets` broadcast server.

    .venv/bin/python bench/fanout.py [--subscribers 0,1,10,100] [--window 6] [--warmup 1.5]
                                     [--rate MB/s] [--profile DIR]

One producer (bench/_producer.py: log lines in 64 KiB writes, at most --max-bytes,
killed after the window) floods a console. N subscribers, each on its own WebSocket,
all in ONE client process (``--client-procs`` to spread them), count the console
bytes they receive through ``leosuite.client.ws`` (the same client code for both
servers: ``subscribe_console``, JSON decoded, data turned back into bytes).

- leosuite: ``leosuite serve`` (cheap auth, ``ws.max_connections_per_ip`` raised), a
  ``command`` server running the producer; subscribers ``authenticate_with_token``
  and ``console.subscribe``; the daemon also writes every byte to its console files.
- websockets (asyncio, ``websockets`` package; ``pip install websockets``): a minimal
  server that runs the same producer as its child, reads its stdout in up to 64 KiB
  reads, encodes each read once as the same ``console_output`` envelope and hands it
  to every subscriber's queue of 8 and writer task (full queue: the chunk is skipped
  for that subscriber and a ``console_overrun`` precedes its next chunk). It answers
  the client's calls (``authenticate_with_token``, ``console.subscribe``) with just
  enough for ``ws_client``. No disk writes, no permessage-deflate.

``--rate`` paces the producer (the same offer to both servers: without it leosuite's
producer writes to its console file as fast as the disk takes it, a core of its own,
while the baseline's is held back by the pipe the baseline reads). ``--profile DIR``
records the server and the first client process with py-spy during each window
(``DIR/<server>-<n>.txt``, ``DIR/<server>-<n>-client.txt``; collapsed stacks,
non-blocking, idle included). ``--tmp-dir /dev/shm`` keeps leosuite's console
off the disk (no writeback competing for the cores). 0 subscribers measures the flood
alone (captured MB/s: the server's own output rate).

Per case: subscribe all, start the producer, wait --warmup s, then count for --window
s. Delivered MB/s is the console bytes received in the window (total and per
subscriber); captured MB/s is how fast the server read the producer; server CPU is
the server process's user+system time in the window (% of one core; the producer is a
separate process and not included); client CPU likewise for the client process;
machine busy is how busy both cores were (every process, other users' included).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from _common import (
    BENCH_DIR,
    Leosuite,
    bench_session,
    cpu_seconds,
    fmt,
    machine,
    median,
    print_table,
    py_spy,
    raise_nofile,
    ratio,
)

PRODUCER = BENCH_DIR / "_producer.py"
SERVER = "flood"
MB = 1e6


# -- role: the subscribers' client process --------------------------------------------


def run_subscribers(url: str, token: str, count: int) -> None:
    """``count`` subscribers; prints {"ready"}; answers each stdin line with counts."""
    import trio

    from leosuite.client.ws import ConsoleData, open_ws_client

    received = [0] * count
    skipped = [0] * count

    async def one(i: int, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with open_ws_client(url) as client:
            await client.authenticate(token)
            async with client.subscribe_console(SERVER) as console:
                task_status.started()
                async for event in console:
                    if isinstance(event, ConsoleData):
                        received[i] += len(event.data)
                    else:
                        skipped[i] += event.skipped

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for i in range(count):
                await nursery.start(one, i)
            print(json.dumps({"ready": count}), flush=True)
            while True:
                line = await trio.to_thread.run_sync(sys.stdin.readline)
                if not line or line.strip() == "quit":
                    nursery.cancel_scope.cancel()
                    return
                report = {"received": received, "skipped": skipped, "cpu": cpu_seconds(os.getpid())}
                print(json.dumps(report), flush=True)

    trio.run(main)


# -- role: the websockets baseline server ---------------------------------------------


def run_baseline(max_bytes: int, rate: float) -> None:
    """A minimal asyncio `websockets` broadcaster of a producer's stdout."""
    import msgspec
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed

    encode = msgspec.json.Encoder().encode
    subscribers: set[Subscriber] = set()
    state = {"read": 0}

    class Subscriber:
        def __init__(self, ws: ServerConnection) -> None:
            self.ws = ws
            self.queue: asyncio.Queue[bytes] = asyncio.Queue(8)
            self.skipped = 0

        def offer(self, message: bytes, size: int, index: int) -> None:
            if self.skipped and not self.queue.full():
                self.queue.put_nowait(
                    push("console_overrun", skipped=self.skipped, readIndex=index)
                )
                self.skipped = 0
            if self.queue.full():
                self.skipped += size
            else:
                self.queue.put_nowait(message)

        async def write(self) -> None:
            while True:
                await self.ws.send(await self.queue.get(), text=True)

    def push(kind: str, **content: Any) -> bytes:
        return encode(
            {
                "uuid": secrets.token_hex(16),
                "type": kind,
                "status_code": 0,
                "status_string": "SUCCESS",
                "content": {"server": SERVER, **content},
            }
        )

    async def handler(ws: ServerConnection) -> None:
        subscriber: Subscriber | None = None
        writer: asyncio.Task[None] | None = None
        try:
            async for message in ws:
                request = json.loads(message)
                content: Any = {"status": 0, "user_id": 1, "username": "bench"}
                if request["type"] == "console.subscribe" and subscriber is None:
                    subscriber = Subscriber(ws)
                    content = {"server": SERVER, "readIndex": state["read"]}
                answer = {
                    "uuid": request["uuid"],
                    "type": request["type"],
                    "status_code": 0,
                    "status_string": "SUCCESS",
                    "content": content,
                }
                await ws.send(encode(answer), text=True)
                if subscriber is not None and writer is None:
                    subscribers.add(subscriber)
                    writer = asyncio.create_task(subscriber.write())
        except ConnectionClosed:
            pass
        finally:
            if subscriber is not None:
                subscribers.discard(subscriber)
            if writer is not None:
                writer.cancel()

    async def broadcast(proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(64 * 1024):
            index = state["read"]
            state["read"] += len(chunk)
            message = push(
                "console_output",
                readIndex=index,
                nextReadIndex=state["read"],
                data=chunk.decode(),
                encoding="utf-8",
            )
            for subscriber in list(subscribers):
                subscriber.offer(message, len(chunk), index)
            await asyncio.sleep(0)  # let the writers run between reads

    async def main() -> None:
        loop = asyncio.get_running_loop()
        producer: asyncio.subprocess.Process | None = None
        tasks: set[asyncio.Task[None]] = set()
        async with serve(
            handler, "127.0.0.1", 0, compression=None, max_size=2**20, max_queue=16
        ) as server:
            port = server.sockets[0].getsockname()[1] if server.sockets else 0
            print(json.dumps({"url": f"ws://127.0.0.1:{port}/"}), flush=True)
            while True:
                line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
                if line in ("", "quit"):
                    break
                if line == "start":
                    argv = [sys.executable, str(PRODUCER), str(max_bytes), "65536", str(rate)]
                    producer = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE)
                    tasks.add(asyncio.create_task(broadcast(producer)))
                elif line == "stop" and producer is not None:
                    with contextlib.suppress(ProcessLookupError):
                        producer.kill()
                    await producer.wait()
                print(json.dumps({"read": state["read"]}), flush=True)
        if producer is not None and producer.returncode is None:
            producer.kill()

    asyncio.run(main())


# -- the orchestrator -------------------------------------------------------------------


class Child:
    """A role of this script in a child process, spoken to by JSON lines."""

    def __init__(self, reaper: Any, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        reaper.add(self.proc, grace=10.0)

    def ask(self, line: str | None = None) -> Any:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        if line is not None:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"child {self.proc.args!r} exited ({self.proc.wait()})")
        return json.loads(answer)

    def close(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Result:
    total: float  # delivered MB/s, all subscribers
    per_sub: list[float]  # delivered MB/s of each
    captured: float  # MB/s the server read from the producer
    server_cpu: float  # % of one core
    client_cpu: float
    machine_busy: float  # % of all cores busy (every process, ours and others')
    skipped: float  # % of the offered bytes skipped


def profiling(args: argparse.Namespace, reaper: Any, pid: int, label: str) -> Any:
    """py-spy records ``pid`` meanwhile (``--profile DIR``), collapsed stacks."""
    return py_spy(reaper, pid, Path(args.profile) / f"{label}.txt" if args.profile else None)


def measure(
    reaper: Any,
    args: argparse.Namespace,
    name: str,
    url: str,
    token: str,
    count: int,
    server_pid: int,
    start: Callable[[], None],
    produced: Callable[[], int],
    stop: Callable[[], None],
) -> Result:
    procs = max(1, min(args.client_procs, max(count, 1)))
    shares = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
    clients = [Child(reaper, "--role", "subscribers", "--", url, token, str(n)) for n in shares]
    try:
        for client in clients:
            client.ask()  # {"ready": n}
        start()
        time.sleep(args.warmup)
        first = [client.ask("mark") for client in clients]
        busy0 = psutil.cpu_times()
        t0, cpu0, read0 = time.monotonic(), cpu_seconds(server_pid), produced()
        with (
            profiling(args, reaper, server_pid, f"{name}-{count}"),
            profiling(args, reaper, clients[0].proc.pid, f"{name}-{count}-client"),
        ):
            time.sleep(args.window)
        last = [client.ask("mark") for client in clients]
        elapsed, cpu1, read1 = time.monotonic() - t0, cpu_seconds(server_pid), produced()
        busy1 = psutil.cpu_times()
    finally:
        stop()
        for client in clients:
            client.close()
    per_sub: list[float] = []
    skipped = received = 0
    client_cpu = 0.0
    for a, b in zip(first, last, strict=True):
        for x, y in zip(a["received"], b["received"], strict=True):
            per_sub.append((y - x) / elapsed / MB)
            received += y - x
        skipped += sum(b["skipped"]) - sum(a["skipped"])
        client_cpu += b["cpu"] - a["cpu"]
    return Result(
        total=sum(per_sub),
        per_sub=per_sub,
        captured=(read1 - read0) / elapsed / MB,
        server_cpu=100 * (cpu1 - cpu0) / elapsed,
        client_cpu=100 * client_cpu / elapsed,
        machine_busy=busy_percent(busy0, busy1),
        skipped=100 * skipped / max(1, skipped + received),
    )


def busy_percent(a: Any, b: Any) -> float:
    """How busy all cores were between two ``psutil.cpu_times()`` (idle and iowait not)."""
    total = sum(b) - sum(a)
    idle = (b.idle - a.idle) + (getattr(b, "iowait", 0.0) - getattr(a, "iowait", 0.0))
    return 100 * (total - idle) / total if total > 0 else 0.0


def spread(values: list[float]) -> str:
    """``median (min-max)``, or ``-`` for none."""
    if not values:
        return "-"
    return f"{fmt(median(values))} ({fmt(min(values))}-{fmt(max(values))})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", default="0,1,10,100", help="comma-separated counts")
    parser.add_argument("--window", type=float, default=6.0, help="seconds measured per case")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds before measuring")
    parser.add_argument("--max-bytes", type=int, default=16 * 2**30, help="producer cap")
    parser.add_argument("--client-procs", type=int, default=1, help="subscriber processes")
    parser.add_argument("--rate", type=float, default=0.0, help="producer MB/s (0: flood)")
    parser.add_argument("--profile", default="", help="py-spy each window into this directory")
    parser.add_argument(
        "--tmp-dir", help="where the console goes (default: the system's; /dev/shm: no disk)"
    )
    parser.add_argument("--role", choices=["subscribers", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("role_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "subscribers":
        url, token, count = args.role_args
        run_subscribers(url, token, int(count))
        return
    if args.role == "baseline":
        run_baseline(args.max_bytes, args.rate * MB)
        return

    counts = [int(n) for n in args.subscribers.split(",")]
    raise_nofile()
    print(f"# fan-out, {machine()}")
    rows: list[list[str]] = []
    with bench_session("fanout", tmp_dir=args.tmp_dir) as (reaper, root):
        conns = str(max(counts) + 16)
        env = {"LEOSUITE_WS_MAX_CONNECTIONS_PER_IP": conns, "LEOSUITE_WS_MAX_CONNECTIONS": conns}
        leosuite = Leosuite(reaper, root, env=env)
        producer = f"{sys.executable} {PRODUCER} {args.max_bytes} 65536 {args.rate * MB}"
        leosuite.create(SERVER, producer)
        token = leosuite.api._headers["Authorization"].removeprefix("Bearer ")
        baseline = Child(
            reaper,
            "--role",
            "baseline",
            "--max-bytes",
            str(args.max_bytes),
            "--rate",
            str(args.rate),
        )
        baseline_url = baseline.ask()["url"]
        ours = {"read": 0}

        def leosuite_read() -> int:
            return int(leosuite.status(SERVER)["readIndex"])

        def leosuite_stop() -> None:
            leosuite.api.post("/api/server_kill", {"server": SERVER})

        for count in counts:
            results = {}
            for name in ("leosuite", "websockets"):
                if name == "leosuite":
                    results[name] = measure(
                        reaper,
                        args,
                        name,
                        leosuite.endpoints["ws"],
                        token,
                        count,
                        leosuite.pid,
                        lambda: leosuite.api.post("/api/server_start", {"server": SERVER}),
                        leosuite_read,
                        leosuite_stop,
                    )
                else:

                    def baseline_read() -> int:
                        ours["read"] = int(baseline.ask("read")["read"])
                        return ours["read"]

                    results[name] = measure(
                        reaper,
                        args,
                        name,
                        baseline_url,
                        token,
                        count,
                        baseline.proc.pid,
                        lambda: baseline.ask("start"),
                        baseline_read,
                        lambda: baseline.ask("stop"),
                    )
                r = results[name]
                rows.append(
                    [
                        str(count),
                        name,
                        fmt(r.total),
                        spread(r.per_sub),
                        fmt(r.captured),
                        fmt(r.skipped),
                        fmt(r.server_cpu, 0),
                        fmt(r.client_cpu, 0),
                        fmt(r.machine_busy, 0),
                        ratio(results["leosuite"].total, r.total) if name == "websockets" else "",
                    ]
                )
                print(f"  {count} subscribers, {name}: {fmt(r.total)} MB/s", flush=True)
        baseline.close()
    print()
    print_table(
        [
            "subscribers",
            "server",
            "delivered MB/s total",
            "per subscriber MB/s median (min-max)",
            "captured MB/s",
            "skipped %",
            "server CPU %",
            "client CPU %",
            "machine busy %",
            "leosuite / websockets",
        ],
        rows,
    )


if __name__ == "__main__":
    main()

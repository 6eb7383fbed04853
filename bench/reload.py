"""``leosuite reload`` under load: N reloads in a row while a server floods its console.

    .venv/bin/python bench/reload.py [--reloads 20] [--rate 4] [--interval 0.3]

One daemon (127.0.0.1, ports 0) runs one server writing numbered lines to its console
at --rate MiB/s (this script with ``--produce``). Meanwhile clients keep connecting
to every listener: two loops of HTTP GETs on fresh connections (retried when a reload
cuts one) and one loop of bare connects per listener, every 10 ms. Then --reloads
SIGHUPs, one after the other (--interval s apart once the previous one serves).

Measured: the time from each SIGHUP to the new image serving (``endpoints.json``
rewritten with the next generation; p50 and max), the connection attempts refused
(target 0), the daemon's pid and the server's pid (both unchanged), and the console:
after the run the server is stopped and its whole console read back over the HTTP
API, which must hold every numbered line, in order, none missing (target 0 lost).
No peer: supervisord's own ``reload`` restarts every program.
"""

from __future__ import annotations

import argparse
import base64
import errno
import itertools
import json
import os
import re
import shlex
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _common import Leosuite, bench_session, fmt, percentile, print_table, wait_until

MiB = 1024 * 1024
LINE = re.compile(rb"^(\d{12}) the quick brown fox jumps over the lazy dog [.]{20}$")


def produce(rate_mib: float) -> None:
    """The server: numbered lines at ``rate_mib`` MiB/s until SIGTERM, then exit 0
    after the batch under way (so the last line is whole)."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    tail = b" the quick brown fox jumps over the lazy dog " + b"." * 20 + b"\n"
    per_line = 12 + len(tail)
    tick = 0.01
    lines_per_tick = max(1, int(rate_mib * MiB * tick / per_line))
    number = 0
    next_tick = time.monotonic()
    while not stopping.is_set():
        batch = b"".join(b"%012d%s" % (n, tail) for n in range(number, number + lines_per_tick))
        view = memoryview(batch)
        while view:
            view = view[os.write(1, view) :]
        number += lines_per_tick
        next_tick += tick
        time.sleep(max(0.0, next_tick - time.monotonic()))


def address(url: str) -> tuple[str, int]:
    host, port = url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    return host, int(port)


class Hammer:
    """Client threads that keep connecting to every listener until stopped."""

    def __init__(self, endpoints: dict[str, Any]) -> None:
        self.http = address(endpoints["http"])
        self.listeners = [self.http, address(endpoints["admin"]), address(endpoints["ws"])]
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.attempts = 0
        self.refused = 0
        self.cut = 0
        self.answered = 0
        self.slowest = 0.0
        self.threads = [threading.Thread(target=self._get_loop, daemon=True) for _ in range(2)]
        self.threads += [
            threading.Thread(target=self._connect_loop, args=(where,), daemon=True)
            for where in self.listeners
        ]

    def __enter__(self) -> Hammer:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _connect(self, where: tuple[str, int]) -> socket.socket | None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(30)
        with self.lock:
            self.attempts += 1
        try:
            sock.connect(where)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.ECONNREFUSED:
                with self.lock:
                    self.refused += 1
            return None
        return sock

    def _connect_loop(self, where: tuple[str, int]) -> None:
        while not self.stop.is_set():
            sock = self._connect(where)
            if sock is not None:
                sock.close()
            self.stop.wait(0.01)

    def _get_loop(self) -> None:
        request = b"GET /api/auth/config HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        while not self.stop.is_set():
            began = time.monotonic()
            sock = self._connect(self.http)
            if sock is None:
                self.stop.wait(0.01)
                continue
            with sock:
                try:
                    sock.sendall(request)
                    whole = _read_answer(sock)
                except OSError:
                    whole = False
            took = time.monotonic() - began
            with self.lock:
                if whole:
                    self.answered += 1
                    self.slowest = max(self.slowest, took)
                else:
                    self.cut += 1  # accepted, then cut by a reload: an idempotent retry


def _read_answer(sock: socket.socket) -> bool:
    """Read one answer by its Content-Length; False when the connection ends first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    length = int(match.group(1)) if match else 0
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return False
        body += chunk
    return True


def read_console(leo: Leosuite, name: str) -> tuple[bytes, int]:
    """The whole console over ``server_log``; and how many bytes were no longer there."""
    data = bytearray()
    index = 0
    dropped = 0
    while True:
        answer = leo.api.post("/api/server_log", {"server": name, "readIndex": index})
        dropped += answer["oldReadIndex"] - index
        chunk = answer["data"]
        data += base64.b64decode(chunk) if answer["encoding"] == "base64" else chunk.encode()
        index = answer["nextReadIndex"]
        if index >= answer["readIndex"]:
            return bytes(data), dropped


def check_lines(console: bytes) -> tuple[int, int, int]:
    """Numbered lines found, numbers missing between them, other broken lines."""
    numbers = []
    broken = 0
    for line in console.split(b"\n"):
        match = LINE.match(line)
        if match:
            numbers.append(int(match.group(1)))
        elif re.match(rb"^\d", line):
            broken += 1  # a numbered line cut or mixed with another
    missing = sum(b - a - 1 for a, b in itertools.pairwise(numbers) if b > a + 1)
    missing += numbers[0] if numbers else 0
    return len(numbers), missing, broken


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reloads", type=int, default=20, help="reloads in a row")
    parser.add_argument("--rate", type=float, default=4.0, help="console MiB/s of the server")
    parser.add_argument("--interval", type=float, default=0.3, help="seconds between reloads")
    parser.add_argument("--timeout", type=float, default=30.0, help="limit per reload (s)")
    parser.add_argument("--tmp-dir", help="where the data directory goes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--produce", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.produce is not None:
        produce(args.produce)
        return
    env = {
        "LEOSUITE_HTTP_REQUEST_RATE": "1000000",
        "LEOSUITE_HTTP_REQUEST_BURST": "1000000",
        "LEOSUITE_SERVERS_CONSOLE_RETENTION_BYTES": str(4096 * MiB),
    }
    producer = shlex.join([sys.executable, str(Path(__file__).resolve()), "--produce"])
    with bench_session("reload", keep=args.keep, tmp_dir=args.tmp_dir) as (reaper, root):
        leo = Leosuite(reaper, root, env=env)
        leo.create("flood", f"{producer} {args.rate}")
        leo.api.post("/api/server_start", {"server": "flood"})
        server_pid = wait_until(
            lambda: (
                leo.status("flood").get("pid")
                if leo.status("flood")["status"] == "running"
                else None
            ),
            timeout=30,
            what="the server running",
        )
        endpoints_path = leo.data_dir / "run" / "endpoints.json"

        def generation() -> int:
            try:
                data = json.loads(endpoints_path.read_text())
            except (OSError, ValueError):
                return -1
            return int(data["generation"]) if data.get("pid") == leo.pid else -1

        took: list[float] = []
        with Hammer(leo.endpoints) as hammer:
            time.sleep(1.0)  # the flood and the clients are under way
            for n in range(1, args.reloads + 1):
                began = time.monotonic()
                os.kill(leo.pid, signal.SIGHUP)
                wait_until(
                    lambda n=n: generation() >= n,
                    timeout=args.timeout,
                    interval=0.002,
                    what=f"reload {n}",
                )
                took.append(time.monotonic() - began)
                time.sleep(args.interval)
        status = leo.status("flood")
        leo.api.post("/api/server_stop", {"server": "flood"})
        wait_until(lambda: leo.status("flood")["status"] == "stopped", timeout=30, what="the stop")
        console, dropped = read_console(leo, "flood")
        lines, missing, broken = check_lines(console)
        same_daemon = json.loads(endpoints_path.read_text())["pid"] == leo.pid
        same_server = status["status"] == "running" and status["pid"] == server_pid

    print(f"\n### `leosuite reload` x {args.reloads}, server flooding {args.rate:g} MiB/s\n")
    ms = [t * 1000 for t in took]
    print_table(
        ["reloads", "SIGHUP -> serving p50 (ms)", "max (ms)", "same daemon pid", "same server pid"],
        [
            [
                fmt(len(took)),
                fmt(percentile(ms, 50), 0),
                fmt(max(ms), 0),
                str(same_daemon),
                str(same_server),
            ]
        ],
    )
    print()
    print_table(
        [
            "connection attempts",
            "refused",
            "GETs answered",
            "GETs cut (retried)",
            "slowest GET (ms)",
        ],
        [
            [
                fmt(hammer.attempts),
                fmt(hammer.refused),
                fmt(hammer.answered),
                fmt(hammer.cut),
                fmt(hammer.slowest * 1000, 0),
            ]
        ],
    )
    print()
    print_table(
        ["console MiB", "numbered lines", "missing", "broken", "bytes dropped by retention"],
        [[fmt(len(console) / MiB), fmt(lines), fmt(missing), fmt(broken), fmt(dropped)]],
    )
    ok = hammer.refused == 0 and missing == 0 and broken == 0 and dropped == 0
    ok = ok and same_daemon and same_server and lines > 0
    print(f"\ntargets (0 refused, 0 lost, same pids): {'met' if ok else 'MISSED'}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()

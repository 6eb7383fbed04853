"""``GET /metrics`` with many servers: scrape time, daemon CPU per scrape, and the idle
CPU of a daemon scraped every 15 s against one that is not scraped.

    .venv/bin/python bench/metrics.py [--servers 1000] [--scrapes 20] [--idle 60]
                                      [--interval 15] [--threads 16] [--profile FILE]

One daemon (``leosuite serve``, temporary data directory, ports 0) with N servers of
type ``command`` running ``sleep 100000``, all started (their resource samples fill the
per-server CPU, memory and thread series). Then:

* --scrapes scrapes one after the other, with ``metrics.scrape_token``: wall time of
  each (request to last byte, on one keep-alive connection), the daemon's user+system
  CPU over all of them divided by their number, the body's size and its series;
* the daemon's CPU % over --idle seconds with nothing happening, then over --idle
  seconds with a scrape every --interval seconds; twice each, alternating, so a busy
  machine's drift shows rather than lands on one side.

With --profile, py-spy (from the same virtualenv) then records the daemon over
--profile-scrapes more scrapes into FILE (collapsed stacks, py-spy's ``raw`` format) and
the functions holding the most samples are printed; the timed scrapes are not profiled.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import (
    Leosuite,
    bench_session,
    cpu_seconds,
    fmt,
    median,
    percentile,
    print_table,
    raise_nofile,
    wait_until,
)

VENV_BIN = Path(sys.executable).parent
TOKEN = "bench-scrape-token-0123456789"
#: py-spy's ``function (path/to/file.py:line)``, printed as ``function (file.py)``.
FRAME = re.compile(r"^(.*) \((?:.*/)?([^/:]+):\d+\)$")


def in_pool(threads: int, fn: Callable[[str], Any], names: Iterable[str]) -> None:
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(fn, names):
            pass


class Scraper:
    """``GET /metrics`` on one keep-alive connection to the admin listener."""

    def __init__(self, admin_url: str) -> None:
        host, port = admin_url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
        self._conn = http.client.HTTPConnection(host, int(port), timeout=120)

    def scrape(self) -> bytes:
        for attempt in (0, 1):
            try:
                self._conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
                response = self._conn.getresponse()
                body = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                # The daemon closes a connection idle past http.keep_alive_timeout.
                self._conn.close()
                if attempt:
                    raise
        if response.status != 200:
            raise RuntimeError(f"/metrics: HTTP {response.status}: {body[:300]!r}")
        return body

    def close(self) -> None:
        self._conn.close()


def cpu_percent(pid: int, seconds: float, every: float | None, scraper: Scraper) -> float:
    """The daemon's CPU % over ``seconds``, scraped every ``every`` seconds (None: never)."""
    start = time.monotonic()
    before = cpu_seconds(pid)
    next_scrape = start if every is not None else float("inf")
    while (now := time.monotonic()) < start + seconds:
        if now >= next_scrape and every is not None:
            scraper.scrape()
            next_scrape += every
        time.sleep(max(0.0, min(next_scrape, start + seconds) - time.monotonic()))
    return 100.0 * (cpu_seconds(pid) - before) / (time.monotonic() - start)


def profile(pid: int, path: str, scrapes: int, scraper: Scraper) -> None:
    """py-spy records the daemon over ``scrapes`` scrapes; prints where the samples are."""
    argv = [str(VENV_BIN / "py-spy"), "record", "--pid", str(pid), "--format", "raw"]
    argv += ["--rate", "250", "--nonblocking", "--output", path]
    spy = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(2.0)  # py-spy attaches
        for _ in range(scrapes):
            scraper.scrape()
    finally:
        spy.send_signal(signal.SIGINT)
        _, err = spy.communicate(timeout=60)
    if spy.returncode not in (0, -signal.SIGINT):
        raise RuntimeError(f"py-spy: exit {spy.returncode}: {err.decode(errors='replace')}")
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    with open(path) as lines:
        for line in lines:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            frames = [FRAME.sub(r"\1 (\2)", f) for f in stack.split(";")]
            if not frames:
                continue
            n = int(count)
            total += n
            own[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
    print()
    print(f"### py-spy, {scrapes} scrapes, {total} samples ({path})")
    print()
    top = inclusive.most_common(25)
    rows = [[f"`{f}`", fmt(100 * n / total), fmt(100 * own[f] / total)] for f, n in top]
    print_table(["function", "inclusive (%)", "self (%)"], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds per idle window")
    parser.add_argument("--interval", type=float, default=15.0, help="scrape interval (s)")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--profile", metavar="FILE", help="py-spy raw output (no profile: none)")
    parser.add_argument("--profile-scrapes", type=int, default=100)
    args = parser.parse_args()
    raise_nofile()
    # Not _common.machine(): no supervisord here, so it need not be installed.
    print(f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"load average at the start: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    env = {"LEOSUITE_METRICS_SCRAPE_TOKEN": TOKEN}
    with bench_session("metrics", keep=args.keep) as (reaper, root):
        ls = Leosuite(reaper, root, env)
        names = [f"s{i:04d}" for i in range(args.servers)]
        in_pool(args.threads, lambda n: ls.create(n, "sleep 100000"), names)
        in_pool(args.threads, lambda n: ls.api.post("/api/server_start", {"server": n}), names)

        def all_running() -> bool:
            listing = ls.status()
            return all(s["status"] == "running" for s in listing["servers"].values())

        wait_until(all_running, timeout=600, interval=0.5, what="every server running")
        scraper = Scraper(str(ls.endpoints["admin"]))
        body = scraper.scrape()
        # The fleet samples every 2 s: wait until every server has its resource series.
        wait_until(
            lambda: scraper.scrape().count(b"leosuite_server_memory_rss_bytes{") == args.servers,
            timeout=60,
            interval=0.5,
            what="every server sampled",
        )
        times: list[float] = []
        cpu_before = cpu_seconds(ls.pid)
        for _ in range(args.scrapes):
            started = time.perf_counter()
            body = scraper.scrape()
            times.append(time.perf_counter() - started)
        cpu_per_scrape = (cpu_seconds(ls.pid) - cpu_before) / args.scrapes
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))

        if args.profile:
            profile(ls.pid, args.profile, args.profile_scrapes, scraper)

        idle: list[float] = []
        scraped: list[float] = []
        for _ in range(2):
            idle.append(cpu_percent(ls.pid, args.idle, None, scraper))
            scraped.append(cpu_percent(ls.pid, args.idle, args.interval, scraper))
        scraper.close()

    print()
    print(f"### `/metrics` with {args.servers} running servers ({args.scrapes} scrapes)")
    print()
    print_table(
        ["scrape median (ms)", "p95 (ms)", "daemon CPU / scrape (ms)", "body (KiB)", "series"],
        [
            [
                fmt(1000 * median(times)),
                fmt(1000 * percentile(times, 95)),
                fmt(1000 * cpu_per_scrape),
                fmt(len(body) / 1024),
                fmt(series),
            ]
        ],
    )
    print()
    print(f"### Daemon CPU, {args.idle:.0f} s windows, twice each (alternating)")
    print()
    print_table(
        ["not scraped (%)", f"scraped every {args.interval:.0f} s (%)", "difference (points)"],
        [
            [
                " / ".join(fmt(v, 2) for v in idle),
                " / ".join(fmt(v, 2) for v in scraped),
                fmt(sum(scraped) / len(scraped) - sum(idle) / len(idle), 2),
            ]
        ],
    )
    print(f"load average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A login storm: bad passwords from many clients, and what it does to ``server_status``.

    .venv/bin/python bench/login_storm.py [--clients 50] [--calls 500] [--procs 5]
                                          [--py-spy FILE]

The daemon runs with its default argon2id parameters (19 MiB, t=2, p=1) and its
default ``auth.hash_concurrency`` (verifications at once, in worker threads), and the
proof of work capped at difficulty 4 (``auth.pow_max_difficulty``) so that every bad
password reaches argon2 however many failed before (by default each two failures from
an address add a bit, and a storm soon pays for itself). Each client has a source
address of its own (127.0.0.2, 127.0.0.3, ...), so the per-address limits (60
``login_info`` a minute) apply per client, as for that many hosts; a client paces
itself to that limit and starts again after a refusal.

Phases: ``idle``: --calls sequential ``server_status`` calls of one running server (one
keep-alive connection, one client); ``storm``: the same calls while --clients clients
(in --procs processes, so the storm's Python never shares the measuring client's GIL)
send bad passwords for ``admin``. Reported: status p50/p99/max per phase, the storm's
logins a second (refused for the password, refused otherwise), the daemon's CPU.
With --py-spy the daemon is profiled during the storm and the share of argon2 samples
on its main (trio) thread is printed: it must be none. Target: storm p99 at most 1.5x
idle p99.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import multiprocessing
import signal
import subprocess
import threading
import time
from typing import Any

from _common import (
    VENV_BIN,
    Leosuite,
    bench_session,
    cpu_seconds,
    fmt,
    machine,
    percentile,
    print_table,
    ratio,
    sample,
)

from leosuite.auth.pow import solve

TARGET = 1.5
#: The daemon's defaults for the hash (bench/_common.py makes it cheap for the others).
REAL_HASH = {
    "LEOSUITE_AUTH_HASH_MEMORY_KIB": "19456",
    "LEOSUITE_AUTH_HASH_TIME_COST": "2",
    "LEOSUITE_AUTH_POW_DIFFICULTY": "4",
    "LEOSUITE_AUTH_POW_MAX_DIFFICULTY": "4",
}


def _client(port: int, index: int, pace: float, stop: Any, out: Any) -> None:
    """One storming client: login_info, proofs, a bad password; again, at most once a
    ``pace`` seconds."""
    counts: collections.Counter[str] = collections.Counter()
    source = (f"127.0.0.{2 + index}", 0)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120, source_address=source)
    headers = {"Content-Type": "application/json"}
    n = 0
    while not stop.is_set():
        began = time.monotonic()
        try:
            conn.request("GET", "/api/auth/login_info?username=admin")
            response = conn.getresponse()
            info = json.loads(response.read() or b"{}")
            if response.status != 200:
                counts[f"login_info {response.status}"] += 1
            else:
                proofs = solve(
                    info["random"], count=info["proof_of_works"], difficulty=info["difficulty"]
                )
                n += 1
                body = {
                    "username": "admin",
                    "password": f"not-the-password-{index}-{n}",
                    "random": info["random"],
                    "proof_of_works": proofs,
                }
                conn.request("POST", "/api/auth/login", json.dumps(body).encode(), headers)
                response = conn.getresponse()
                response.read()
                counts[f"login {response.status}"] += 1
        except (OSError, http.client.HTTPException) as exc:
            counts[type(exc).__name__] += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120, source_address=source)
        stop.wait(max(0.0, pace - (time.monotonic() - began)))
    conn.close()
    out.put(dict(counts))


def _clients(port: int, indexes: list[int], pace: float, stop: Any, out: Any) -> None:
    threads = [
        threading.Thread(target=_client, args=(port, i, pace, stop, out), daemon=True)
        for i in indexes
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def argon2_on_main(raw: str) -> tuple[int, int]:
    """(argon2 samples on the main thread, argon2 samples in all) of a py-spy raw file."""
    main = total = 0
    with open(raw) as lines:
        for line in lines:
            stack, _, n = line.rstrip().rpartition(" ")
            if "argon2" not in stack:
                continue
            total += int(n)
            if "MainThread" in stack.split(";", 1)[0]:
                main += int(n)
    return main, total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--procs", type=int, default=5, help="processes the clients run in")
    parser.add_argument("--calls", type=int, default=500, help="status calls per phase")
    parser.add_argument(
        "--pace", type=float, default=1.0, help="seconds between a client's attempts (at least)"
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of storm first")
    parser.add_argument("--py-spy", metavar="FILE", help="profile the daemon during the storm")
    parser.add_argument(
        "--hash-concurrency", type=int, help="the daemon's auth.hash_concurrency (default: its own)"
    )
    parser.add_argument(
        "--cheap-hash",
        action="store_true",
        help="argon2 at 64 KiB, t=1 (what the storm costs without the hash)",
    )
    parser.add_argument("--tmp-dir", help="where the data goes (default: the system's)")
    args = parser.parse_args()
    print(f"# login storm: {args.clients} clients, {args.calls} status calls per phase")
    hashing = "64 KiB, t=1" if args.cheap_hash else "19 MiB, t=2 (the default)"
    at_once = args.hash_concurrency or "the default"
    print(f"# argon2id {hashing}, hash_concurrency {at_once}")
    print(f"# {machine()}")
    with bench_session("login", tmp_dir=args.tmp_dir) as (reaper, root):
        env = dict(REAL_HASH)
        if args.cheap_hash:
            env.update(LEOSUITE_AUTH_HASH_MEMORY_KIB="64", LEOSUITE_AUTH_HASH_TIME_COST="1")
        if args.hash_concurrency:
            env["LEOSUITE_AUTH_HASH_CONCURRENCY"] = str(args.hash_concurrency)
        ls = Leosuite(reaper, root, env)
        port = int(ls.url.rsplit(":", 1)[1].strip("/"))
        ls.create("srv", "sleep 100000")
        ls.api.post("/api/server_start", {"server": "srv"})

        def status() -> None:
            ls.status("srv")

        sample(status, 50)  # warm
        cpu0, t0 = cpu_seconds(ls.pid), time.perf_counter()
        idle = sample(status, args.calls)
        idle_cpu = 100 * (cpu_seconds(ls.pid) - cpu0) / (time.perf_counter() - t0)

        ctx = multiprocessing.get_context("fork")
        stop, out = ctx.Event(), ctx.Queue()
        groups = [list(range(args.clients))[p :: args.procs] for p in range(args.procs)]
        procs = [
            ctx.Process(target=_clients, args=(port, group, args.pace, stop, out), daemon=True)
            for group in groups
            if group
        ]
        for proc in procs:
            proc.start()
        spy = None
        try:
            time.sleep(args.warmup)
            if args.py_spy:
                spy_argv = ["record", "-p", str(ls.pid), "-r", "100", "-f", "raw", "--threads"]
                spy = subprocess.Popen(
                    [str(VENV_BIN / "py-spy"), *spy_argv, "-o", args.py_spy],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            cpu0, t0 = cpu_seconds(ls.pid), time.perf_counter()
            storm = sample(status, args.calls)
            elapsed = time.perf_counter() - t0
            storm_cpu = 100 * (cpu_seconds(ls.pid) - cpu0) / elapsed
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
            stop.set()
            counts: collections.Counter[str] = collections.Counter()
            for _ in range(args.clients):
                counts.update(out.get(timeout=180))
            for proc in procs:
                proc.join(60)
        storm_s = elapsed + args.warmup  # what the counts cover, about
        reaper.stop(ls.proc, 60)

    print()
    print_table(
        ["phase", "status p50 (ms)", "p99 (ms)", "max (ms)", "daemon CPU %", "logins/s"],
        [
            [
                "idle",
                fmt(percentile(idle, 50), 2),
                fmt(percentile(idle, 99), 2),
                fmt(max(idle), 2),
                fmt(idle_cpu, 0),
                "-",
            ],
            [
                f"storm, {args.clients} clients",
                fmt(percentile(storm, 50), 2),
                fmt(percentile(storm, 99), 2),
                fmt(max(storm), 2),
                fmt(storm_cpu, 0),
                fmt(sum(v for k, v in counts.items() if k.startswith("login ")) / storm_s, 1),
            ],
        ],
    )
    p99 = ratio(percentile(storm, 99), percentile(idle, 99))
    met = percentile(storm, 99) <= TARGET * percentile(idle, 99)
    print(f"\nstorm p99 / idle p99: {p99} (at most {TARGET}x): {'met' if met else 'missed'}")
    print(f"client outcomes over ~{storm_s:.0f} s: {dict(sorted(counts.items()))}")
    if args.py_spy:
        on_main, total = argon2_on_main(args.py_spy)
        print(f"py-spy: argon2 samples {total}, on the main (trio) thread {on_main}")


if __name__ == "__main__":
    main()

"""API latency under a console flood: leosuite ``server_status`` vs supervisord's
``getProcessInfo`` (what ``supervisorctl status NAME`` calls), same producer.

    .venv/bin/python bench/latency.py [--calls 500] [--tmp-dir /dev/shm]

For each daemon: --calls sequential status requests of the flooding server while it
is stopped (baseline), then again while it writes to stdout as fast as it can (the
producer of bench/capture.py, 64 KiB writes, forever), after a --warmup. One client,
one keep-alive connection (leosuite: HTTP/1.1 on 127.0.0.1; supervisord: XML-RPC on
its unix socket). leosuite keeps its default console retention (64 MiB, the oldest
bytes punched out of the file the server writes itself); supervisord's log rotates
at 16 MiB, 4 kept (--retention changes leosuite's). Target: leosuite's p99 under flood
at most 1.5x its idle p99.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from typing import Any

from _common import (
    BENCH_DIR,
    Leosuite,
    Supervisord,
    bench_session,
    cpu_seconds,
    fmt,
    machine,
    percentile,
    print_table,
    ratio,
    sample,
    wait_until,
)

MiB = 1024 * 1024
TARGET = 1.5  # the most p99 under flood may be, in multiples of p99 idle


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=500, help="status calls per phase")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of flood first")
    parser.add_argument("--tmp-dir", help="where the logs go (default: the system's)")
    parser.add_argument("--no-peer", action="store_true", help="skip supervisord")
    parser.add_argument(
        "--retention",
        type=int,
        help="leosuite's servers.console_retention_bytes (default: the daemon's default)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    producer = shlex.join([sys.executable, str(BENCH_DIR / "_producer.py"), "-1"])
    print(f"# latency: {args.calls} sequential status calls per phase")
    print(f"# {machine()}")
    print(f"# logs in {args.tmp_dir or tempfile.gettempdir()}")
    samples: dict[tuple[str, str], list[float]] = {}
    flood_rate: dict[str, float] = {}
    flood_cpu: dict[str, float] = {}
    cpu_per_call: dict[str, float] = {}

    with bench_session("latency", keep=args.keep, tmp_dir=args.tmp_dir) as (reaper, root):
        (root / "ls").mkdir()
        env = {}
        if args.retention is not None:
            env["LEOSUITE_SERVERS_CONSOLE_RETENTION_BYTES"] = str(args.retention)
        ls = Leosuite(reaper, root / "ls", env=env)
        ls.create("flood", producer)

        def status() -> Any:
            return ls.api.post("/api/server_status", {"server": "flood"})

        sample(status, 20)  # warm the connection and the code paths
        c0 = cpu_seconds(ls.pid)
        samples["leosuite", "idle"] = sample(status, args.calls)
        cpu_per_call["leosuite"] = (cpu_seconds(ls.pid) - c0) * 1000 / args.calls
        ls.api.post("/api/server_start", {"server": "flood"})
        time.sleep(args.warmup)
        i0, c0, t0 = status()["readIndex"], cpu_seconds(ls.pid), time.perf_counter()
        samples["leosuite", "flood"] = sample(status, args.calls)
        i1, c1, t1 = status()["readIndex"], cpu_seconds(ls.pid), time.perf_counter()
        flood_rate["leosuite"] = (i1 - i0) / MiB / (t1 - t0)
        flood_cpu["leosuite"] = 100 * (c1 - c0) / (t1 - t0)
        ls.api.post("/api/server_stop", {"server": "flood"})
        reaper.stop(ls.proc, 60)

        if not args.no_peer:
            (root / "sd").mkdir()
            log = root / "sd" / "flood.log"
            sd = Supervisord(
                reaper,
                root / "sd",
                {
                    "flood": {
                        "command": producer,
                        "autostart": "false",
                        "autorestart": "false",
                        "startsecs": "0",
                        "redirect_stderr": "true",
                        "stdout_logfile": str(log),
                        "stdout_logfile_maxbytes": str(16 * MiB),
                        "stdout_logfile_backups": "4",
                    }
                },
            )
            rpc = sd.rpc.supervisor

            def info() -> Any:
                return rpc.getProcessInfo("flood")

            sample(info, 20)
            c0 = cpu_seconds(sd.pid)
            samples["supervisord", "idle"] = sample(info, args.calls)
            cpu_per_call["supervisord"] = (cpu_seconds(sd.pid) - c0) * 1000 / args.calls
            rpc.startProcess("flood", False)
            time.sleep(args.warmup)
            c0, t0 = cpu_seconds(sd.pid), time.perf_counter()
            samples["supervisord", "flood"] = sample(info, args.calls)
            c1, t1 = cpu_seconds(sd.pid), time.perf_counter()
            flood_cpu["supervisord"] = 100 * (c1 - c0) / (t1 - t0)
            rpc.stopProcess("flood", True)
            wait_until(lambda: info()["statename"] == "STOPPED", timeout=30, what="stop")

    rows = []
    for (who, phase), ms in samples.items():
        rows.append(
            [
                who,
                phase,
                fmt(percentile(ms, 50), 2),
                fmt(percentile(ms, 99), 2),
                fmt(max(ms), 2),
                fmt(flood_rate[who], 0) if phase == "flood" and who in flood_rate else "-",
                fmt(flood_cpu[who], 0) if phase == "flood" else "-",
                fmt(cpu_per_call[who], 2) if phase == "idle" else "-",
            ]
        )
    print()
    print_table(
        [
            "daemon",
            "console",
            "p50 ms",
            "p99 ms",
            "max ms",
            "flood MiB/s",
            "daemon CPU %",
            "CPU ms/call",
        ],
        rows,
    )
    if ("supervisord", "flood") in samples:
        print()
        print_table(
            ["under flood", "leosuite", "supervisord", "leosuite / supervisord"],
            [
                [
                    f"p{q}",
                    fmt(percentile(samples["leosuite", "flood"], q), 2),
                    fmt(percentile(samples["supervisord", "flood"], q), 2),
                    ratio(
                        percentile(samples["leosuite", "flood"], q),
                        percentile(samples["supervisord", "flood"], q),
                    ),
                ]
                for q in (50, 99)
            ],
        )
    idle, flood = (percentile(samples["leosuite", phase], 99) for phase in ("idle", "flood"))
    verdict = "met" if flood <= TARGET * idle else "MISSED"
    print(
        f"\ntarget leosuite p99 flood / idle: {flood:.2f} / {idle:.2f} ms = {flood / idle:.2f}x"
        f" (at most {TARGET:.2f}x): {verdict}"
    )


if __name__ == "__main__":
    main()

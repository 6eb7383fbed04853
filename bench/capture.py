"""Console capture throughput: leosuite vs supervisord on the same producer.

    .venv/bin/python bench/capture.py [--size 1G] [--runs 3] [--poll 0.01]

The producer (bench/_producer.py) writes --size bytes to stdout in 64 KiB writes as
fast as it can. Measured, alternately in each round (order rotated), on a fresh file:

- ``producer | cat > /dev/null`` and ``producer | cat > file``: the limits;
- leosuite, default settings (16 MiB console files, 4 kept) and with one file big
  enough for everything (like supervisord's ``stdout_logfile_maxbytes=0``): from the
  ``server_start`` request until ``server_status`` reports a ``readIndex`` past the
  producer's last byte (polled every --poll s; the last byte is then read back
  through ``server_log``);
- supervisord, ``stdout_logfile_maxbytes=0`` (one file) and 16 MiB x 4 backups: from
  ``startProcess`` (XML-RPC) until its log file holds every byte (``stat`` every
  --poll s).

CPU is the daemon's user+system time over the same window (psutil), in % of one core.
Every run gets a new server / a deleted log file, and ``sync`` runs between runs so
one run's dirty pages do not slow the next.
"""

from __future__ import annotations

import argparse
import base64
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from _common import (
    BENCH_DIR,
    Leosuite,
    Supervisord,
    bench_session,
    cpu_seconds,
    fmt,
    machine,
    median,
    print_table,
    ratio,
    wait_until,
)

MiB = 1024 * 1024


def parse_size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().removesuffix("ib").removesuffix("b")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


@dataclass
class Result:
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # % of one core, or empty


def producer_argv(size: int, chunk: int) -> list[str]:
    return [sys.executable, str(BENCH_DIR / "_producer.py"), str(size), str(chunk)]


def run_shell_limit(producer: list[str], target: str, path: Path) -> float:
    cmd = f"{shlex.join(producer)} | cat > {shlex.quote(target)}"
    t0 = time.perf_counter()
    subprocess.run(["sh", "-c", cmd], check=True)
    elapsed = time.perf_counter() - t0
    path.unlink(missing_ok=True)
    return elapsed


def run_leosuite(
    ls: Leosuite, name: str, producer: list[str], size: int, poll: float
) -> tuple[float, float]:
    api = ls.api
    ls.create(name, shlex.join(producer))
    cpu0 = cpu_seconds(ls.pid)
    t0 = time.perf_counter()
    api.post("/api/server_start", {"server": name})
    head = api.post(
        "/api/server_log", {"server": name, "readIndex": 0, "max": 4096, "encoding": "base64"}
    )
    data = base64.b64decode(head["data"])
    marker = data.index(b"[leosuite] started pid")
    first = head["oldReadIndex"] + data.index(b"\n", marker) + 1  # the producer's first byte
    target = first + size
    while ls.status(name)["readIndex"] < target:
        time.sleep(poll)
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds(ls.pid) - cpu0
    last = api.post(
        "/api/server_log",
        {"server": name, "readIndex": target - 1, "max": 1, "encoding": "base64"},
    )
    if last["oldReadIndex"] != target - 1 or len(base64.b64decode(last["data"])) != 1:
        raise RuntimeError(f"last byte not readable: {last}")
    wait_until(
        lambda: ls.status(name)["status"] in ("stopped", "crashed"),
        timeout=30,
        what="the producer to exit",
    )
    api.post("/api/server_destroy", {"server": name, "delete_files": True})
    return elapsed, 100 * cpu / elapsed


def run_supervisord(
    sd: Supervisord, name: str, path: Path, size: int, poll: float
) -> tuple[float, float]:
    path.unlink(missing_ok=True)
    for old in path.parent.glob(path.name + ".*"):
        old.unlink()
    cpu0 = cpu_seconds(sd.pid)
    t0 = time.perf_counter()
    sd.rpc.supervisor.startProcess(name, False)

    def written() -> int:
        try:
            return path.stat().st_size + sum(
                p.stat().st_size for p in path.parent.glob(path.name + ".*")
            )
        except FileNotFoundError:
            return 0

    rotating = name.endswith("rot")
    if rotating:
        # Rotated files are deleted as it goes: the bytes on disk cannot be counted, so
        # take the time supervisord sees the exit (at most a pipe's worth early).
        while sd.rpc.supervisor.getProcessInfo(name)["statename"] in ("STARTING", "RUNNING"):
            time.sleep(poll)
    else:
        while written() < size:
            time.sleep(poll)
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds(sd.pid) - cpu0
    wait_until(
        lambda: (
            sd.rpc.supervisor.getProcessInfo(name)["statename"] in ("EXITED", "STOPPED", "FATAL")
        ),
        timeout=30,
        what="the producer to exit under supervisord",
    )
    return elapsed, 100 * cpu / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="1G", help="bytes per run (1G, 256M, ...)")
    parser.add_argument("--chunk", type=int, default=64 * 1024, help="producer write size")
    parser.add_argument("--runs", type=int, default=3, help="rounds (median reported)")
    parser.add_argument("--poll", type=float, default=0.01, help="completion poll interval (s)")
    parser.add_argument(
        "--tmp-dir", help="where the logs go (default: the system's; /dev/shm takes the disk out)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    size = parse_size(args.size)
    producer = producer_argv(size, args.chunk)
    print(f"# capture: {size / MiB:.0f} MiB in {args.chunk // 1024} KiB writes, {args.runs} runs")
    print(f"# {machine()}")
    print(f"# logs in {args.tmp_dir or tempfile.gettempdir()}")

    with bench_session("capture", keep=args.keep, tmp_dir=args.tmp_dir) as (reaper, root):
        ls_default = Leosuite(reaper, _mk(root / "ls-default"))
        ls_single = Leosuite(
            reaper,
            _mk(root / "ls-single"),
            env={
                "LEOSUITE_SERVERS_CONSOLE_FILE_MAX_BYTES": str(size + 16 * MiB),
                "LEOSUITE_SERVERS_CONSOLE_KEEP_FILES": "0",
            },
        )
        common = {
            "command": shlex.join(producer),
            "autostart": "false",
            "autorestart": "false",
            "startsecs": "0",
            "redirect_stderr": "true",
        }
        sd_root = _mk(root / "sd")
        one_file = sd_root / "one.log"
        rot_file = sd_root / "rot.log"
        sd = Supervisord(
            reaper,
            sd_root,
            {
                "one": {**common, "stdout_logfile": str(one_file), "stdout_logfile_maxbytes": "0"},
                "rot": {
                    **common,
                    "stdout_logfile": str(rot_file),
                    "stdout_logfile_maxbytes": str(16 * MiB),
                    "stdout_logfile_backups": "4",
                },
            },
        )
        scratch = root / "cat.out"
        variants: list[tuple[str, Callable[[int], tuple[float, float | None]]]] = [
            (
                "limit: producer, cat > /dev/null",
                lambda r: (run_shell_limit(producer, "/dev/null", scratch), None),
            ),
            (
                "limit: producer, cat > file",
                lambda r: (run_shell_limit(producer, str(scratch), scratch), None),
            ),
            (
                "leosuite, one file",
                lambda r: run_leosuite(ls_single, f"one{r}", producer, size, args.poll),
            ),
            (
                "supervisord, one file (maxbytes=0)",
                lambda r: run_supervisord(sd, "one", one_file, size, args.poll),
            ),
            (
                "leosuite, 16 MiB x 4 files (default)",
                lambda r: run_leosuite(ls_default, f"rot{r}", producer, size, args.poll),
            ),
            (
                "supervisord, 16 MiB x 4 backups",
                lambda r: run_supervisord(sd, "rot", rot_file, size, args.poll),
            ),
        ]
        results = {label: Result() for label, _ in variants}
        for r in range(args.runs):
            order = variants[r % len(variants) :] + variants[: r % len(variants)]
            for label, fn in order:
                os.sync()
                seconds, cpu = fn(r)
                results[label].seconds.append(seconds)
                if cpu is not None:
                    results[label].cpu.append(cpu)
                print(f"  run {r + 1}: {label}: {size / MiB / seconds:.0f} MiB/s", flush=True)
        reaper.remember_descendants()

    rate = {label: size / MiB / median(res.seconds) for label, res in results.items()}
    rows = []
    for label, res in results.items():
        rates = [size / MiB / s for s in res.seconds]
        rows.append(
            [
                label,
                fmt(rate[label], 0),
                f"{min(rates):.0f}-{max(rates):.0f}",
                fmt(median(res.cpu), 0) if res.cpu else "-",
                fmt(
                    median([c * s / 100 for c, s in zip(res.cpu, res.seconds, strict=True)])
                    * 1024
                    * MiB
                    / size,
                    2,
                )
                if res.cpu
                else "-",
            ]
        )
    print()
    print_table(["what", "MiB/s (median)", "min-max", "daemon CPU %", "daemon CPU s/GiB"], rows)
    print()
    pairs = [
        ("one file", "leosuite, one file", "supervisord, one file (maxbytes=0)"),
        (
            "16 MiB rotation",
            "leosuite, 16 MiB x 4 files (default)",
            "supervisord, 16 MiB x 4 backups",
        ),
    ]
    print_table(
        [
            "log files",
            "leosuite MiB/s",
            "supervisord MiB/s",
            "leosuite / supervisord",
            "leosuite / cat > file",
        ],
        [
            [
                what,
                fmt(rate[a], 0),
                fmt(rate[b], 0),
                ratio(rate[a], rate[b]),
                ratio(rate[a], rate["limit: producer, cat > file"]),
            ]
            for what, a, b in pairs
        ],
    )


def _mk(path: Path) -> Path:
    path.mkdir()
    return path


if __name__ == "__main__":
    main()

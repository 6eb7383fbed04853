"""Console capture throughput: leosuite vs supervisord on the same producer.

    .venv/bin/python bench/capture.py [--size 1G] [--runs 3] [--poll 0.01]

The producer (bench/_producer.py) writes --size bytes to stdout in 64 KiB writes as
fast as it can. Measured in each round (in a shuffled order), each on a fresh file:

- the limits: ``producer > file`` (its stdout is the file itself, opened O_APPEND:
  no pipe and no copy, which is how leosuite hands a server its console), until the
  producer's write() calls add up to --size (``/proc/<pid>/io``, every --poll s: a
  write to a regular file is in the file when it returns); ``producer | cat > file``
  and ``producer | cat > /dev/null``, until both have exited;
- leosuite at its default console retention (64 MiB) and with a retention big enough
  for everything: from the ``server_start`` request until the producer has written
  every byte (as above) and ``server_status`` then reports a ``readIndex`` at or past
  its last byte. That byte is found afterwards in the console's tail, read through
  ``server_log``, by matching the producer's own last bytes; with everything kept,
  the console is also checked to hold exactly --size producer bytes;
- supervisord, ``stdout_logfile_maxbytes=0`` (one file): from ``startProcess``
  (XML-RPC) until its log file holds every byte (``stat`` every --poll s); and with
  16 MiB x 4 backups: until supervisord reports the exit (rotated files are deleted as
  it goes, so the bytes cannot be counted; at most a pipe's worth early).

CPU is the daemon's user+system time over the same window (psutil); for leosuite it
includes starting the server, measured apart and printed. "exit after last byte" is
how long the producer took to exit once it had written everything (leosuite: until
``server_status`` shows it). ``sync`` runs before every
run so that one run's dirty pages do not slow the next, and every run deletes its
files once measured, so that each starts with the same free memory. Targets: leosuite
within 10 % of ``producer > file`` and at least twice supervisord's rate.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from _capture_runs import (
    Producer,
    Run,
    leosuite_overhead,
    run_leosuite,
    run_shell_limit,
    run_supervisord,
    run_to_file,
)
from _common import Leosuite, Supervisord, bench_session, fmt, machine, median, print_table, ratio

MiB = 1024 * 1024

PIPE_DEVNULL = "limit: producer, cat > /dev/null"  # no "|": the tables are Markdown
TO_FILE = "limit: producer > file"
PIPE_FILE = "limit: producer, cat > file"
LS_DEFAULT = "leosuite, default retention (64 MiB)"
LS_ALL = "leosuite, retention for everything"
SD_ROT = "supervisord, 16 MiB x 4 backups"
SD_ONE = "supervisord, one file (maxbytes=0)"
#: (what, leosuite, supervisord): the pairs compared, each with the same disk bound.
PAIRS = [("everything kept", LS_ALL, SD_ONE), ("bounded disk", LS_DEFAULT, SD_ROT)]
TARGET_VS_FILE = 0.9
TARGET_VS_SUPERVISORD = 2.0


def parse_size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().removesuffix("ib").removesuffix("b")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


@dataclass
class Result:
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # daemon CPU seconds, or empty
    exit_lag: list[float] = field(default_factory=list)

    def add(self, run: Run) -> None:
        self.seconds.append(run.seconds)
        if run.cpu is not None:
            self.cpu.append(run.cpu)
        if run.exit_lag is not None:
            self.exit_lag.append(run.exit_lag)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="1G", help="bytes per run (1G, 256M, ...)")
    parser.add_argument("--chunk", type=int, default=64 * 1024, help="producer write size")
    parser.add_argument("--runs", type=int, default=3, help="rounds (median reported)")
    parser.add_argument("--poll", type=float, default=0.01, help="completion poll interval (s)")
    parser.add_argument("--limit", type=float, default=600.0, help="longest run allowed (s)")
    parser.add_argument(
        "--tmp-dir", help="where the logs go (default: the system's; /dev/shm takes the disk out)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    size = parse_size(args.size)
    producer = Producer.make(size, args.chunk)
    print(f"# capture: {size / MiB:.0f} MiB in {args.chunk // 1024} KiB writes, {args.runs} runs")
    print(f"# {machine()}")
    print(f"# logs in {args.tmp_dir or tempfile.gettempdir()}")

    with bench_session("capture", keep=args.keep, tmp_dir=args.tmp_dir) as (reaper, root):
        ls_default = Leosuite(reaper, _mk(root / "ls-default"))
        ls_all = Leosuite(
            reaper,
            _mk(root / "ls-all"),
            env={"LEOSUITE_SERVERS_CONSOLE_RETENTION_BYTES": str(size + 16 * MiB)},
        )
        overhead = [leosuite_overhead(ls) for ls in (ls_default, ls_all)]
        common = {
            "command": shlex.join(producer.argv),
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
        out = root / "limit.out"
        poll, limit = args.poll, args.limit
        variants: list[tuple[str, Callable[[int], Run]]] = [
            (PIPE_DEVNULL, lambda r: run_shell_limit(producer, "/dev/null", out, limit)),
            (TO_FILE, lambda r: run_to_file(producer, out, poll, limit)),
            (PIPE_FILE, lambda r: run_shell_limit(producer, str(out), out, limit)),
            (LS_DEFAULT, lambda r: run_leosuite(ls_default, f"d{r}", producer, poll, limit)),
            (SD_ROT, lambda r: run_supervisord(sd, "rot", rot_file, size, poll, limit)),
            (LS_ALL, lambda r: run_leosuite(ls_all, f"a{r}", producer, poll, limit)),
            (SD_ONE, lambda r: run_supervisord(sd, "one", one_file, size, poll, limit)),
        ]
        results = {label: Result() for label, _ in variants}
        for r in range(args.runs):
            order = list(variants)
            random.Random(r).shuffle(order)  # new neighbours each round, same every time
            for label, fn in order:
                os.sync()
                run = fn(r)
                results[label].add(run)
                extra = f" ({run.note})" if run.note else ""
                print(f"  run {r + 1}: {label}: {size / MiB / run.seconds:.0f} MiB/s{extra}")
                sys.stdout.flush()
        reaper.remember_descendants()

    report(results, size, overhead)


def report(results: dict[str, Result], size: int, overhead: list[tuple[float, float]]) -> None:
    gib = size / (1024 * MiB)
    poll_ms = median([o[0] for o in overhead])
    start_ms = median([o[1] for o in overhead])
    rate = {label: size / MiB / median(res.seconds) for label, res in results.items()}
    rows = []
    for label, res in results.items():
        rates = [size / MiB / s for s in res.seconds]
        percent = (
            [100 * c / s for c, s in zip(res.cpu, res.seconds, strict=True)] if res.cpu else []
        )
        rows.append(
            [
                label,
                fmt(rate[label], 0),
                f"{min(rates):.0f}-{max(rates):.0f}",
                fmt(median(percent), 1) if res.cpu else "-",
                fmt(median(res.cpu) / gib, 3) if res.cpu else "-",
                fmt(1000 * median(res.exit_lag), 0) if res.exit_lag else "-",
            ]
        )
    print()
    headers = ["what", "MiB/s (median)", "min-max", "daemon CPU %", "daemon CPU s/GiB"]
    print_table([*headers, "exit after last byte (ms)"], rows)
    print(
        f"\nleosuite's fixed cost in those CPU figures: {start_ms:.0f} ms to start a server"
        f" that writes nothing and see it exit; a server_status call: {poll_ms:.2f} ms\n"
    )
    print_table(
        ["logs", "leosuite MiB/s", "supervisord MiB/s", "/ supervisord", "/ producer > file"],
        [
            [
                what,
                fmt(rate[a], 0),
                fmt(rate[b], 0),
                ratio(rate[a], rate[b]),
                ratio(rate[a], rate[TO_FILE]),
            ]
            for what, a, b in PAIRS
        ],
    )
    print()
    for _, ls_label, sd_label in PAIRS:
        verdict(f"{ls_label} / producer > file", rate[ls_label] / rate[TO_FILE], TARGET_VS_FILE)
        verdict(f"{ls_label} / {sd_label}", rate[ls_label] / rate[sd_label], TARGET_VS_SUPERVISORD)


def verdict(what: str, value: float, at_least: float) -> None:
    result = "met" if value >= at_least else "MISSED"
    print(f"target {what}: {value:.2f}x (at least {at_least:.2f}x): {result}")


def _mk(path: Path) -> Path:
    path.mkdir()
    return path


if __name__ == "__main__":
    main()

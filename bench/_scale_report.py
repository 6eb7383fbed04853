"""bench/scale.py's results: what one daemon measured, and the tables printed at the end."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from _common import fmt, print_table, ratio

__all__ = ["Result", "print_results"]


@dataclass
class Result:
    label: str
    create: float = float("nan")
    all_running: float = float("nan")
    rss_mib: float = float("nan")
    idle_cpu: float = float("nan")
    status_all_ms: float = float("nan")
    stop_all: float = float("nan")
    cli_start: float = float("nan")
    cli_all_running: float = float("nan")
    cli_stop: float = float("nan")
    cli_stop_cpu: float = float("nan")
    bulk_start: float = float("nan")
    bulk_all_running: float = float("nan")
    bulk_stop: float = float("nan")
    bulk_stop_cpu: float = float("nan")
    #: supervisord: the startAllProcesses(wait) call alone.
    start_all: float = float("nan")
    #: Daemon CPU seconds of the one-call stop (bulk; supervisord: stopAllProcesses).
    stop_all_cpu: float = float("nan")
    shutdown: float = float("nan")


def bulk_start_cell(r: Result) -> str:
    """leosuite: the bulk call / until all run; supervisord: startAllProcesses alone / until
    all are RUNNING."""
    if r.label.startswith("supervisord"):
        return f"{fmt(r.start_all, 2)} / {fmt(r.all_running, 2)}"
    return f"{fmt(r.bulk_start, 2)} / {fmt(r.bulk_all_running, 2)}"


def print_results(results: list[Result], args: argparse.Namespace) -> None:
    """The two tables and their notes."""
    print()
    print_table(
        [
            "daemon",
            "create (s)",
            "start -> all running (s)",
            "RSS (MiB)",
            f"idle CPU % ({args.idle:.0f} s)",
            "status of all (ms)",
            "stop all (s)",
            "bulk stop (s)",
            "its daemon CPU (s)",
            "bulk start (s) / all running (s)",
            "`stop --all` (s)",
            "`start --all` (s) / all running (s)",
            "SIGTERM daemon, all running (s)",
        ],
        [
            [
                r.label,
                fmt(r.create, 2),
                fmt(r.all_running, 2),
                fmt(r.rss_mib, 0),
                fmt(r.idle_cpu, 1),
                fmt(r.status_all_ms, 0),
                fmt(r.stop_all, 2),
                fmt(r.bulk_stop, 2),
                fmt(r.stop_all_cpu, 2),
                bulk_start_cell(r),
                fmt(r.cli_stop, 2),
                f"{fmt(r.cli_start, 2)} / {fmt(r.cli_all_running, 2)}",
                fmt(r.shutdown, 2) if r.shutdown != float("inf") else f"> {args.shutdown_cap:.0f}",
            ]
            for r in results
        ],
    )
    if len(results) > 1:
        ls = results[0]
        print()
        print_table(
            [
                "leosuite / peer",
                "create",
                "start -> all running",
                "RSS",
                "idle CPU",
                "stop all",
                "bulk stop / stopAll",
                "its CPU",
                "bulk start / startAll",
                "`stop --all` / stopAll",
                "`start --all` / startAll",
                "shutdown",
            ],
            [
                [
                    r.label,
                    ratio(ls.create, r.create),
                    ratio(ls.all_running, r.all_running),
                    ratio(ls.rss_mib, r.rss_mib),
                    ratio(ls.idle_cpu, r.idle_cpu),
                    ratio(ls.stop_all, r.stop_all),
                    ratio(ls.bulk_stop, r.stop_all),
                    ratio(ls.stop_all_cpu, r.stop_all_cpu),
                    ratio(ls.bulk_start, r.start_all),
                    ratio(ls.cli_stop, r.stop_all),
                    ratio(ls.cli_start, r.start_all),
                    ratio(ls.shutdown, r.shutdown),
                ]
                for r in results[1:]
            ],
        )
    print(
        "\nbulk: one POST /api/server_power_bulk {all: true} (leosuite) or "
        "startAllProcesses / stopAllProcesses (supervisord, the call alone); "
        "`stop --all` / `start --all`: `leosuite server stop|start --all` (a subprocess: "
        "one server.power_bulk call; Python start-up included); stop all: one request per "
        "server (leosuite) or stopAllProcesses (supervisord)"
    )
    how = "server_create_bulk (1000 a request)" if args.create == "bulk" else "N server_create"
    print(f"\ncreate: leosuite = {how}; supervisord = start-up with N programs")

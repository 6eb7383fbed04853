"""scripts/chaos: a real daemon with misbehaving servers, under random faults.

    scripts/chaos [--minutes N] [--quick] [--seed S] [--data-dir D] [--keep]

Starts ``leosuite serve`` (127.0.0.1, ports 0) on a data directory (a small tmpfs when
run as root), creates about twenty servers of every misbehaving kind (twelve with
--quick), keeps store writes, console readers and slow or idle WebSocket subscribers
going, and injects faults at random for N minutes: one of each kind first, then by
weight. After each fault it checks every invariant; at the end it stops the daemon,
checks that no server process is left, prints the table of faults and invariant
violations, and removes everything it started. Exit status 0 only when no invariant
was violated.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from functools import partial
from pathlib import Path

import trio

from .console import ConsoleStats, follow_http, subscribe_ws
from .daemon import Api, CallFailed, Daemon, DaemonDied
from .faults import FAULTS, WEIGHTS
from .fleet import LONG_RUNNING, NUMBERS, ServerSpec, fleet_specs
from .ledger import Ledger
from .lines import LineCheck
from .procs import kill_all
from .programs import write_programs
from .report import Tally
from .run import Run
from .rundir import RunDir
from .stats import summary

REPO = Path(__file__).resolve().parents[2]
#: Settings of the daemon under test (environment variables).
SETTINGS = {
    "LEOSUITE_DAEMON_SHUTDOWN_TIMEOUT": "10",
    "LEOSUITE_SERVERS_CONSOLE_RETENTION_BYTES": str(1 << 20),
    "LEOSUITE_SERVERS_BACKOFF_INITIAL": "0.5",
    "LEOSUITE_SERVERS_BACKOFF_MAX": "2",
    "LEOSUITE_WS_CONSOLE_MAX_LAG": str(512 << 10),
    "LEOSUITE_WS_CONSOLE_BATCH_BYTES": str(64 << 10),
}
#: The daemon's hard descriptor limit (the exhaustion fault opens more connections).
NOFILE = 1024
#: Numbered lines per second of the numbered flooder (42 bytes each).
NUMBERS_RATE = 2500


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of faults (10)")
    parser.add_argument(
        "--quick", action="store_true", help="about a minute: fewer servers, 0.7 min of faults"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    parser.add_argument("--data-dir", help="data directory to use (new or empty; kept)")
    parser.add_argument("--keep", action="store_true", help="keep the logs and a data copy")
    parser.add_argument(
        "--recovery-limit",
        type=float,
        default=1.0,
        help="seconds within which the API must answer after a recovery (1)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes = min(args.minutes, 0.7)
    if args.seed is None:
        args.seed = int(time.time()) % 100000
    return args


async def create_fleet(api: Api, specs: list[ServerSpec]) -> None:
    for spec in specs:
        await api.call(
            "server_create", {"server": spec.name, "type": spec.type, "settings": spec.settings}
        )
    for spec in specs:
        if spec.started:
            await api.call("server_start", {"server": spec.name})


async def background(
    run: Run,
    specs: list[ServerSpec],
    stats: ConsoleStats,
    check: LineCheck,
    *,
    task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The load that runs through every fault, until its scope is cancelled."""
    rng = random.Random(run.rng.random())
    floods = [s.name for s in specs if s.name.startswith("flood")]
    readers: list[tuple[str, bool, LineCheck | None]] = [
        (NUMBERS, True, LineCheck("numbers (WebSocket)")),
        (floods[0], True, None),
        (NUMBERS, False, None),
        (floods[-1], False, None),
    ]
    if not run.quick:
        readers += [(floods[-1], True, None), (NUMBERS, True, LineCheck("numbers (WS 2)"))]
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            task_status.started(scope)
            nursery.start_soon(run.ledger.run)
            lag_every = 15 if run.quick else 60
            nursery.start_soon(
                partial(
                    follow_http, Api(run.daemon), NUMBERS, check, run.tally, stats, rng,
                    lag_every=lag_every, lag_for=14,
                )
            )  # fmt: skip
            for server, reads, line_check in readers:
                nursery.start_soon(
                    partial(
                        subscribe_ws, run.daemon, server, reads=reads, check=line_check,
                        tally=run.tally, stats=stats, rng=random.Random(rng.random()),
                        max_connections=500,
                    )
                )  # fmt: skip


async def chaos(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    rundir = RunDir("chaos", args.data_dir, None if args.data_dir else 384)
    write_programs(rundir.programs)
    daemon = Daemon(rundir.data_dir, rundir.logs, SETTINGS, nofile=NOFILE)
    tally = Tally(FAULTS, args.recovery_limit)
    api = Api(daemon)
    specs = fleet_specs(REPO, rundir.programs, quick=args.quick, numbers_rate=NUMBERS_RATE)
    ledger = Ledger(
        api=Api(daemon, timeout=15),
        rng=random.Random(rng.random()),
        ledgers=[s.name for s in specs if s.kind == "settings ledger"],
        pause=(0.1, 0.4),
    )
    run = Run(daemon, rundir, tally, rng, api, ledger, args.quick)
    run.long_running = [s.name for s in specs if s.kind in LONG_RUNNING]
    stats = ConsoleStats()
    check = LineCheck("numbers")
    began = time.monotonic()
    print(
        f"chaos: seed {args.seed}, {args.minutes:g} min of faults, {len(specs)} servers, "
        f"{rundir.mount_note}; files in {rundir.root}",
        flush=True,
    )
    interrupted: list[str] = []
    finished = False
    try:
        async with trio.open_nursery() as outer:
            outer.start_soon(watch_signals, outer.cancel_scope, interrupted)
            budget = args.minutes * 60 + 300
            with trio.move_on_after(budget) as overall:
                await drive(run, specs, stats, check, args.minutes * 60)
            if overall.cancelled_caught:
                tally.violate("exits", f"the run did not finish within {budget:.0f} s")
            outer.cancel_scope.cancel()
        finished = True
    finally:
        with trio.CancelScope(shield=True):
            if daemon.running:
                await daemon.kill()
            leftovers = await trio.to_thread.run_sync(kill_all, rundir.data_dir)
            if leftovers:
                tally.note(f"killed {len(leftovers)} process(es) left at the end")
            await api.aclose()
            await run.ledger.api.aclose()
            if interrupted or not finished:
                print(rundir.close(keep=True), flush=True)
    tally.note(
        f"consoles: {stats.bytes_read >> 10} KiB read, {check.lines} numbered lines checked "
        f"(HTTP), {stats.gaps} gaps announced by server_log, {stats.overruns} console_overrun "
        f"pushes, {stats.connections} WebSocket connections"
    )
    tally.note(
        f"store writes: {ledger.acknowledged} acknowledged, {ledger.unanswered} unanswered; "
        f"daemon starts: {daemon.starts}, start to serving {summary(run.startups)}; "
        f"SIGTERM to exit {summary(run.stops)}; "
        f"recovery to the first server_list {summary(run.recoveries)}"
    )
    if interrupted:
        print(tally.render())
        return 130
    keep = args.keep or tally.total_violations > 0
    if keep:
        rundir.keep_copy()
    where = rundir.close(keep)
    print()
    print(f"chaos: seed {args.seed}, {time.monotonic() - began:.0f} s, {len(specs)} servers")
    print(tally.render())
    print(f"\n{where}")
    return 0 if tally.total_violations == 0 else 1


async def drive(
    run: Run, specs: list[ServerSpec], stats: ConsoleStats, check: LineCheck, seconds: float
) -> None:
    """Start, create the servers, run the load and the faults, stop for good."""
    try:
        await run.start("the first start", on_exit="stop")
        await create_fleet(run.api, specs)
        async with trio.open_nursery() as nursery:
            load = await nursery.start(background, run, specs, stats, check)
            await trio.sleep(2)
            await run.check_all()
            await inject(run, seconds)
            await run.check_all()
            load.cancel()
        await run.final_stop()
    except (CallFailed, DaemonDied) as exc:
        run.tally.violate("exits", f"the run could not go on: {exc}\n{run.daemon.log_tail()}")


async def watch_signals(scope: trio.CancelScope, received: list[str], prog: str = "chaos") -> None:
    """SIGINT or SIGTERM end the run early (it still cleans up); noted in ``received``."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            received.append(signal.Signals(signum).name)
            print(f"{prog}: {received[0]}: stopping early", flush=True)
            scope.cancel()
            return


async def inject(run: Run, seconds: float) -> None:
    deadline = trio.current_time() + seconds
    kinds = list(FAULTS)
    run.rng.shuffle(kinds)
    for n in range(int(seconds) + len(kinds)):  # bounded: at most one fault a second
        if trio.current_time() >= deadline:
            return
        if n < len(kinds):
            kind = kinds[n]
        else:
            kind = run.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        await run.ensure_running()
        run.tally.fault(kind)
        print(f"  {trio.current_time() - deadline + seconds:6.1f} s  {kind}", flush=True)
        await FAULTS[kind](run)
        await run.check_all()
        await trio.sleep(run.rng.uniform(0.5, 2.0))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return trio.run(chaos, args)


if __name__ == "__main__":
    sys.exit(main())

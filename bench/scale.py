"""Many servers: leosuite vs supervisord with N small long-running programs.

    .venv/bin/python bench/scale.py [--servers 1000] [--program sleep|demo-game]
                                    [--threads 16] [--idle 10] [--startsecs 0,1]

leosuite: N servers of type ``command`` (``sleep 100000``; or ``demo-game`` with
``ready_delay 0`` and ``player_interval 0``, which waits for its ready line), created
with ``server_create_bulk`` (1000 a request; --create each: one ``server_create``
each), started with one ``server_start`` each, stopped
with one ``server_stop`` each (``stop`` answers once the process has exited); all
three from a pool of --threads client threads, each with a keep-alive connection
(--threads 1: sequential). "all running" is polled with ``server_status`` (all
servers, every 0.1 s).

Then the bulk power call, ``POST /api/server_power_bulk {action, all: true}`` (one
request, a streamed line per server), for start (timed, and until all run) and stop;
then the same with the CLI: ``leosuite server start --all`` and ``leosuite server stop
--all`` (one ``server.power_bulk`` call on one WebSocket), as subprocesses, so their
Python start-up counts.

supervisord: the same N programs (``startsecs`` 0 and 1, ``autostart=false``, one log
file each like leosuite), ``startAllProcesses(wait)`` then ``stopAllProcesses(wait)``
over XML-RPC (what ``supervisorctl start all`` / ``stop all`` call, without the
client's own start-up); "create" is supervisord's start-up with the N programs.

Both: daemon RSS once all run, daemon CPU % while all run and nothing happens
(--idle seconds, 120 by default: leosuite samples its servers every minute while
nobody watches, so a shorter window says more about where it falls than about the
daemon), the time of one "status of everything" call, and (unless
--no-shutdown) everything started again and the daemon sent SIGTERM: time until the
daemon has exited (each stops every running program on the way out). The soft
RLIMIT_NOFILE is raised to the hard limit first (children inherit it).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import (
    ADMIN_PASSWORD,
    Leosuite,
    Supervisord,
    bench_session,
    cpu_seconds,
    machine,
    py_spy,
    raise_nofile,
    rss_bytes,
    wait_until,
)
from _scale_report import Result, print_results

from leosuite.client.http import HttpClient, login, save_token

MiB = 1024 * 1024


def in_pool(threads: int, fn: Callable[[str], Any], names: Iterable[str]) -> None:
    names = list(names)
    if threads <= 1:
        for name in names:
            fn(name)
        return
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(fn, names):
            pass


def idle_cpu(pid: int, seconds: float) -> float:
    c0, t0 = cpu_seconds(pid), time.perf_counter()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - c0) / (time.perf_counter() - t0)


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def program_argv(program: str) -> list[str]:
    if program == "sleep":
        return ["sleep", "100000"]
    demo = [sys.executable, "-m", "leosuite.templates.demo_game"]
    return [*demo, "--ready-delay", "0", "--player-interval", "0"]


def power_bulk(url: str, headers: dict[str, str], action: str) -> dict[str, Any]:
    """``/api/server_power_bulk {action, all: true}``: read the streamed lines; the
    summary line (every server answered)."""
    host, port = url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    try:
        body = json.dumps({"action": action, "all": True}).encode()
        conn.request("POST", "/api/server_power_bulk", body, headers)
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"power_bulk {action}: HTTP {response.status}: {response.read()!r}")
        last: dict[str, Any] = {}
        for line in response:
            last = json.loads(line)
        if not last.get("done"):
            raise RuntimeError(f"power_bulk {action}: the answer was cut short")
        return last
    finally:
        conn.close()


class Cli:
    """``leosuite server ...`` as a subprocess, logged in as admin (its own HOME)."""

    def __init__(self, ls: Leosuite, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LEOSUITE_")}
        self.env.pop("XDG_CONFIG_HOME", None)
        self.env["HOME"] = str(root / "cli-home")
        self.env.update(env)  # the daemon's ws.* limits: the CLI paces under them
        client = HttpClient(ls.url)
        login(client, "admin", ADMIN_PASSWORD)
        assert client.token is not None
        save_token(ls.url, "admin", client.token, self.env, ws_url=str(ls.endpoints["ws"]))

    def run(self, *args: str) -> str:
        argv = [sys.executable, "-m", "leosuite", "server", *args]
        done = subprocess.run(
            argv, env=self.env, cwd=self.root, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{argv[3:]} exited {done.returncode}: {done.stderr[-2000:]}")
        return done.stdout


def bench_leosuite(reaper: Any, root: Path, names: list[str], args: argparse.Namespace) -> Result:
    res = Result(f"leosuite ({args.program})")
    env = {"LEOSUITE_WS_REQUEST_RATE": str(args.ws_request_rate)} if args.ws_request_rate else {}
    ls = Leosuite(reaper, root, env)
    api = ls.api

    settings: dict[str, Any]
    if args.program == "sleep":
        kind, settings = "command", {"command": "sleep 100000"}
    else:
        kind, settings = "demo-game", {"ready_delay": 0, "player_interval": 0}

    def create(name: str) -> None:
        api.post("/api/server_create", {"server": name, "type": kind, "settings": settings})

    def create_bulk() -> None:
        for at in range(0, len(names), 1000):
            batch = [{"server": n, "type": kind, "settings": settings} for n in names[at:][:1000]]
            answer = api.post("/api/server_create_bulk", {"servers": batch})
            if answer["ok"] != len(batch):
                raise RuntimeError(f"server_create_bulk: {answer['failed']} not created")

    if args.create == "bulk":
        res.create = timed(create_bulk)
    else:
        res.create = timed(lambda: in_pool(args.threads, create, names))
    print(f"  leosuite: created {len(names)} in {res.create:.1f} s", flush=True)

    def states() -> dict[str, int]:
        counts: dict[str, int] = {}
        for status in ls.status()["servers"].values():
            counts[status["status"]] = counts.get(status["status"], 0) + 1
        return counts

    def wait_all_running(what: str) -> None:
        """Until every server runs; on timeout, say which did not and why."""
        try:
            wait_until(
                lambda: states().get("running", 0) == len(names),
                timeout=args.timeout,
                interval=0.1,
                what=what,
            )
        except TimeoutError as exc:
            servers = ls.status()["servers"]
            stuck = {n: s for n, s in servers.items() if s["status"] != "running"}
            shown = {n: (s["status"], s.get("last_error")) for n, s in list(stuck.items())[:5]}
            raise TimeoutError(f"{exc}: {states()}, for example {shown}") from None

    def start(name: str) -> None:
        api.post("/api/server_start", {"server": name})

    t0 = time.perf_counter()
    in_pool(args.threads, start, names)
    wait_all_running("all leosuite servers running")
    res.all_running = time.perf_counter() - t0
    print(f"  leosuite: all running after {res.all_running:.1f} s", flush=True)
    res.rss_mib = rss_bytes(ls.pid) / MiB
    res.idle_cpu = idle_cpu(ls.pid, args.idle)
    res.rss_mib = max(res.rss_mib, rss_bytes(ls.pid) / MiB)
    res.status_all_ms = min(timed(ls.status) for _ in range(5)) * 1000

    def stop(name: str) -> None:
        api.post("/api/server_stop", {"server": name})

    cpu0 = cpu_seconds(ls.pid)
    res.stop_all = timed(lambda: in_pool(args.threads, stop, names))
    stop_cpu = cpu_seconds(ls.pid) - cpu0
    counts = states()
    if counts.get("stopped", 0) != len(names):
        print(f"  leosuite: after stop: {counts}", flush=True)
    print(
        f"  leosuite: stopped all in {res.stop_all:.2f} s, daemon CPU {stop_cpu:.2f} s", flush=True
    )

    headers = dict(api._headers)  # the bench's login
    t0 = time.perf_counter()
    summary = power_bulk(ls.url, headers, "start")
    res.bulk_start = time.perf_counter() - t0
    wait_all_running("all leosuite servers running (bulk)")
    res.bulk_all_running = time.perf_counter() - t0
    print(f"  leosuite: power_bulk start {res.bulk_start:.2f} s ({summary})", flush=True)
    profile = Path(args.profile_stop) if args.profile_stop else None
    with py_spy(reaper, ls.pid, profile, rate=100):
        cpu0, t0 = cpu_seconds(ls.pid), time.perf_counter()
        summary = power_bulk(ls.url, headers, "stop")
        res.bulk_stop = time.perf_counter() - t0
    res.bulk_stop_cpu = res.stop_all_cpu = cpu_seconds(ls.pid) - cpu0
    print(
        f"  leosuite: power_bulk stop {res.bulk_stop:.2f} s, daemon CPU "
        f"{res.bulk_stop_cpu:.2f} s ({summary})",
        flush=True,
    )

    cli = Cli(ls, root, env)
    t0 = time.perf_counter()
    tail = cli.run("start", "--all").splitlines()[-1]
    res.cli_start = time.perf_counter() - t0
    wait_all_running("all leosuite servers running (CLI)")
    res.cli_all_running = time.perf_counter() - t0
    print(f"  leosuite: `server start --all` {res.cli_start:.2f} s ({tail})", flush=True)
    cpu0, t0 = cpu_seconds(ls.pid), time.perf_counter()
    tail = cli.run("stop", "--all").splitlines()[-1]
    res.cli_stop = time.perf_counter() - t0
    res.cli_stop_cpu = cpu_seconds(ls.pid) - cpu0
    counts = states()
    if counts.get("stopped", 0) != len(names):
        print(f"  leosuite: after stop --all: {counts}", flush=True)
    print(
        f"  leosuite: `server stop --all` {res.cli_stop:.2f} s, daemon CPU "
        f"{res.cli_stop_cpu:.2f} s ({tail})",
        flush=True,
    )
    if args.shutdown:
        in_pool(args.threads, start, names)
        wait_all_running("all leosuite servers running again")
        ls.close_connections()  # an idle keep-alive connection delays shutdown by 30 s
        t0 = time.perf_counter()
        if reaper.stop(ls.proc, args.shutdown_cap):
            res.shutdown = time.perf_counter() - t0
        else:
            res.shutdown = float("inf")
        print(f"  leosuite: daemon shutdown with all running: {res.shutdown:.1f} s", flush=True)
    reaper.stop(ls.proc, 120)
    return res


def bench_supervisord(
    reaper: Any, root: Path, names: list[str], args: argparse.Namespace, startsecs: int
) -> Result:
    res = Result(f"supervisord ({args.program}, startsecs={startsecs})")
    command = shlex.join(program_argv(args.program))
    programs = {
        name: {
            "command": command,
            "autostart": "false",
            "autorestart": "false",
            "startsecs": str(startsecs),
            "redirect_stderr": "true",
            "stopwaitsecs": "10",
        }
        for name in names
    }
    t0 = time.perf_counter()
    sd = Supervisord(reaper, root, programs, minfds=min(4 * len(names) + 256, args.nofile))
    res.create = time.perf_counter() - t0
    rpc = sd.rpc.supervisor

    def states() -> dict[str, int]:
        counts: dict[str, int] = {}
        for info in rpc.getAllProcessInfo():
            counts[info["statename"]] = counts.get(info["statename"], 0) + 1
        return counts

    t0 = time.perf_counter()
    rpc.startAllProcesses(True)  # what `supervisorctl start all` calls, minus its start-up
    res.start_all = time.perf_counter() - t0
    wait_until(
        lambda: states().get("RUNNING", 0) == len(names),
        timeout=args.timeout,
        interval=0.1,
        what="all supervisord programs RUNNING",
    )
    res.all_running = time.perf_counter() - t0
    print(f"  {res.label}: all RUNNING after {res.all_running:.1f} s", flush=True)
    res.rss_mib = rss_bytes(sd.pid) / MiB
    res.idle_cpu = idle_cpu(sd.pid, args.idle)
    res.rss_mib = max(res.rss_mib, rss_bytes(sd.pid) / MiB)
    res.status_all_ms = min(timed(rpc.getAllProcessInfo) for _ in range(5)) * 1000
    cpu0 = cpu_seconds(sd.pid)
    res.stop_all = timed(lambda: rpc.stopAllProcesses(True))
    res.stop_all_cpu = cpu_seconds(sd.pid) - cpu0
    counts = states()
    if counts.get("STOPPED", 0) != len(names):
        print(f"  supervisord: after stop all: {counts}", flush=True)
    print(f"  {res.label}: stopped all in {res.stop_all:.1f} s", flush=True)
    if args.shutdown:
        rpc.startAllProcesses(True)
        wait_until(
            lambda: states().get("RUNNING", 0) == len(names),
            timeout=args.timeout,
            interval=0.1,
            what="all supervisord programs RUNNING again",
        )
        t0 = time.perf_counter()
        if reaper.stop(sd.proc, args.shutdown_cap):
            res.shutdown = time.perf_counter() - t0
        else:
            res.shutdown = float("inf")
        print(f"  {res.label}: shutdown with all running: {res.shutdown:.1f} s", flush=True)
    reaper.stop(sd.proc, 120)
    return res


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--program", choices=["sleep", "demo-game"], default="sleep")
    parser.add_argument("--threads", type=int, default=16, help="client threads (1: sequential)")
    parser.add_argument(
        "--create",
        choices=["bulk", "each"],
        default="bulk",
        help="leosuite: one server_create_bulk per 1000 servers, or one server_create each",
    )
    parser.add_argument(
        "--idle",
        type=float,
        default=120.0,
        help="seconds of idle CPU sampling (120: two of leosuite's unwatched stats passes)",
    )
    parser.add_argument("--startsecs", default="0,1", help="supervisord startsecs values")
    parser.add_argument(
        "--no-shutdown",
        dest="shutdown",
        action="store_false",
        help="skip restarting all and timing the daemon's shutdown (SIGTERM) with all running",
    )
    parser.add_argument(
        "--shutdown-cap",
        type=float,
        default=120.0,
        help="SIGKILL a daemon still shutting down after this many seconds (reported as '>')",
    )
    parser.add_argument(
        "--ws-request-rate",
        type=float,
        metavar="N",
        help="the daemon's (and the CLI's) ws.request_rate (default: the daemon's, 50/s)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="give up on a phase after")
    parser.add_argument("--tmp-dir", help="where data and logs go (default: the system's)")
    parser.add_argument("--no-peer", action="store_true", help="skip supervisord")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--profile-stop",
        metavar="FILE",
        help="py-spy the daemon during the bulk stop (raw collapsed stacks, threads apart)",
    )
    args = parser.parse_args()
    args.nofile = raise_nofile(1 << 20)
    names = [f"s{i:05d}" for i in range(args.servers)]
    mode = "sequential" if args.threads <= 1 else f"{args.threads} client threads"
    print(f"# scale: {args.servers} x {shlex.join(program_argv(args.program))}, {mode}")
    print(f"# {machine()}, RLIMIT_NOFILE {args.nofile}")
    print(f"# data in {args.tmp_dir or tempfile.gettempdir()}")
    results: list[Result] = []
    with bench_session("scale", keep=args.keep, tmp_dir=args.tmp_dir) as (reaper, root):
        (root / "ls").mkdir()
        results.append(bench_leosuite(reaper, root / "ls", names, args))
        if not args.no_peer:
            for startsecs in (int(s) for s in args.startsecs.split(",")):
                (root / f"sd{startsecs}").mkdir()
                results.append(
                    bench_supervisord(reaper, root / f"sd{startsecs}", names, args, startsecs)
                )

    print_results(results, args)


if __name__ == "__main__":
    main()

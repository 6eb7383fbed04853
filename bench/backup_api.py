"""API latency during a backup: ``server_status`` p99 while idle, then while a backup of
a server's directory runs (``server_backup_create`` on another connection).

    .venv/bin/python bench/backup_api.py                 # a 1 GiB server directory
    .venv/bin/python bench/backup_api.py --size-mb 256   # quicker

One daemon (``leosuite serve`` as a child process), one ``command`` server whose
directory is filled like a game server's (bench/backup.py's mix: small files,
compressible logs and worlds, incompressible jars), ``--size-mb`` in all. Then
``--calls`` sequential status calls while idle; then a backup starts in a thread and
status calls are made one after another until it answers (at most ``--max-calls``).
Prints both p99s, their ratio (target: at most 1.5x) and the backup's MB/s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from typing import Any

from _common import Leosuite, bench_session, fmt, machine, percentile, print_table, ratio
from backup import make_server_dir, read_everything

MiB = 1024 * 1024
TARGET = 1.5


def timed(call: Any) -> float:
    t0 = time.perf_counter()
    call()
    return (time.perf_counter() - t0) * 1000


def create_backup(url: str, token: str, server: str, out: dict[str, Any]) -> None:
    """``server_backup_create`` on a connection of its own, without a short timeout."""
    host, port = url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=3600)
    body = json.dumps({"server": server})
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    t0 = time.perf_counter()
    try:
        conn.request("POST", "/api/server_backup_create", body, headers)
        answer = conn.getresponse()
        out["status"] = answer.status
        out["answer"] = json.loads(answer.read())
    finally:
        out["seconds"] = time.perf_counter() - t0
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=1024, help="the server directory's size")
    parser.add_argument("--calls", type=int, default=500, help="status calls while idle")
    parser.add_argument("--max-calls", type=int, default=20000, help="most calls during it")
    parser.add_argument("--tmp-dir", help="where the data directory goes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    print(f"# backup_api: status p99 idle vs during a backup of {args.size_mb} MiB")
    print(f"# {machine()}")
    with bench_session("backup_api", keep=args.keep, tmp_dir=args.tmp_dir) as (reaper, root):
        ls = Leosuite(reaper, root)
        ls.create("game", "sleep 3600")
        folder = ls.data_dir / "servers" / "game"
        files, size = make_server_dir(folder, args.size_mb * MiB)
        read_everything(folder)  # a warm page cache, as for bench/backup.py

        def status() -> Any:
            return ls.api.post("/api/server_status", {"server": "game"})

        for _ in range(20):
            status()
        idle = [timed(status) for _ in range(args.calls)]

        out: dict[str, Any] = {}
        worker = threading.Thread(
            target=create_backup, args=(ls.url, ls.api._headers["Authorization"][7:], "game", out)
        )
        worker.start()
        during: list[float] = []
        while worker.is_alive() and len(during) < args.max_calls:
            during.append(timed(status))
        worker.join()
        if out.get("status") != 200:
            raise SystemExit(f"the backup failed: {out}")
        made = out["answer"]
        p_idle, p_during = percentile(idle, 99), percentile(during, 99)
        print(f"# {files} files, {size / MiB:.0f} MiB; archive {made['size'] / MiB:.0f} MiB")
        print_table(
            ["phase", "calls", "p50 ms", "p99 ms"],
            [
                ["idle", str(len(idle)), fmt(percentile(idle, 50), 2), fmt(p_idle, 2)],
                ["backup", str(len(during)), fmt(percentile(during, 50), 2), fmt(p_during, 2)],
            ],
        )
        print(
            f"p99 during / idle: {ratio(p_during, p_idle)} (target <= {TARGET}x); backup "
            f"{size / MiB / out['seconds']:.0f} MB/s in {out['seconds']:.1f} s"
        )
        ls.api.close()


if __name__ == "__main__":
    main()

"""The store on SQLite and on PostgreSQL: audit appends through ``Database.call`` with the
store's writer task running, one caller at a time and many at once (group commit).

Starts its own PostgreSQL server (Debian's ``postgresql`` package, ``initdb`` and
``pg_ctl`` in a temporary directory, 127.0.0.1 on a free port, fsync on as in
production) and a SQLite file in a temporary directory; prints a Markdown table.

    .venv/bin/python bench/store_backends.py [--calls 2000] [--callers 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from leosuite.store import Database, audit
from leosuite.store.postgres import PostgresDatabase
from tests.helpers.postgres import PostgresServer, find_bin_dir


async def _run(db: Database, calls: int, callers: int, limit: float) -> dict[str, float]:
    batches: list[float] = []
    db.on_batch = batches.append
    latencies: list[float] = []
    deadline = time.perf_counter() + limit

    async def caller(count: int) -> None:
        for _ in range(count):
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            await db.call(
                lambda c: audit.append(c, timestamp=1.0, level="info", topic="bench", message="m")
            )
            latencies.append(time.perf_counter() - started)

    async with trio.open_nursery() as nursery:
        await nursery.start(db.run_writer)
        started = time.perf_counter()
        async with trio.open_nursery() as group:
            for _ in range(callers):
                group.start_soon(caller, calls // callers)
        elapsed = time.perf_counter() - started
        nursery.cancel_scope.cancel()
    latencies.sort()
    return {
        "calls": len(latencies),
        "per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
        "per_batch": len(latencies) / max(1, len(batches)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per phase")
    parser.add_argument("--callers", type=int, default=50, help="callers at once")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds per phase at most")
    args = parser.parse_args()
    bin_dir = find_bin_dir()
    if bin_dir is None:
        sys.exit("no PostgreSQL under /usr/lib/postgresql: apt-get install postgresql")
    server = PostgresServer(bin_dir, durable=True)
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="leosuite-bench-") as tmp:
        try:
            server.start()
            stores = {
                "SQLite": Database.open(Path(tmp) / "leosuite.db"),
                "PostgreSQL": PostgresDatabase.connect(server.new_database()),
            }
            for name, db in stores.items():
                for callers in (1, args.callers):
                    calls = min(args.calls, 500) if callers == 1 else args.calls
                    result = trio.run(_run, db, calls, callers, args.limit)
                    rows.append(
                        f"| {name} | {callers} | {result['calls']:.0f} | {result['per_s']:.0f} "
                        f"| {result['p50_ms']:.2f} | {result['p99_ms']:.2f} "
                        f"| {result['per_batch']:.1f} |"
                    )
                db.close()
        finally:
            server.stop()
    print("| store | callers | calls | calls/s | p50 ms | p99 ms | calls per commit |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

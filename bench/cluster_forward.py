"""What answering for the fleet costs: a console command and a power-free read sent to
the node that runs the server, against the same sent to another node.

Starts its own PostgreSQL server (Debian's ``postgresql`` package, as
``bench/store_backends.py``) and two ``leosuite serve`` nodes on it (the test suite's
``tests/helpers/cluster.py``), creates a demo-game server on node b through node a and
starts it. Then, one request at a time, ``--requests`` of each:

* ``server_cmd`` on b (local) and on a (forwarded to b over HTTP);
* ``server_console_token`` on a, then ``server_log`` with that token on b (the way a
  client of a reads b's console), against ``server_log`` with an access token on b.

Prints the median and p95 latency of each (milliseconds, one client, loopback).

    flock /tmp/bench.lock .venv/bin/python bench/cluster_forward.py [--requests 300]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import fmt, percentile, print_table

from tests.helpers.cluster import cluster
from tests.helpers.http import Api
from tests.helpers.postgres import PostgresServer, find_bin_dir
from tests.helpers.servers import FAST_DEMO

PASSWORD = "bench-user-pw-1"


async def timed(count: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        latencies.append(1000 * (time.perf_counter() - started))
    return latencies


async def run(url: str, root: Path, requests: int) -> list[list[str]]:
    async with cluster(root, url, "node-a", "node-b") as (a, b):
        async with a.admin() as admin:
            body = {"username": "olga", "password": PASSWORD, "flags": "HOST"}
            assert (await admin.post("/accounts/", json=body)).status_code == 201
        async with a.api("olga", PASSWORD) as on_a, b.api("olga", PASSWORD) as on_b:
            create = {
                "server": "game",
                "type": "demo-game",
                "settings": FAST_DEMO,
                "node": "node-b",
            }
            await on_a.ok("server_create", create)
            while (await on_a.post("server_start", {"server": "game"})).status_code == 404:
                await trio.sleep(0.1)  # until b has taken the new server
            await on_b.wait_status("game", "running")
            command = {"server": "game", "command": "say bench"}
            log = {"server": "game", "readIndex": 0, "max": 1024}

            async def token_read(minting: Api, reading: Api) -> None:
                token = (await minting.ok("server_console_token", {"server": "game"}))["token"]
                answer = await reading.client.post(
                    "/api/server_log", json={**log, "console_token": token}
                )
                assert answer.status_code == 200, answer.text

            cases = [
                ("server_cmd on b (its node)", lambda: on_b.ok("server_cmd", command)),
                ("server_cmd on a (forwarded to b)", lambda: on_a.ok("server_cmd", command)),
                ("server_log on b, access token", lambda: on_b.ok("server_log", log)),
                ("token from a + server_log on b", lambda: token_read(on_a, on_b)),
            ]
            rows = []
            for label, call in cases:
                await timed(min(20, requests), call)  # warm up
                latencies = await timed(requests, call)
                rows.append(
                    [label, fmt(percentile(latencies, 50), 2), fmt(percentile(latencies, 95), 2)]
                )
            return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    bin_dir = find_bin_dir()
    if bin_dir is None:
        sys.exit("no PostgreSQL under /usr/lib/postgresql: apt-get install postgresql")
    server = PostgresServer(bin_dir)
    with tempfile.TemporaryDirectory(prefix="leosuite-bench-") as tmp:
        try:
            server.start()
            rows = trio.run(run, server.new_database(), Path(tmp), args.requests)
        finally:
            server.stop()
    print_table(["request (one client, loopback)", "median ms", "p95 ms"], rows)


if __name__ == "__main__":
    main()

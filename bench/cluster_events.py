"""How long a ban or a logout made on one node takes to act on another node.

Starts its own PostgreSQL server (Debian's ``postgresql`` package, as
``bench/store_backends.py``) and two real daemons on it (``leosuite serve``, each with
its own data directory, as ``tests/helpers/cluster.py`` starts them). Per repetition:

* **ban**: a WebSocket client of node b connected from 127.0.0.2 (Linux routes all of
  127.0.0.0/8 to lo); the admin API of node a bans 127.0.0.2; measured from the
  request sent to a until b closes the open WebSocket (1008), and until b refuses a
  new HTTP request from that address (polled over one keep-alive connection, so the
  figure includes up to one request's time); then the ban is removed on a and the
  time until b lets the address in again is measured the same way;
* **logout**: a token made on a, a WebSocket session of b authenticated with it; a
  logs the token out; measured from the request sent to a until b pushes
  ``session_closed`` on that session.

Every figure is one clock (this process) and includes node a's own handling of the
request. Median, p95 and max over ``--reps`` repetitions.

    flock /tmp/bench.lock .venv/bin/python bench/cluster_events.py [--reps 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import fmt, percentile, print_table

from tests.helpers.cluster import ADMIN_PASSWORD, ClusterNode, cluster
from tests.helpers.daemon import login
from tests.helpers.postgres import PostgresServer, find_bin_dir
from tests.helpers.ws import RawClient

BANNED = "127.0.0.2"


async def _until(check: Callable[[], Awaitable[bool]]) -> float:
    while not await check():
        await trio.sleep(0)
    return trio.current_time()


async def ban_once(a: ClusterNode, b: ClusterNode, times: dict[str, list[float]]) -> None:
    transport = httpx.AsyncHTTPTransport(local_address=BANNED)
    async with (
        httpx.AsyncClient(base_url=b.http_url, timeout=10, transport=transport) as banned,
        a.admin() as admin,
        RawClient.open(b.ws_url + "/", source=BANNED) as conn,
    ):
        await conn.send("get_leosac_version", None, "v")
        while not conn.count():
            assert await conn.read_some()
        assert (await banned.get("/api/health")).status_code == 200

        async def refused() -> bool:
            return (await banned.get("/api/health")).status_code == 403

        async def closed() -> bool:
            return conn.close_code() is not None or not await conn.read_some()

        start = trio.current_time()
        async with trio.open_nursery() as nursery:

            async def watch(name: str, check: Callable[[], Awaitable[bool]]) -> None:
                times[name].append(await _until(check) - start)

            nursery.start_soon(watch, "ban: open WebSocket on b closed", closed)
            nursery.start_soon(watch, "ban: new request to b refused", refused)
            added = await admin.post("/banlist/", json={"ip": BANNED})
            assert added.status_code == 200, added.text
            times["ban: node a answered (for reference)"].append(trio.current_time() - start)
        assert conn.close_code() == 1008
        start = trio.current_time()
        removed = await admin.delete(f"/banlist/{added.json()['id']}/")
        assert removed.status_code == 200, removed.text

        async def admitted() -> bool:
            return (await banned.get("/api/health")).status_code == 200

        times["unban: request to b admitted"].append(await _until(admitted) - start)


async def logout_once(a: ClusterNode, b: ClusterNode, times: dict[str, list[float]]) -> None:
    async with a.http() as client_a, b.ws(log_in=False) as on_b:
        token = await login(client_a, "admin", ADMIN_PASSWORD)
        answer = await on_b.ok("authenticate_with_token", {"token": token})
        assert answer["status"] == 0, answer
        start = trio.current_time()
        response = await client_a.post("/api/auth/logout", json={"token": token})
        assert response.status_code == 204, response.text
        times["logout: node a answered (for reference)"].append(trio.current_time() - start)
        await on_b.next_push("session_closed")
        times["logout: session on b closed"].append(trio.current_time() - start)


async def run(url: str, root: Path, reps: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {
        "ban: node a answered (for reference)": [],
        "ban: open WebSocket on b closed": [],
        "ban: new request to b refused": [],
        "unban: request to b admitted": [],
        "logout: node a answered (for reference)": [],
        "logout: session on b closed": [],
    }
    async with cluster(root, url, "bench-a", "bench-b") as (a, b):
        for _ in range(reps):
            with trio.fail_after(30):
                await ban_once(a, b, times)
                await logout_once(a, b, times)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20, help="repetitions of each event")
    args = parser.parse_args()
    bin_dir = find_bin_dir()
    if bin_dir is None:
        sys.exit("no PostgreSQL under /usr/lib/postgresql: apt-get install postgresql")
    server = PostgresServer(bin_dir, durable=True)
    with tempfile.TemporaryDirectory(prefix="leosuite-bench-") as tmp:
        try:
            server.start()
            times = trio.run(run, server.new_database(), Path(tmp), args.reps)
        finally:
            server.stop()
    rows = [
        [
            name,
            fmt(len(values)),
            fmt(percentile(values, 50) * 1000),
            fmt(percentile(values, 95) * 1000),
            fmt(max(values, default=float("nan")) * 1000),
        ]
        for name, values in times.items()
    ]
    print_table(["from a request to node a, until", "reps", "median ms", "p95 ms", "max ms"], rows)


if __name__ == "__main__":
    main()

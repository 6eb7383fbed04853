"""A node that hangs (stopped, swapping, its host frozen) while an operation is
forwarded to it: the kernel still takes the connection and the request, and no answer
comes. The forwarding node answers 503 ``node_unreachable`` once the hung node's
heartbeat is overdue, instead of holding its own client for the hour a start may take."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import trio

from tests.helpers.cluster import FAST_NODE, cluster
from tests.helpers.http import assert_error
from tests.helpers.servers import FAST_DEMO


async def test_an_operation_forwarded_to_a_hung_node_ends_when_it_stops_heartbeating(
    tmp_path: Path, cluster_store_url: str
) -> None:
    async with cluster(tmp_path, cluster_store_url, "node-a", "node-b") as (a, b):
        with trio.fail_after(120):
            async with a.api() as on_a:
                create = {"server": "far", "type": "demo-game", "settings": FAST_DEMO}
                await on_a.ok("server_create", {**create, "node": "node-b"})
                os.kill(b.pid, signal.SIGSTOP)
                try:
                    with trio.fail_after(FAST_NODE["heartbeat_timeout"] * 4 + 20):
                        refused = await on_a.post("server_start", {"server": "far"})
                finally:
                    os.kill(b.pid, signal.SIGCONT)
                assert assert_error(refused, 503)["error_type"] == "node_unreachable"
                # Node a still answers its other clients meanwhile and after.
                assert (await on_a.ok("server_status", {"server": "far"}))["node"] == "node-b"

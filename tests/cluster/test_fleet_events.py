"""``events.subscribe`` on one node pushes the state changes of the servers another
node runs (as that node writes them, and ``unreachable`` when it stops heartbeating),
to the accounts that may see those servers only: a dashboard on node A shows a server
of node B start and its node go away without reloading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from tests.helpers.cluster import cluster
from tests.helpers.servers import FAST_DEMO
from tests.helpers.ws import WsClient

from .test_two_nodes import PATIENCE, wait_for


async def state_to(ws: WsClient, server: str, new: str) -> dict[str, Any]:
    """The first state event of ``server`` that reaches ``new``."""
    while True:
        event = (await ws.next_push("event"))["content"]
        if event.get("kind") == "state" and event["server"] == server and event["new"] == new:
            return event


async def test_state_changes_of_another_nodes_server_reach_a_subscriber(
    tmp_path: Path, cluster_store_url: str
) -> None:
    async with cluster(tmp_path, cluster_store_url, "node-a", "node-b") as (a, b):
        with trio.fail_after(PATIENCE):
            async with a.admin() as admin:
                for username in ("host1", "other"):
                    body = {"username": username, "password": "secret-pw-1", "flags": "HOST"}
                    response = await admin.post("/accounts/", json=body)
                    assert response.status_code == 201, response.text
            async with a.api("host1", "secret-pw-1") as host:
                create = {"server": "far", "type": "demo-game", "settings": FAST_DEMO}
                await host.ok("server_create", {**create, "node": "node-b"})
            async with b.api("host1", "secret-pw-1") as on_b:
                await wait_for(on_b, "far", status="stopped")

            async with (
                a.ws("host1", "secret-pw-1") as owner,
                a.ws("other", "secret-pw-1") as other,
            ):
                for ws in (owner, other):
                    await ws.ok("events.subscribe", {})
                await owner.ok("server.start", {"server": "far"})  # forwarded to node-b
                running = await state_to(owner, "far", "running")
                assert running["node"] == "node-b"
                assert "stop" in running["actions"]
                assert isinstance(running["timestamp"], float)

                await b.kill()  # kill -9: node-b stops heartbeating
                gone = await state_to(owner, "far", "unreachable")
                assert (gone["old"], gone["actions"]) == ("running", [])

                # The account that may not see the server heard nothing of it.
                await other.ok("server.list", {})  # its pushes so far are read with this
                assert not any(p["content"].get("server") == "far" for p in other.pushes)

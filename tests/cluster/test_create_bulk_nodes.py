"""``server_create_bulk`` in a fleet: the batch goes to the node it names (taken on
there), the account's quota counts its servers on every node, and a node no one has is
refused before anything is created."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.helpers.cluster import cluster
from tests.helpers.servers import FAST_DEMO

from .test_two_nodes import PATIENCE, wait_for


def _batch(*names: str, node: str | None = None) -> dict[str, object]:
    servers = [{"server": n, "type": "demo-game", "settings": FAST_DEMO} for n in names]
    return {"servers": servers, **({"node": node} if node is not None else {})}


async def test_a_batch_for_another_node_and_the_quota_across_nodes(
    tmp_path: Path, cluster_store_url: str
) -> None:
    quota = {"max_per_account": 2}
    async with cluster(tmp_path, cluster_store_url, "node-a", "node-b", servers=quota) as (a, b):
        with trio.fail_after(PATIENCE):
            async with a.admin() as admin:
                body = {"username": "host1", "password": "secret-pw-1", "flags": "HOST"}
                assert (await admin.post("/accounts/", json=body)).status_code == 201
            async with a.api("host1", "secret-pw-1") as host:
                unknown = await host.error("server_create_bulk", _batch("x", node="node-z"), 400)
                assert unknown["error_type"] == "invalid"
                answer = await host.ok("server_create_bulk", _batch("b1", "b2", node="node-b"))
                assert answer["ok"] == 2
                for name in ("b1", "b2"):
                    assert (await host.status(name))["node"] == "node-b"
                assert not (a.data_dir / "servers" / "b1").exists()
                # Two servers on node b are the account's whole quota here too.
                refused = await host.error("server_create_bulk", _batch("a1"), 403)
                assert "servers.max_per_account" in refused["error_message"]
                await host.error("server_create", {"server": "a1", "type": "demo-game",
                                                   "settings": FAST_DEMO}, 403)  # fmt: skip
            async with b.api("host1", "secret-pw-1") as on_b:
                for name in ("b1", "b2"):
                    await wait_for(on_b, name, node="node-b", status="stopped")
                await on_b.ok("server_start", {"server": "b1"})
                await wait_for(on_b, "b1", status="running")
            assert (b.data_dir / "servers" / "b2").is_dir()

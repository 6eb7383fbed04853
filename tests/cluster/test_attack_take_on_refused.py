"""A server created through one node for another that cannot take it on (its own copy
of the server's type needs a setting the first node's never asked for) must not keep
that node from taking on the servers created for it after."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.helpers.cluster import cluster
from tests.helpers.servers import FAST_DEMO

from .test_two_nodes import PATIENCE, wait_for

TYPE_ON_A = """description = "sleeps"
command = ["sleep", "{seconds}"]

[[variables]]
name = "seconds"
label = "Seconds"
type = "int"
default = 5
"""
#: Node b's copy of the type needs a setting node a's never asked for.
TYPE_ON_B = (
    TYPE_ON_A.replace('"{seconds}"]', '"{seconds}", "{more}"]')
    + """
[[variables]]
name = "more"
label = "More seconds"
type = "int"
required = true
"""
)


async def test_a_server_a_node_refuses_does_not_stop_it_taking_on_the_next(
    tmp_path: Path, cluster_store_url: str
) -> None:
    for node, text in (("node-a", TYPE_ON_A), ("node-b", TYPE_ON_B)):
        templates = tmp_path / node / "data" / "templates"
        templates.mkdir(parents=True)
        (templates / "sleeper.toml").write_text(text)
    async with cluster(tmp_path, cluster_store_url, "node-a", "node-b") as (a, b):
        with trio.fail_after(PATIENCE):
            async with a.api() as on_a:
                refused = {"server": "a-refused", "type": "sleeper", "node": "node-b",
                           "settings": {"seconds": 50}}  # fmt: skip
                await on_a.ok("server_create", refused)
                demo = {"server": "b-taken", "type": "demo-game", "settings": FAST_DEMO}
                await on_a.ok("server_create", {**demo, "node": "node-b"})
            async with b.api() as on_b:
                await wait_for(on_b, "b-taken", node="node-b", status="stopped")
                await on_b.ok("server_start", {"server": "b-taken"})
                await wait_for(on_b, "b-taken", status="running")
            assert "server a-refused: created for this node elsewhere, not taken on" in b.stderr

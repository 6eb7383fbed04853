"""``server_settings`` and ``server_install`` for a server another node runs, asked on
any node: read, changed and run by the node that runs it (which checks the account's
rights itself), its answer or error relayed, 503 when that node is gone; and its
sharing, which lives in the store, done on any node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from tests.api.test_power_bulk import bulk
from tests.helpers.cluster import ClusterNode, cluster
from tests.helpers.http import assert_error
from tests.helpers.servers import FAST_DEMO

from .test_forwarding import PASSWORD, add_user
from .test_two_nodes import PATIENCE, wait_for


def value_of(view: list[dict[str, Any]], name: str) -> Any:
    (found,) = [entry for entry in view if entry["name"] == name]
    return found["value"]


@asynccontextmanager
async def game_on_b(tmp_path: Path, store_url: str) -> AsyncIterator[tuple[ClusterNode, ...]]:
    """Two nodes, accounts olga (HOST) and hope, and olga's server ``game`` on node-b,
    created through node-a and taken on by node-b."""
    async with cluster(tmp_path, store_url, "node-a", "node-b") as (a, b):
        with trio.fail_after(PATIENCE):
            await add_user(a, "olga", "HOST")
            await add_user(a, "hope")
            async with a.api("olga", PASSWORD) as olga_a, b.api("olga", PASSWORD) as olga_b:
                create = {"server": "game", "type": "demo-game", "settings": FAST_DEMO}
                await olga_a.ok("server_create", {**create, "node": "node-b"})
                await wait_for(olga_b, "game", status="stopped")
        yield a, b


async def test_settings_of_a_server_on_b_through_a(tmp_path: Path, cluster_store_url: str) -> None:
    async with game_on_b(tmp_path, cluster_store_url) as (a, b):
        with trio.fail_after(PATIENCE):
            async with a.api("olga", PASSWORD) as olga_a, b.api("olga", PASSWORD) as olga_b:
                read = await olga_a.ok("server_settings", {"server": "game"})
                assert read == await olga_b.ok("server_settings", {"server": "game"})
                assert value_of(read, "player_interval") == 0

                change = {"server": "game", "set": {"player_interval": 7}}
                changed = await olga_a.ok("server_settings", change)
                assert value_of(changed, "player_interval") == 7
                on_b = await olga_b.ok("server_settings", {"server": "game"})
                assert value_of(on_b, "player_interval") == 7
                # WebSocket, the same path.
                async with a.ws("olga", PASSWORD) as ws:
                    via_ws = await ws.ok("server.settings", {"server": "game"})
                    assert value_of(via_ws, "player_interval") == 7

                # Node b's refusals come back as they are.
                bad = {"server": "game", "set": {"player_interval": "many"}}
                refused = assert_error(await olga_a.post("server_settings", bad), 400)
                assert refused["error_message"] == "Player interval must be a number"
                unknown = {"server": "game", "set": {"no_such_setting": 1}}
                assert_error(await olga_a.post("server_settings", unknown), 400)

            async with a.api("hope", PASSWORD) as hope_a, b.api("hope", PASSWORD) as hope_b:
                # Not shared: the server does not exist for it; shared (through node a:
                # grants live in the store) without the right: refused by node b.
                assert_error(await hope_a.post("server_settings", {"server": "game"}), 404)
                async with a.api("olga", PASSWORD) as olga_a:
                    share = {"server": "game", "account": "hope", "rights": ["console"]}
                    await olga_a.ok("server_share_set", share)
                    listed = await olga_a.ok("server_share_list", {"server": "game"})
                    assert [s["account"] for s in listed["shares"]] == ["hope"]
                    # A grantee does not share it on: 403, as on its own node.
                denied = await hope_a.post("server_settings", {"server": "game"})
                assert assert_error(denied, 403)["error_type"] == "permission_denied"
                again = {"server": "game", "account": "olga", "rights": ["console"]}
                assert_error(await hope_a.post("server_share_set", again), 403)
                # Node b honours the grant made on node a.
                while (await hope_b.post("server_status", {"server": "game"})).status_code != 200:
                    await trio.sleep(0.05)

            async with b.admin() as admin_b:
                entries = (await admin_b.get("/log/", params={"session": "game"})).text
            assert "settings changed: player_interval (through node node-a)" in entries

            await b.kill()
            async with a.api("olga", PASSWORD) as olga_a:
                gone = await olga_a.post("server_settings", {"server": "game"})
                assert assert_error(gone, 503)["error_type"] == "node_unreachable"
            assert "Traceback" not in a.stderr


MAKER = """
description = "makes a file at install"
admin_only = true
command = ["{python}", "-c", "import sys; sys.stdin.read()"]
stop_timeout = 2.0

[[install]]
run = ["{python}", "-c", "open('made.txt', 'w').write('made')"]
timeout = 60
"""


async def test_install_of_a_server_on_b_through_a(tmp_path: Path, cluster_store_url: str) -> None:
    for node in ("node-a", "node-b"):
        templates = tmp_path / node / "data" / "templates"
        templates.mkdir(parents=True)
        (templates / "maker.toml").write_text(MAKER)
    async with cluster(tmp_path, cluster_store_url, "node-a", "node-b") as (a, b):
        with trio.fail_after(PATIENCE):
            await add_user(a, "hope")
            async with a.api() as admin_a, b.api() as admin_b:
                create = {"server": "made", "type": "maker", "settings": {}, "node": "node-b"}
                await admin_a.ok("server_create", create)
                await wait_for(admin_b, "made", status="stopped")
                answer = await admin_a.ok("server_install", {"server": "made"})
                assert answer["installed"] is True, answer
                made = tmp_path / "node-b" / "data" / "servers" / "made" / "made.txt"
                assert made.read_text() == "made"
                assert not (tmp_path / "node-a" / "data" / "servers" / "made").exists()
                share = {"server": "made", "account": "hope", "rights": ["console"]}
                await admin_a.ok("server_share_set", share)
            async with a.api("hope", PASSWORD) as hope_a:
                denied = await hope_a.post("server_install", {"server": "made"})
                assert assert_error(denied, 403)["error_type"] == "permission_denied"


#: Calls only the node that runs a server answers (its files, schedules, backups, log
#: files and live figures are there), with a body each would take.
ONLY_THERE = {
    "server_files_list": {"server": "game", "path": ""},
    "server_schedule_list": {"server": "game"},
    "server_backup_list": {"server": "game"},
    "server_logfile": {"server": "game"},
    "server_stats_history": {"server": "game"},
}


async def test_what_only_the_servers_node_does_is_refused_elsewhere_naming_it(
    tmp_path: Path, cluster_store_url: str
) -> None:
    async with game_on_b(tmp_path, cluster_store_url) as (a, b):
        with trio.fail_after(PATIENCE):
            async with a.api("olga", PASSWORD) as olga_a, b.api("olga", PASSWORD) as olga_b:
                for path, body in ONLY_THERE.items():
                    refused = assert_error(await olga_a.post(path, body), 409)
                    message = refused["error_message"]
                    assert "runs on node node-b" in message, (path, message)
                    assert b.http_url.rstrip("/") in message, (path, message)
                    there = await olga_b.post(path, body)
                    assert there.status_code == 200, (path, there.text)
            async with a.api("hope", PASSWORD) as hope_a:
                for path, body in ONLY_THERE.items():  # it does not see the server
                    refused = assert_error(await hope_a.post(path, body), 404)
                    assert "node-b" not in refused["error_message"]


async def test_a_bulk_power_action_names_servers_of_both_nodes(
    tmp_path: Path, cluster_store_url: str
) -> None:
    async with cluster(tmp_path, cluster_store_url, "node-a", "node-b") as (a, b):
        with trio.fail_after(PATIENCE):
            await add_user(a, "olga", "HOST")
            async with a.api("olga", PASSWORD) as olga_a, b.api("olga", PASSWORD) as olga_b:
                create = {"type": "demo-game", "settings": FAST_DEMO}
                await olga_a.ok("server_create", {**create, "server": "here"})
                for name in ("far1", "far2"):
                    await olga_a.ok("server_create", {**create, "server": name, "node": "node-b"})
                    await wait_for(olga_b, name, status="stopped")
                body = {"action": "start", "servers": ["here", "far1", "far2", "nowhere"]}
                lines = await bulk(olga_a, body)
                found = {line["server"]: line for line in lines}
                assert found["nowhere"]["error_type"] == "not_found"
                for name in ("here", "far1", "far2"):
                    assert found[name].get("status") in ("starting", "running"), found
                for name in ("far1", "far2"):
                    await wait_for(olga_b, name, status="running")
                # all: this node's servers only.
                lines = await bulk(olga_a, {"action": "stop", "all": True})
                assert [line["server"] for line in lines] == ["here"]
                assert (await olga_b.status("far1"))["status"] == "running"
            async with b.admin() as admin_b:
                entries = (await admin_b.get("/log/", params={"session": "far1"})).text
            assert "(through node node-a)" in entries

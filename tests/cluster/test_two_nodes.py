"""Two daemons on one PostgreSQL store, each a real ``leosuite serve`` process with a
data directory of its own: what one node writes the other sees, a server belongs to
the node chosen at create, and a node that stops heartbeating is shown unreachable
until it comes back with its servers re-adopted."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import trio

from tests.helpers.cli import Cli
from tests.helpers.cluster import ADMIN_PASSWORD, FAST_NODE, cluster, processes_under
from tests.helpers.http import Api
from tests.helpers.servers import FAST_DEMO, command_settings, pid_alive

#: Generous bounds: the machine is shared, and each wait ends as soon as it is met.
PATIENCE = 60


async def wait_for(api: Api, server: str, **expected: Any) -> dict[str, Any]:
    """Poll ``server_status`` until every field in ``expected`` has its value (a server
    created for this node through another is not found here until it is taken on)."""
    while True:
        answer = await api.post("server_status", {"server": server})
        if answer.status_code != 404:
            assert answer.status_code == 200, answer.text
            status: dict[str, Any] = answer.json()
            if all(status.get(key) == value for key, value in expected.items()):
                return status
        await trio.sleep(0.05)


def cwd_of(pid: int) -> Path:
    return Path(os.readlink(f"/proc/{pid}/cwd"))


async def test_an_account_created_on_a_logs_in_on_b(tmp_path: Path, cluster_store_url: str) -> None:
    async with cluster(tmp_path, cluster_store_url, "node-a", "node-b") as (a, b):
        with trio.fail_after(PATIENCE):
            async with a.admin() as admin:
                response = await admin.post(
                    "/accounts/", json={"username": "carol", "password": "carol-secret-1"}
                )
                assert response.status_code == 201, response.text
            async with b.api("carol", "carol-secret-1") as api:
                assert (await api.ok("server_list"))["servers"] == []


async def test_a_server_created_through_a_for_b_runs_on_b_and_survives_b_crashing(
    tmp_path: Path, cluster_store_url: str
) -> None:
    async with cluster(tmp_path, cluster_store_url, "node-a", "node-b") as (a, b):
        with trio.fail_after(PATIENCE):
            async with a.api() as on_a:
                answer = await on_a.ok(
                    "server_create",
                    {
                        "server": "far",
                        "type": "command",
                        "settings": command_settings("echo"),
                        "node": "node-b",
                    },
                )
                assert answer == {"server": "far", "readIndex": 0}
                # A answers for it at once, from the store: stopped on node-b.
                status = await on_a.status("far")
                assert status["node"] == "node-b"
                assert status["status"] == "stopped"
                assert "far" in (await on_a.ok("server_list"))["servers"]
            # A made nothing of it: its files are on B only.
            assert not (a.data_dir / "servers" / "far").exists()
            async with b.api() as on_b:
                await wait_for(on_b, "far", node="node-b", status="stopped")
                assert (b.data_dir / "servers" / "far").is_dir()
                await on_b.ok("server_start", {"server": "far"})
                running = await wait_for(on_b, "far", status="running")
            pid = running["pid"]
            assert cwd_of(pid) == (b.data_dir / "servers" / "far").resolve()
            assert pid in processes_under([b.data_dir])
            async with a.api() as on_a:
                seen = await wait_for(on_a, "far", status="running")
                assert seen["last_status"] == "running"
                assert seen["pid"] is None  # only node-b knows its process
                assert "stop" in seen["actions"]
                listed = (await on_a.ok("server_status"))["servers"]
                assert listed["far"]["node"] == "node-b"

        # B crashes: its server runs on, A shows it unreachable with its last state.
        await b.kill()
        assert pid_alive(pid)
        with trio.fail_after(FAST_NODE["heartbeat_timeout"] * 4 + PATIENCE):
            async with a.api() as on_a:
                gone = await wait_for(on_a, "far", status="unreachable")
                assert gone["last_status"] == "running"
                assert gone["actions"] == []
                async with a.admin() as admin:
                    nodes = {n["name"]: n for n in (await admin.get("/nodes/")).json()}
                assert nodes["node-b"]["state"] == "unreachable"
                assert nodes["node-a"]["state"] == "up"
                assert nodes["node-a"]["this"] is True
        # A never starts it itself: nothing of it runs in A's data directory.
        assert not (a.data_dir / "servers" / "far").exists()

        # B comes back and re-adopts the process that ran on.
        with trio.fail_after(PATIENCE):
            await b.start()
            async with b.api() as on_b:
                again = await wait_for(on_b, "far", status="running")
                assert again["pid"] == pid
            async with a.api() as on_a:
                back = await wait_for(on_a, "far", status="running")
                assert back["node"] == "node-b"
            async with a.admin() as admin:
                nodes = {n["name"]: n for n in (await admin.get("/nodes/")).json()}
            assert nodes["node-b"]["state"] == "up"
            assert nodes["node-b"]["servers"] == 1


async def test_a_stopped_node_is_unreachable_at_once(
    tmp_path: Path, cluster_store_url: str
) -> None:
    # A long timeout: only the node's own word that it stops can show it so soon.
    slow = {"heartbeat_interval": 0.2, "heartbeat_timeout": 600.0}
    async with cluster(tmp_path, cluster_store_url, "node-a", "node-b", node=slow) as (a, b):
        with trio.fail_after(PATIENCE):
            await b.stop()
            async with a.admin() as admin:
                while True:
                    nodes = {n["name"]: n for n in (await admin.get("/nodes/")).json()}
                    if nodes["node-b"]["state"] == "unreachable":
                        break
                    await trio.sleep(0.05)


async def test_the_fleet_as_each_account_sees_it(tmp_path: Path, cluster_store_url: str) -> None:
    async with cluster(tmp_path, cluster_store_url, "node-a", "node-b") as (a, b):
        with trio.fail_after(PATIENCE):
            async with a.admin() as admin:
                for username, flags in (("host1", "HOST"), ("other", "")):
                    body = {"username": username, "password": "secret-pw-1", "flags": flags}
                    response = await admin.post("/accounts/", json=body)
                    assert response.status_code == 201, response.text
            demo = {"server": "hosted", "type": "demo-game", "settings": FAST_DEMO}
            async with a.api("host1", "secret-pw-1") as host:
                await host.ok("server_create", {**demo, "node": "node-b"})
                assert (await host.ok("server_list"))["servers"] == ["hosted"]
                assert (await host.status("hosted"))["node"] == "node-b"
                # Only its node can destroy it (its files are there).
                refusal = await host.error("server_destroy", {"server": "hosted"}, 409)
                assert "node-b" in refusal["error_message"]
            async with a.api("other", "secret-pw-1") as other:
                assert (await other.ok("server_list"))["servers"] == []
                assert (await other.ok("server_status"))["servers"] == {}
                for path in ("server_status", "server_destroy"):
                    refusal = await other.error(path, {"server": "hosted"}, 404)
                    assert refusal["error_type"] == "not_found"
                    assert "node-b" not in refusal["error_message"]
            async with a.api() as admin_api:
                listing = await admin_api.ok("server_list")
                assert listing["owners"] == {"hosted": "host1"}
            async with a.ws() as ws:
                assert (await ws.ok("server.list"))["servers"] == ["hosted"]
                status = await ws.ok("server.status", {"server": "hosted"})
                assert status["node"] == "node-b"
            # The server is node-b's: created there by node-b, and destroyed there.
            async with b.api("host1", "secret-pw-1") as on_b:
                await wait_for(on_b, "hosted", node="node-b", status="stopped")
                await on_b.ok("server_destroy", {"server": "hosted"})
            async with a.api("host1", "secret-pw-1") as host:
                while (await host.ok("server_list"))["servers"]:
                    await trio.sleep(0.05)

            # The command line: node list for an ADMIN only, create with --node.
            cli = Cli(tmp_path / "home")
            await cli.run(
                "login", "--url", a.http_url, "--admin-url", a.admin_url, "-u", "admin",
                "--password-stdin", stdin=ADMIN_PASSWORD.encode(),
            )  # fmt: skip
            nodes = await cli.json("node", "list")
            assert [n["name"] for n in nodes] == ["node-a", "node-b"]
            assert [n["state"] for n in nodes] == ["up", "up"]
            text = (await cli.run("node", "list")).stdout.decode()
            assert "node-b" in text
            assert "(this node)" in text
            made = await cli.run(
                "server", "create", "by-cli", "-t", "demo-game", "--node", "node-b"
            )
            assert b"created by-cli on node node-b" in made.stdout
            refused = await cli.run(
                "server", "create", "by-cli2", "-t", "demo-game", "--node", "../b", expect=1
            )
            assert b"node" in refused.stderr
            async with b.api() as on_b:
                await wait_for(on_b, "by-cli", node="node-b")
            hosted = Cli(tmp_path / "home-host")
            await hosted.run(
                "login", "--url", a.http_url, "--admin-url", a.admin_url, "-u", "host1",
                "--password-stdin", stdin=b"secret-pw-1",
            )  # fmt: skip
            denied = await hosted.run("node", "list", expect=1)
            assert b"administrator" in denied.stderr or b"ADMIN" in denied.stderr


async def test_a_server_created_for_a_stopped_node_is_taken_on_when_it_starts(
    tmp_path: Path, cluster_store_url: str
) -> None:
    async with cluster(tmp_path, cluster_store_url, "node-a", "node-b") as (a, b):
        with trio.fail_after(PATIENCE):
            await b.stop()
            async with a.api() as on_a:
                demo = {"server": "later", "type": "demo-game", "settings": FAST_DEMO}
                await on_a.ok("server_create", {**demo, "node": "node-b"})
                status = await on_a.status("later")
                assert status["status"] == "unreachable"  # its node is away
                assert status["last_status"] == "stopped"
            assert not (b.data_dir / "servers" / "later").exists()
            await b.start()
            assert (b.data_dir / "servers" / "later").is_dir()
            async with b.api() as on_b:
                await on_b.ok("server_start", {"server": "later"})
                await wait_for(on_b, "later", status="running")
            async with a.api() as on_a:
                await wait_for(on_a, "later", status="running", node="node-b")

"""The nodes on one daemon's listeners: ``/api/node_list`` and the admin API's
``/nodes`` (ADMIN only, behind the listeners' own Host and Origin checks), the
``leosuite_node_*`` series of ``/metrics``, and the ``node`` a server is created on
(this one by default; a name no node has, or no node name at all, is invalid input)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, make_settings, running_daemon
from tests.helpers.http import api_client, assert_admin_error, assert_error
from tests.helpers.security import port_of
from tests.helpers.servers import FAST_DEMO
from tests.helpers.ws import ws_client

NODE_FIELDS = {
    "name", "public_url", "ws_url", "state", "this", "started_at", "heartbeat_at",
    "heartbeat_age", "version", "servers",
}  # fmt: skip

HOSTILE_NODES: list[Any] = [
    "../node", "Node", "-node", ".node", "a" * 65, "node\n", "node\x00", "nödé", "a b",
    "node/x", 7, ["node"], {"name": "node"},
]  # fmt: skip


def admin_client(
    daemon: RunningDaemon, username: str = "admin", password: str = ADMIN_PASSWORD
) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=daemon.endpoints.admin, auth=(username, password), timeout=10)


async def test_node_list_shows_this_node_to_an_admin_only(daemon: RunningDaemon) -> None:
    name = daemon.ctx.settings.node.name
    port = port_of(daemon.endpoints.http)
    with trio.fail_after(60):
        await add_account(daemon, "host1", "HOST")
        await add_account(daemon, "mod1", "MOD")
        async with api_client(daemon) as api:
            (node,) = (await api.ok("node_list"))["nodes"]
            assert set(node) == NODE_FIELDS
            assert node["name"] == name
            assert node["state"] == "up"
            assert node["this"] is True
            assert node["public_url"] == daemon.endpoints.http
            assert node["ws_url"] == daemon.endpoints.ws
            assert node["servers"] == 0
            for username in ("host1", "mod1"):
                async with api_client(daemon, username) as other:
                    refusal = await other.error("node_list", {}, 403)
                    assert refusal["error_type"] == "permission_denied"
                    assert "ADMIN" in refusal["error_message"]
            response = await api.client.post("/api/node_list", json={})
            assert assert_error(response, 403)["error_type"] == "forbidden"
            evil = {
                "Host": f"evil.example:{port}",
                "Origin": f"http://evil.example:{port}",
                "Authorization": f"Bearer {api.token}",
            }
            response = await api.client.post("/api/node_list", json={}, headers=evil)
            assert assert_error(response, 421)["error_type"] == "misdirected"


async def test_the_admin_api_lists_the_nodes(daemon: RunningDaemon) -> None:
    port = port_of(daemon.endpoints.admin)
    with trio.fail_after(60):
        await add_account(daemon, "host1", "HOST")
        async with admin_client(daemon) as admin:
            listed = (await admin.get("/nodes/")).json()
            assert [n["name"] for n in listed] == [daemon.ctx.settings.node.name]
            assert set(listed[0]) == NODE_FIELDS
            assert (await admin.get("/api/nodes")).json()[0]["name"] == listed[0]["name"]
            foreign = {"Origin": "http://evil.example"}
            assert_admin_error(await admin.get("/nodes", headers=foreign), 403)
            assert_admin_error(
                await admin.get("/nodes", headers={"Sec-Fetch-Site": "cross-site"}), 403
            )
            assert_admin_error(
                await admin.get("/nodes", headers={"Host": f"evil.example:{port}"}), 421
            )
            assert_admin_error(await admin.post("/nodes", json={}), 405)
            metrics = (await admin.get("/metrics")).text
        node = daemon.ctx.settings.node.name
        assert f'leosuite_node_up{{node="{node}"}} 1.0' in metrics
        assert f'leosuite_node_heartbeat_age_seconds{{node="{node}"}}' in metrics
        async with admin_client(daemon, "host1", PASSWORD) as host:
            assert "not an administrator" in assert_admin_error(await host.get("/nodes"), 403)


async def test_a_server_is_created_on_a_known_node_only(daemon: RunningDaemon) -> None:
    name = daemon.ctx.settings.node.name
    with trio.fail_after(60):
        await add_account(daemon, "host1", "HOST")
        async with api_client(daemon, "host1") as host:
            for hostile in HOSTILE_NODES:
                body = {"server": "w", "type": "demo-game", "settings": FAST_DEMO, "node": hostile}
                refusal = await host.error("server_create", body, 400)
                assert refusal["error_type"] in ("invalid", "bad_request"), refusal
                assert "node" in refusal["error_message"], refusal
            body = {"server": "w", "type": "demo-game", "settings": FAST_DEMO, "node": "ghost"}
            refusal = await host.error("server_create", body, 400)
            assert refusal["error_type"] == "invalid"
            assert "no node named 'ghost'" in refusal["error_message"]
            assert (await host.ok("server_list"))["servers"] == []
            # Its own node by name, or by saying nothing.
            await host.ok("server_create", {**body, "node": name})
            await host.ok("server_create", {**body, "server": "w2", "node": None})
            status = await host.status("w")
            assert status["node"] == name
            assert status["status"] == "stopped"
        async with ws_client(daemon, login=True) as ws:
            answer = await ws.call(
                "server.create", {"server": "w3", "type": "demo-game", "node": "ghost"}
            )
            assert answer["status_code"] != 0, answer
            assert answer["content"] == {"field": "node"}
            created = await ws.ok(
                "server.create", {"server": "w3", "type": "demo-game", "node": name}
            )
            assert created["server"] == "w3"
    assert not (daemon.daemon.data_dir / "servers" / "ghost").exists()


@pytest.mark.sqlite_only
async def test_on_a_sqlite_store_the_one_node_keeps_its_servers_when_renamed(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    with trio.fail_after(60):
        old = make_settings(data, node={"name": "old-name"})
        async with running_daemon(old) as first, api_client(first) as api:
            await api.ok("server_create", {"server": "kept", "type": "demo-game"})
            assert (await api.status("kept"))["node"] == "old-name"
        new = make_settings(data, node={"name": "new-name"})
        async with running_daemon(new) as second, api_client(second) as api:
            assert (await api.ok("server_list"))["servers"] == ["kept"]
            status = await api.status("kept")
            assert status["node"] == "new-name"
            assert status["status"] == "stopped"

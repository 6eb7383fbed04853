"""Two daemons on one PostgreSQL store: a ban, a logout and a settings change made on
node A take effect on node B without B being asked (bench/cluster_events.py measures
how fast; these only wait, bounded, for the effect).

The banned peer connects from 127.0.0.2 (Linux routes all of 127.0.0.0/8 to lo), so
the test's own clients on 127.0.0.1 keep their access."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from tests.helpers.cluster import ADMIN_PASSWORD, ClusterNode, cluster
from tests.helpers.daemon import login
from tests.helpers.ws import RawClient, Rejected

BANNED = "127.0.0.2"
#: Generous: the machine is shared; each wait ends as soon as its effect shows.
PATIENCE = 60


def banned_http(node: ClusterNode) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=BANNED)
    return httpx.AsyncClient(base_url=node.http_url, timeout=10, transport=transport)


async def until_closed(raw: RawClient) -> int | None:
    while raw.close_code() is None and await raw.read_some():
        pass
    return raw.close_code()


async def refused_on(node: ClusterNode) -> None:
    """Wait until a new connection from the banned address is refused by ``node``."""
    while True:
        async with banned_http(node) as client:
            if (await client.get("/api/health")).status_code == 403:
                return
        await trio.sleep(0.02)


async def test_a_ban_on_a_refuses_and_disconnects_a_client_of_b(
    tmp_path: Path, cluster_store_url: str
) -> None:
    async with cluster(tmp_path, cluster_store_url, "node-a", "node-b") as (a, b):
        with trio.fail_after(PATIENCE):
            async with banned_http(b) as client:
                assert (await client.get("/api/health")).status_code == 200
            async with RawClient.open(b.ws_url + "/", source=BANNED) as on_b:
                await on_b.send("get_leosac_version", None, "v")
                while not on_b.count():  # registered and served
                    assert await on_b.read_some()
                async with a.admin() as admin:
                    added = await admin.post("/banlist/", json={"ip": BANNED})
                    assert added.status_code == 200, added.text
                # B closes the open connection as a ban of its own would (policy).
                assert await until_closed(on_b) == 1008
            await refused_on(b)
            with pytest.raises(Rejected):
                async with RawClient.open(b.ws_url + "/", source=BANNED):
                    pass
            # B's own client (127.0.0.1) is untouched; B lists the ban.
            async with b.admin() as admin:
                listed = (await admin.get("/banlist/")).json()
                assert [ban["ip"] for ban in listed] == [BANNED]
            # Removed on A: B lets the address in again.
            async with a.admin() as admin:
                removed = await admin.delete(f"/banlist/{added.json()['id']}/")
                assert removed.status_code == 200, removed.text
            while True:
                async with banned_http(b) as client:
                    if (await client.get("/api/health")).status_code == 200:
                        break
                await trio.sleep(0.02)


async def test_a_logout_on_a_ends_the_tokens_websocket_session_on_b(
    tmp_path: Path, cluster_store_url: str
) -> None:
    async with cluster(tmp_path, cluster_store_url, "node-a", "node-b") as (a, b):
        with trio.fail_after(PATIENCE):
            async with a.http() as client_a:
                token = await login(client_a, "admin", ADMIN_PASSWORD)
                other = await login(client_a, "admin", ADMIN_PASSWORD)
                async with (
                    b.ws(log_in=False) as on_b,
                    b.ws(log_in=False) as bystander,
                ):
                    answer = await on_b.ok("authenticate_with_token", {"token": token})
                    assert answer["status"] == 0, answer
                    answer = await bystander.ok("authenticate_with_token", {"token": other})
                    assert answer["status"] == 0, answer
                    response = await client_a.post("/api/auth/logout", json={"token": token})
                    assert response.status_code == 204, response.text
                    pushed = await on_b.next_push("session_closed")
                    assert pushed["content"]["reason"]
                    # The session is gone on B; the other token's is not.
                    denied = await on_b.call("server.list", {})
                    assert denied["status_code"] != 0, denied
                    assert (await bystander.call("server.list", {}))["status_code"] == 0
            async with b.http() as client_b:
                response = await client_b.post(
                    "/api/server_list", json={}, headers={"Authorization": f"Bearer {token}"}
                )
                assert response.status_code == 403, response.text


async def test_an_account_locked_on_a_loses_its_session_on_b(
    tmp_path: Path, cluster_store_url: str
) -> None:
    async with cluster(tmp_path, cluster_store_url, "node-a", "node-b") as (a, b):
        with trio.fail_after(PATIENCE):
            async with a.admin() as admin:
                created = await admin.post(
                    "/accounts/", json={"username": "carol", "password": "carol-secret-1"}
                )
                assert created.status_code == 201, created.text
                carol = created.json()["id"]
                async with b.ws("carol", "carol-secret-1") as on_b:
                    locked = await admin.put(f"/accounts/{carol}/", json={"locked": True})
                    assert locked.status_code == 200, locked.text
                    pushed = await on_b.next_push("session_closed")
                    assert pushed["content"]["reason"] == "token destroyed"


async def test_server_settings_changed_on_a_apply_on_b(
    tmp_path: Path, cluster_store_url: str
) -> None:
    async with cluster(tmp_path, cluster_store_url, "node-a", "node-b") as (a, b):
        with trio.fail_after(PATIENCE):
            async with a.admin() as on_a, b.admin() as on_b:
                changed = await on_a.put("/server/", json={"welcomeMessage": "hello from A"})
                assert changed.status_code == 200, changed.text
                while (await on_b.get("/server/")).json()["welcomeMessage"] != "hello from A":
                    await trio.sleep(0.02)
                reset = await on_a.delete("/server/welcomeMessage")
                assert reset.status_code == 200, reset.text
                while (await on_b.get("/server/")).json()["welcomeMessage"] == "hello from A":
                    await trio.sleep(0.02)
                assert "welcomeMessage" not in (await on_b.get("/server/")).json()["overridden"]


async def test_an_account_locked_on_the_command_line_loses_its_session_on_b(
    tmp_path: Path, cluster_store_url: str
) -> None:
    async with cluster(tmp_path, cluster_store_url, "node-a", "node-b") as (a, b):
        with trio.fail_after(PATIENCE):
            async with a.admin() as admin:
                created = await admin.post(
                    "/accounts/", json={"username": "dave", "password": "dave-secret-1"}
                )
                assert created.status_code == 201, created.text
            async with b.ws("dave", "dave-secret-1") as on_b:
                status, out, err = await a.run_cli("user", "lock", "dave")
                assert status == 0, err
                assert "1 session(s) ended" in out
                pushed = await on_b.next_push("session_closed")
                assert pushed["content"]["reason"] == "token destroyed"

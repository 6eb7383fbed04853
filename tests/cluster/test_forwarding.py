"""Two nodes on one PostgreSQL store: a server created through A on node B is started,
typed into and stopped through A (the operations forwarded to B, which checks and
audits them), and its console is read from B with a token A minted; tokens for a
server the account may not read are not minted, and B refuses expired, forged, other
servers' and revoked ones. A node that is gone answers as unreachable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trio
from trio_websocket import open_websocket_url

from leosuite.cluster.console_tokens import ConsoleClaims, claims_of, sign
from tests.helpers.cluster import ClusterNode, cluster
from tests.helpers.http import Api, assert_error, decode_data
from tests.helpers.servers import FAST_DEMO
from tests.helpers.ws import WsClient

PASSWORD = "cluster-user-pw-1"


async def add_user(node: ClusterNode, username: str, flags: str = "") -> None:
    async with node.admin() as admin:
        body = {"username": username, "password": PASSWORD, "flags": flags}
        response = await admin.post("/accounts/", json=body)
        assert response.status_code == 201, response.text


async def until_ok(api: Api, path: str, body: dict[str, Any]) -> Any:
    """Retry while node B has not taken the new server yet (404)."""
    while True:
        response = await api.post(path, body)
        if response.status_code != 404:
            assert response.status_code in (200, 204), (path, response.text)
            return response.json() if response.status_code == 200 else None
        await trio.sleep(0.1)


async def console_of(client: httpx.AsyncClient, token: str, until: bytes) -> bytes:
    """The console read with a console token until ``until`` shows."""
    data = b""
    index = 0
    while until not in data:
        body = {"server": "game", "readIndex": index, "wait": 5, "console_token": token}
        response = await client.post("/api/server_log", json=body)
        assert response.status_code == 200, response.text
        data += decode_data(response.json())
        index = response.json()["nextReadIndex"]
    return data


async def test_a_server_on_b_is_controlled_through_a(
    tmp_path: Path, cluster_store_url: str
) -> None:
    async with cluster(tmp_path, cluster_store_url, "node-a", "node-b") as (a, b):
        with trio.fail_after(180):
            await add_user(a, "olga", "HOST")
            await add_user(a, "hope")
            async with a.api("olga", PASSWORD) as olga_a, b.api("olga", PASSWORD) as olga_b:
                create = {"server": "game", "type": "demo-game", "settings": FAST_DEMO}
                await olga_a.ok("server_create", {**create, "node": "node-b"})
                await olga_a.ok("server_create", {**create, "server": "other", "node": "node-b"})
                started = await until_ok(olga_a, "server_start", {"server": "game"})
                assert started["server"] == "game"
                await olga_b.wait_status("game", "running")
                await olga_a.ok("server_cmd", {"server": "game", "command": "say through a"})

                # The console is read from B with a token minted by A.
                minted = await olga_a.ok("server_console_token", {"server": "game"})
                assert minted["node"] == "node-b"
                assert minted["http_url"].rstrip("/") == b.http_url.rstrip("/")
                assert minted["ws_url"]
                token = minted["token"]
                async with b.http() as on_b, a.http() as on_a:
                    assert b"[Server] through a" in await console_of(
                        on_b, token, b"[Server] through a"
                    )
                    body: dict[str, Any] = {
                        "server": "game",
                        "readIndex": 0,
                        "console_token": token,
                    }
                    # Not at A (not its server), nor for another server, nor forged.
                    assert_error(await on_a.post("/api/server_log", json=body), 403)
                    other = {**body, "server": "other"}
                    assert_error(await on_b.post("/api/server_log", json=other), 403)
                    claims = claims_of(token)
                    forged = sign(
                        ConsoleClaims(**{**_fields(claims), "server": "other"}), b"0" * 32
                    )
                    assert_error(
                        await on_b.post("/api/server_log", json={**other, "console_token": forged}),
                        403,
                    )
                    expired = _resigned_expired(token)
                    assert_error(
                        await on_b.post("/api/server_log", json={**body, "console_token": expired}),
                        403,
                    )

                # A does not read B's console itself: it says how to.
                elsewhere = await olga_a.post("server_log", {"server": "game", "readIndex": 0})
                assert "server_console_token" in assert_error(elsewhere, 409)["error_message"]
                # WebSocket: a command through A's, the console on B's at the minted URL.
                async with a.ws("olga", PASSWORD) as ws_a:
                    await ws_a.ok("server.cmd", {"server": "game", "command": "say via ws"})
                    refused = await ws_a.call("console.subscribe", {"server": "game"})
                    assert "server_console_token" in refused["status_string"], refused
                async with open_websocket_url(minted["ws_url"]) as conn:
                    ws_b = WsClient(conn)
                    subscribe = {"server": "game", "from": 0, "console_token": token}
                    assert (await ws_b.ok("console.subscribe", subscribe))["readIndex"] == 0
                    seen = b""
                    while b"[Server] via ws" not in seen:
                        seen += data_of(await ws_b.next_push("console_output"))

                # An account that may not read the console gets no token; once it may,
                # its token works, and a revoke after minting wins.
                async with a.api("hope", PASSWORD) as hope_a:
                    refused = await hope_a.post("server_console_token", {"server": "game"})
                    assert_error(refused, 404)
                    await olga_b.ok(
                        "server_share_set",
                        {"server": "game", "account": "hope", "rights": ["power"]},
                    )
                    refused = await hope_a.post("server_console_token", {"server": "game"})
                    assert_error(refused, 403)
                    await olga_b.ok(
                        "server_share_set",
                        {"server": "game", "account": "hope", "rights": ["console"]},
                    )
                    hope_token = (await hope_a.ok("server_console_token", {"server": "game"}))[
                        "token"
                    ]
                    async with b.http() as on_b:
                        body = {**body, "console_token": hope_token}
                        assert (await on_b.post("/api/server_log", json=body)).status_code == 200
                        await olga_b.ok(
                            "server_share_set", {"server": "game", "account": "hope", "rights": []}
                        )
                        assert_error(await on_b.post("/api/server_log", json=body), 403)
                    # Through A, B decides: without any right the server does not exist;
                    # with `commands` only, typing is done and stopping is refused.
                    assert_error(await hope_a.post("server_stop", {"server": "game"}), 404)
                    await olga_b.ok(
                        "server_share_set",
                        {"server": "game", "account": "hope", "rights": ["commands"]},
                    )
                    denied = await hope_a.post("server_stop", {"server": "game"})
                    assert assert_error(denied, 403)["error_type"] == "permission_denied"
                    await hope_a.ok("server_cmd", {"server": "game", "command": "say hope"})
                    denied = await hope_a.post("server_cmd", {"server": "game", "command": "stop"})
                    assert assert_error(denied, 403)["error_type"] == "permission_denied"

                stopped = await olga_a.ok("server_stop", {"server": "game"})
                assert stopped == {"server": "game", "status": "stopped"}
                audit = await olga_b.ok("server_status", {"server": "game"})
                assert audit["status"] == "stopped"

            async with b.admin() as admin_b:
                entries = (await admin_b.get("/log/", params={"session": "game"})).text
            assert "(through node node-a)" in entries

            # B gone: A says so, with no traceback.
            await b.kill()
            async with a.api("olga", PASSWORD) as olga_a:
                gone = await olga_a.post("server_start", {"server": "game"})
                assert assert_error(gone, 503)["error_type"] == "node_unreachable"
                gone = await olga_a.post("server_cmd", {"server": "game", "command": "say x"})
                assert assert_error(gone, 503)["error_type"] == "node_unreachable"
            assert "Traceback" not in a.stderr


def data_of(push: dict[str, Any]) -> bytes:
    return decode_data(push["content"])


def _fields(claims: ConsoleClaims) -> dict[str, Any]:
    return {f: getattr(claims, f) for f in claims.__struct_fields__}


def _resigned_expired(token: str) -> str:
    """The token's claims with an expiry in the past, under its own signature."""
    prefix, _body, signature = token.split(".")
    claims = claims_of(token)
    changed = sign(ConsoleClaims(**{**_fields(claims), "expires": 0.0}), b"x" * 32)
    return f"{prefix}.{changed.split('.')[1]}.{signature}"

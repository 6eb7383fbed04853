"""WebSocket ``server.power_bulk``: a ``power_bulk_result`` push per server naming the
request, then the answer with every outcome; the same checks as the HTTP call."""

from __future__ import annotations

from typing import Any

import trio

from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import RunningDaemon
from tests.helpers.http import api_client
from tests.helpers.security import handshake, port_of
from tests.helpers.ws import WsClient, ws_client

SLEEP = {"command": "sleep 1000", "stop_timeout": 1}
DEMO = {"ready_delay": 0, "player_interval": 0, "stop_timeout": 1}


async def results(client: WsClient, uuid: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` power_bulk_result pushes of request ``uuid``."""
    found = []
    while len(found) < count:
        push = await client.next_push("power_bulk_result")
        assert push["uuid"] != uuid  # a push has its own uuid; the request is named inside
        if push["content"]["request"] == uuid:
            found.append(push["content"])
    return found


async def test_pushes_then_the_answer(daemon: RunningDaemon) -> None:
    await add_account(daemon, "olga", "HOST")
    with trio.fail_after(90):
        async with api_client(daemon) as admin, api_client(daemon, "olga") as olga:
            await olga.create("o1", "demo-game", DEMO)
            await admin.create("a1", "command", SLEEP)
            async with ws_client(daemon) as client:
                await client.login("olga", PASSWORD)
                request = {"action": "start", "servers": ["o1", "a1", "o1", "nope"]}
                answer = await client.call("server.power_bulk", request)
                assert answer["status_code"] == 0, answer
                content = answer["content"]
                assert content["action"] == "start"
                assert (content["ok"], content["failed"]) == (1, 2)
                o1, a1, nope = content["servers"]
                assert o1 == {"server": "o1", "status": o1["status"]}
                assert o1["status"] in ("starting", "running")
                # a server olga may not see is answered as an unknown name is
                assert a1 == {
                    "server": "a1",
                    "status_code": 8,
                    "status_string": "no server named 'a1'",
                }
                assert nope["status_string"] == "no server named 'nope'"
                pushed = await results(client, answer["uuid"], 3)
                assert sorted(p["server"] for p in pushed) == ["a1", "nope", "o1"]
                assert all(p["request"] == answer["uuid"] for p in pushed)

                await olga.wait_status("o1", "running")
                stopped = await client.call("server.power_bulk", {"action": "stop", "all": True})
                assert stopped["content"]["servers"] == [{"server": "o1", "status": "stopped"}]
            assert (await admin.status("a1"))["status"] == "stopped"


async def test_bad_requests_and_accounts_without_servers(daemon: RunningDaemon) -> None:
    await add_account(daemon, "nina")
    with trio.fail_after(60):
        async with api_client(daemon) as admin:
            await admin.create("a1", "command", SLEEP)
            async with ws_client(daemon) as client:
                # not logged in
                refused = await client.call("server.power_bulk", {"action": "start", "all": True})
                assert refused["status_code"] == 2
                await client.login("nina", PASSWORD)
                for content in (
                    {"action": "start"},
                    {"action": "start", "all": True, "servers": []},
                    {"action": "start", "servers": ["a1", "A1"]},
                    {"action": "start", "servers": ["a1", "a\u202e1"]},
                    {"action": "start", "servers": [f"n{i}" for i in range(10_001)]},
                    {"action": "start", "servers": ["a1"], "parallel": -1},
                    {"action": "nuke", "all": True},
                    None,
                ):
                    answer = await client.call("server.power_bulk", content)
                    assert answer["status_code"] in (4, 11, 12), (content, answer)  # nothing done
                empty = await client.ok("server.power_bulk", {"action": "start", "all": True})
                assert empty == {"action": "start", "ok": 0, "failed": 0, "servers": []}
                hidden = await client.ok("server.power_bulk", {"action": "stop", "servers": ["a1"]})
                assert hidden["servers"][0]["status_code"] == 8
            assert (await admin.status("a1"))["status"] == "stopped"


async def test_a_foreign_origin_gets_no_connection(daemon: RunningDaemon) -> None:
    ws = daemon.endpoints.ws
    port = port_of(ws)
    with trio.fail_after(20):
        status, _ = await handshake(
            ws + "/", host=f"evil.example:{port}", origin=f"http://evil.example:{port}"
        )
        assert status == 421
        status, _ = await handshake(ws + "/", origin="http://evil.example")
        assert status == 403

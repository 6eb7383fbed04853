"""Sharing a server over the WebSocket API: the ``server.*`` calls and the console, stats
and events subscriptions of an account granted one right; a revoked right ends an open
console subscription and stops the live pushes at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from leosuite.auth.permissions import RIGHTS
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.servers import FAST_DEMO
from tests.helpers.ws import WsClient, ws_client

OK, DENIED, NOT_FOUND, INVALID, MODEL = 0, 2, 8, 12, 11

#: The calls each right covers (``server`` is added to each content).
PROBES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "console": [("server.log", {"readIndex": 0}), ("console.subscribe", {})],
    "commands": [("server.cmd", {"command": "say hi"})],
    "power": [("server.kill", {})],
    "files": [],
    "settings": [("server.settings", {}), ("server.settings", {"set": {"player_interval": 0}})],
}
MANAGING = [
    ("server.share_list", {}),
    ("server.share_set", {"account": "sam", "rights": ["console"]}),
    ("server.destroy", {}),
]


async def wait_state(client: WsClient, server: str, *states: str) -> None:
    while (await client.ok("server.status", {"server": server}))["status"] not in states:
        await trio.sleep(0.05)


async def test_each_single_right_over_websocket(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            await add_account(daemon, "sam")
            for right in RIGHTS:
                await add_account(daemon, f"only_{right}")
            async with ws_client(daemon) as olga:
                await olga.login("olga", PASSWORD)
                await olga.ok("server.create", {"server": "game", "type": "demo-game"})
                await olga.ok("server.settings", {"server": "game", "set": FAST_DEMO})
                await olga.ok("server.start", {"server": "game"})
                await wait_state(olga, "game", "running")
                for right in RIGHTS:
                    shared = await olga.ok(
                        "server.share_set",
                        {"server": "game", "account": f"only_{right}", "rights": [right]},
                    )
                    assert shared["rights"] == [right]
                listed = await olga.ok("server.share_list", {"server": "game"})
                assert len(listed["shares"]) == len(RIGHTS)

                for right in RIGHTS:
                    async with ws_client(daemon) as mine:
                        await mine.login(f"only_{right}", PASSWORD)
                        assert await mine.ok("server.list", {}) == {
                            "servers": ["game"],
                            "rights": {"game": [right]},
                        }
                        status = await mine.ok("server.status", {"server": "game"})
                        assert (status["rights"], status["manage"]) == ([right], False)
                        for other, probes in PROBES.items():
                            for kind, extra in probes:
                                answer = await mine.call(kind, {"server": "game", **extra})
                                wanted = OK if other == right else DENIED
                                assert answer["status_code"] == wanted, (right, kind, answer)
                        if right == "power":
                            await wait_state(olga, "game", "stopped", "crashed")
                            await mine.ok("server.start", {"server": "game"})
                            await wait_state(olga, "game", "running")
                        for kind, extra in MANAGING:
                            answer = await mine.call(kind, {"server": "game", **extra})
                            assert answer["status_code"] == DENIED, (right, kind, answer)

                async with ws_client(daemon) as sam:
                    await sam.login("sam", PASSWORD)
                    assert await sam.ok("server.list", {}) == {"servers": [], "rights": {}}
                    every = [p for probes in PROBES.values() for p in probes] + MANAGING
                    for kind, extra in [*every, ("server.status", {})]:
                        answer = await sam.call(kind, {"server": "game", **extra})
                        assert answer["status_code"] == NOT_FOUND, (kind, answer)


async def test_hostile_share_calls(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            await add_account(daemon, "finn")
            async with ws_client(daemon) as olga:
                await olga.login("olga", PASSWORD)
                await olga.ok("server.create", {"server": "game", "type": "demo-game"})
                for content, status, field in (
                    ({"account": "nobody", "rights": ["console"]}, INVALID, "account"),
                    ({"account": "finn", "rights": ["sudo"]}, INVALID, "rights"),
                    ({"account": "olga", "rights": ["console"]}, INVALID, "account"),
                    ({"account": "finn", "rights": ["power"] * 50}, None, None),
                    ({"account": "finn"}, MODEL, None),
                ):
                    answer = await olga.call("server.share_set", {"server": "game", **content})
                    assert answer["status_code"] != OK, (content, answer)
                    if status is not None:
                        assert answer["status_code"] == status, (content, answer)
                    if field is not None:
                        assert answer["content"] == {"field": field}, answer
                assert (await olga.ok("server.share_list", {"server": "game"}))["shares"] == []


async def test_revoking_ends_the_console_and_the_live_pushes(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", servers={"stats_interval": 0.2})
    with trio.fail_after(90):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            await add_account(daemon, "finn", "HOST")
            async with ws_client(daemon) as olga, ws_client(daemon) as finn:
                await olga.login("olga", PASSWORD)
                await finn.login("finn", PASSWORD)
                for client, name in ((olga, "game"), (finn, "mine")):
                    await client.ok("server.create", {"server": name, "type": "demo-game"})
                    await client.ok("server.settings", {"server": name, "set": FAST_DEMO})
                await olga.ok("server.start", {"server": "game"})
                await wait_state(olga, "game", "running")
                grant = {"server": "game", "account": "finn"}
                await olga.ok("server.share_set", {**grant, "rights": ["console"]})

                await finn.ok("console.subscribe", {"server": "game", "from": 0})
                await finn.ok("stats.subscribe", {})
                await finn.ok("events.subscribe", {})
                while "game" not in (await finn.next_push("stats"))["content"]["servers"]:
                    pass
                # A change that keeps the console keeps the subscription.
                await olga.ok("server.share_set", {**grant, "rights": ["console", "power"]})
                await olga.ok("server.cmd", {"server": "game", "command": "say still here"})
                seen = b""
                while b"still here" not in seen:
                    push = await finn.next_push("console_output")
                    seen += push["content"]["data"].encode()

                # Console taken away (power kept): the subscription ends with a push
                # saying why, the stats no longer carry the server, events still do.
                await olga.ok("server.share_set", {**grant, "rights": ["power"]})
                closed = await finn.next_push("console_closed")
                assert closed["content"] == {"server": "game", "reason": "revoked"}
                again = await finn.call("console.subscribe", {"server": "game"})
                assert again["status_code"] == DENIED
                finn.pushes.clear()
                for _ in range(3):
                    assert "game" not in (await finn.next_push("stats"))["content"]["servers"]
                await olga.ok("server.stop", {"server": "game"})
                while not _state_event(await finn.next_push("event"), "game", "stopped"):
                    pass

                # Every right taken away: no state event of it any more.
                await olga.ok("server.share_set", {**grant, "rights": []})
                await olga.ok("server.start", {"server": "game"})
                await wait_state(olga, "game", "running")
                await finn.ok("server.start", {"server": "mine"})
                events = []
                while not _state_event(event := await finn.next_push("event"), "mine", "running"):
                    events.append(event)
                assert not [e for e in events if e["content"].get("server") == "game"]
                answer = await finn.call("console.subscribe", {"server": "game"})
                assert answer["status_code"] == NOT_FOUND


def _state_event(push: dict[str, Any], server: str, state: str) -> bool:
    content = push["content"]
    return bool(
        content["kind"] == "state" and content["server"] == server and content["new"] == state
    )

"""The last hour of a server's stats samples over both surfaces: HTTP
``POST /api/server_stats_history`` and WebSocket ``server.stats_history``, seen by its
owner and an ADMIN, a server that does not exist for anyone else, bad input refused."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import trio

from leosuite.api.ws.protocol import StatusCode
from leosuite.supervision.fleet import IDLE_FACTOR
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import Api, api_client, assert_error
from tests.helpers.servers import FAST_DEMO
from tests.helpers.ws import ws_client

INTERVAL = 0.2


async def kept(api: Api, server: str, at_least: int) -> dict[str, Any]:
    """The history once it holds ``at_least`` samples (callers bound it with fail_after)."""
    while True:
        answer: dict[str, Any] = await api.ok("server_stats_history", {"server": server})
        if len(answer["samples"]) >= at_least:
            return answer
        await trio.sleep(INTERVAL)


def check_samples(samples: list[dict[str, Any]]) -> None:
    now = time.time()
    for sample in samples:
        assert set(sample) == {"t", "cpu", "memory", "threads"}, sample
        assert now - 3600 <= sample["t"] <= now + 1
        assert sample["cpu"] >= 0
        assert sample["memory"] > 0
        assert sample["threads"] >= 1
    times = [s["t"] for s in samples]
    assert times == sorted(times)
    assert len(set(times)) == len(times)


async def test_http_owner_admin_stranger_and_bad_input(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", servers={"stats_interval": INTERVAL})
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "hope", "HOST")
            await add_account(daemon, "bob")
            async with (
                api_client(daemon, "hope") as owner,
                api_client(daemon, "bob") as stranger,
                api_client(daemon) as admin,
            ):
                await owner.create("w", "demo-game", FAST_DEMO)
                # Never started: nothing kept yet.
                assert await owner.ok("server_stats_history", {"server": "w"}) == {
                    "server": "w",
                    "interval": INTERVAL * IDLE_FACTOR,
                    "samples": [],
                }
                await owner.ok("server_start", {"server": "w"})
                answer = await kept(owner, "w", 3)
                assert answer["server"] == "w"
                assert answer["interval"] == INTERVAL * IDLE_FACTOR
                check_samples(answer["samples"])
                # An ADMIN sees it as well; to another account it does not exist.
                assert len((await kept(admin, "w", 3))["samples"]) >= 3
                await stranger.error("server_stats_history", {"server": "w"}, 404)
                await owner.error("server_stats_history", {"server": "nope"}, 404)

                # Stopped, the samples stay (the last hour is kept whatever the state).
                await owner.ok("server_stop", {"server": "w"})
                await owner.wait_status("w", "stopped")
                after = await owner.ok("server_stats_history", {"server": "w"})
                assert len(after["samples"]) >= 3

                # Hostile values: the documented error shape, never a 500.
                for body in (
                    {},
                    {"server": "../etc"},
                    {"server": 7},
                    {"server": "x" * 5000},
                    {"server": "w", "extra": 1},
                    {"server": None},
                ):
                    response = await owner.post("server_stats_history", body)
                    assert_error(response, 400)
                async with daemon.http() as anonymous:
                    response = await anonymous.post(
                        "/api/server_stats_history", json={"server": "w"}
                    )
                    assert_error(response, 403)

                # Destroyed: gone, and a new server of that name starts with nothing.
                await owner.ok("server_destroy", {"server": "w", "delete_files": True})
                await owner.error("server_stats_history", {"server": "w"}, 404)
                await owner.create("w", "demo-game", FAST_DEMO)
                fresh = await owner.ok("server_stats_history", {"server": "w"})
                assert fresh["samples"] == []


async def test_websocket_call(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", servers={"stats_interval": INTERVAL})
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "bob")
            async with api_client(daemon) as api:
                await api.create("d", "demo-game", FAST_DEMO)
                await api.ok("server_start", {"server": "d"})
                over_http = await kept(api, "d", 2)
            async with ws_client(daemon, login=True) as admin, ws_client(daemon) as bob:
                await bob.login("bob", PASSWORD)
                answer = await admin.ok("server.stats_history", {"server": "d"})
                assert set(answer) == {"server", "interval", "samples"}
                assert answer["interval"] == INTERVAL * IDLE_FACTOR
                # The same samples as over HTTP, and more since.
                assert answer["samples"][: len(over_http["samples"])] == over_http["samples"]
                check_samples(answer["samples"])

                denied = await bob.call("server.stats_history", {"server": "d"})
                assert denied["status_code"] == StatusCode.ENTITY_NOT_FOUND, denied
                missing = await admin.call("server.stats_history", {"server": "nope"})
                assert missing["status_code"] == StatusCode.ENTITY_NOT_FOUND, missing
                # A missing or mistyped field, and a name that cannot be a server's.
                for content in (None, {}, {"server": 1}, {"server": "d", "x": 1}):
                    bad = await admin.call("server.stats_history", content)
                    assert bad["status_code"] == StatusCode.MODEL_EXCEPTION, (content, bad)
                bad = await admin.call("server.stats_history", {"server": "A b/.."})
                assert bad["status_code"] == StatusCode.INVALID_ARGUMENT, bad
                assert bad["content"] == {"field": "server"}
                await admin.ok("server.kill", {"server": "d"})

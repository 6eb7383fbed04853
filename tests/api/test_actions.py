"""Every server status lists the power actions its state allows (``actions``), over HTTP
and the WebSocket API, and the daemon accepts exactly those: a real daemon with real
child processes in stopped, running and backoff."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from leosuite.supervision.states import POWER_ACTIONS, State, allowed_actions
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import Api, api_client
from tests.helpers.servers import command_settings
from tests.helpers.ws import ws_client

STOPPED = ["start", "restart"]
RUNNING = ["stop", "restart", "kill", "force_kill"]
BACKOFF = ["start", "stop", "restart", "kill", "force_kill"]


def check_actions(status: dict[str, Any]) -> list[str]:
    """The status's ``actions``, checked against the state table."""
    actions: list[str] = status["actions"]
    assert actions == list(allowed_actions(State(status["status"]))), status
    return actions


async def refused(api: Api, server: str, listed: list[str]) -> None:
    """Every action not listed is refused with 409 (``force_kill`` is never refused)."""
    for action in POWER_ACTIONS:
        if action not in listed and action != "force_kill":
            await api.error(f"server_{action}", {"server": server}, 409)


async def test_status_lists_the_actions_of_stopped_running_and_backoff(tmp_path: Path) -> None:
    # The first retry waits 60 s: the crashing server stays in backoff for the test.
    settings = make_settings(tmp_path / "data", servers={"backoff_initial": 60, "backoff_max": 60})
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon, api_client(daemon) as api:
            await api.create("idle", "command", command_settings("echo"))
            await api.create("live", "command", command_settings("echo"))
            crash = command_settings("crash", 2, restart="always", max_restarts=5)
            await api.create("loop", "command", crash)

            assert check_actions(await api.status("idle")) == STOPPED
            await refused(api, "idle", STOPPED)

            await api.ok("server_start", {"server": "live"})
            assert check_actions(await api.wait_status("live", "running")) == RUNNING
            await refused(api, "live", RUNNING)

            await api.ok("server_start", {"server": "loop"})
            assert check_actions(await api.wait_status("loop", "backoff")) == BACKOFF

            every = await api.ok("server_status", {})
            assert {name: s["actions"] for name, s in every["servers"].items()} == {
                "idle": STOPPED,
                "live": RUNNING,
                "loop": BACKOFF,
            }
            async with ws_client(daemon, login=True) as client:
                one = await client.ok("server.status", {"server": "loop"})
                assert check_actions(one) == BACKOFF
                listed = await client.ok("server.status", {})
                assert [check_actions(s) for s in listed["servers"].values()] == [
                    STOPPED,
                    RUNNING,
                    BACKOFF,
                ]

            # A listed action is accepted: kill ends the pending restart of "loop".
            assert (await api.ok("server_kill", {"server": "loop"}))["status"] == "stopped"
            assert check_actions(await api.status("loop")) == STOPPED
            await api.ok("server_force_kill", {"server": "live"})


async def test_state_events_and_stats_carry_the_actions(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", servers={"stats_interval": 0.2})
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon, api_client(daemon) as api:
            await api.create("live", "command", command_settings("echo"))
            async with ws_client(daemon, login=True) as client:
                await client.ok("events.subscribe", {})
                await client.ok("stats.subscribe", {})
                await client.ok("server.start", {"server": "live"})
                seen: list[tuple[str, list[str]]] = []
                while not seen or seen[-1][0] != "running":
                    event = (await client.next_push("event"))["content"]
                    if event["kind"] == "state" and event["server"] == "live":
                        assert event["actions"] == list(allowed_actions(State(event["new"])))
                        seen.append((event["new"], event["actions"]))
                assert seen[-1] == ("running", RUNNING)
                stats: dict[str, Any] = {}
                while "live" not in stats:
                    stats = (await client.next_push("stats"))["content"]["servers"]
                assert check_actions(stats["live"]) == RUNNING
                await client.ok("server.stop", {"server": "live"})
                while True:
                    event = (await client.next_push("event"))["content"]
                    if event["kind"] == "state" and event["new"] == "stopped":
                        break
                assert event["actions"] == STOPPED

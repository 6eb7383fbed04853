"""The dashboard calls of the WebSocket API over real sockets with real child processes:
``server.*`` with the HTTP API's permissions, console/stats/events subscriptions."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import RunningDaemon, make_settings, running_daemon
from tests.helpers.servers import FAST_DEMO, command_settings
from tests.helpers.ws import WsClient, ws_client


def data_of(push: dict[str, Any]) -> bytes:
    content = push["content"]
    if content["encoding"] == "base64":
        return base64.b64decode(content["data"])
    data: str = content["data"]
    return data.encode("utf-8")


async def whole_log(client: WsClient, server: str) -> bytes:
    """Every console byte so far, read with ``server.log``."""
    data = b""
    index = 0
    while True:
        answer = await client.ok("server.log", {"server": server, "readIndex": index})
        assert answer["oldReadIndex"] == index
        if answer["encoding"] == "base64":
            data += base64.b64decode(answer["data"])
        else:
            data += answer["data"].encode("utf-8")
        index = answer["nextReadIndex"]
        if index >= answer["readIndex"]:
            return data


async def wait_status(client: WsClient, server: str, *states: str) -> dict[str, Any]:
    while True:
        status: dict[str, Any] = await client.ok("server.status", {"server": server})
        if status["status"] in states:
            return status
        await trio.sleep(0.05)


async def collect_console(
    client: WsClient, server: str, start: int, until: bytes
) -> tuple[bytes, list[dict[str, Any]]]:
    """Read console pushes, checking order, until ``until`` is in the bytes."""
    data = b""
    index = start
    pushes = []
    while until not in data:
        push = await client.next_push("console_output")
        content = push["content"]
        assert content["server"] == server
        assert content["readIndex"] == index, (content["readIndex"], index)
        chunk = data_of(push)
        assert content["nextReadIndex"] == index + len(chunk)
        data += chunk
        index = content["nextReadIndex"]
        pushes.append(push)
    return data, pushes


# -- server.* ---------------------------------------------------------------------------


async def test_server_calls_and_permissions(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        await add_account(daemon, "bob")
        await add_account(daemon, "hope", "HOST")
        async with ws_client(daemon, login=True) as admin, ws_client(daemon) as bob:
            await bob.login("bob", PASSWORD)
            created = await admin.ok(
                "server.create",
                {"server": "echo", "type": "command", "settings": command_settings("echo")},
            )
            assert created == {"server": "echo", "readIndex": 0}
            assert (await admin.ok("server.list", {}))["servers"] == ["echo"]
            status = await admin.ok("server.status", {"server": "echo"})
            assert status["status"] == "stopped"
            settings = await admin.ok("server.settings", {"server": "echo"})
            assert isinstance(settings, list)  # an answer whose content is an array
            assert "command" in {v["name"] for v in settings}

            # Another account: the admin's server does not exist for it.
            assert (await bob.ok("server.list", {}))["servers"] == []
            assert (await bob.ok("server.status", None))["servers"] == {}
            for kind, content in [
                ("server.status", {"server": "echo"}),
                ("server.start", {"server": "echo"}),
                ("server.cmd", {"server": "echo", "command": "hi"}),
                ("server.log", {"server": "echo", "readIndex": 0}),
                ("server.settings", {"server": "echo"}),
                ("server.destroy", {"server": "echo"}),
                ("console.subscribe", {"server": "echo"}),
            ]:
                answer = await bob.call(kind, content)
                assert answer["status_code"] == 8, (kind, answer)
            unknown = await admin.call("server.status", {"server": "nope"})
            assert unknown["status_code"] == 8
            # Creating needs HOST or ADMIN; the command type is ADMIN only.
            denied = await bob.call("server.create", {"server": "b", "type": "demo-game"})
            assert denied["status_code"] == 2
            async with ws_client(daemon) as hope:
                await hope.login("hope", PASSWORD)
                denied = await hope.call(
                    "server.create",
                    {"server": "h", "type": "command", "settings": command_settings("echo")},
                )
                assert denied["status_code"] == 2
                await hope.ok(
                    "server.create", {"server": "h", "type": "demo-game", "settings": FAST_DEMO}
                )
                assert (await hope.ok("server.list", {}))["servers"] == ["h"]
            assert sorted((await admin.ok("server.list", {}))["servers"]) == ["echo", "h"]

            # Power, command and log for the owner.
            started = await admin.ok("server.start", {"server": "echo"})
            assert started["server"] == "echo"
            assert started["status"] in ("starting", "running")
            await wait_status(admin, "echo", "running")
            await admin.ok("server.cmd", {"server": "echo", "command": "hello there"})
            while b"echo: hello there\n" not in await whole_log(admin, "echo"):
                await trio.sleep(0.05)
            bad = await admin.call("server.start", {"server": ""})
            assert bad["status_code"] in (8, 12)
            missing = await admin.call("server.cmd", {"server": "echo"})
            assert missing["status_code"] == 11
            assert missing["content"]["errors"][0]["source"]["pointer"] == "/content/command"
            await admin.ok("server.stop", {"server": "echo"})
            await wait_status(admin, "echo", "stopped", "exited")
            await admin.ok("server.destroy", {"server": "echo"})
            assert (await admin.ok("server.list", {}))["servers"] == ["h"]


# -- console --------------------------------------------------------------------------


async def test_console_backlog_then_live_in_order(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with ws_client(daemon, login=True) as client:
            await client.ok(
                "server.create",
                {"server": "e", "type": "command", "settings": command_settings("echo")},
            )
            await client.ok("server.start", {"server": "e"})
            for i in range(5):
                await client.ok("server.cmd", {"server": "e", "command": f"before {i}"})
            while b"echo: before 4\n" not in await whole_log(client, "e"):
                await trio.sleep(0.05)
            backlog = await whole_log(client, "e")

            answer = await client.ok("console.subscribe", {"server": "e", "from": 0})
            assert answer == {"server": "e", "readIndex": 0}
            data, _ = await collect_console(client, "e", 0, b"echo: before 4\n")
            assert data == backlog  # nothing was written meanwhile

            for i in range(50):
                await client.ok("server.cmd", {"server": "e", "command": f"live {i} é"})
            live, _ = await collect_console(client, "e", len(data), b"echo: live 49 \xc3\xa9\n")
            data += live
            assert data == await whole_log(client, "e")
            lines = [line for line in data.splitlines() if line.startswith(b"echo: live")]
            assert lines == [f"echo: live {i} é".encode() for i in range(50)]

            # Subscribing twice is refused; unsubscribing works once.
            twice = await client.call("console.subscribe", {"server": "e"})
            assert twice["status_code"] == 5
            assert (await client.call("console.unsubscribe", {"server": "e"}))["content"] is None
            again = await client.call("console.unsubscribe", {"server": "e"})
            assert again["status_code"] == 5
            # No more pushes after the unsubscribe answer.
            client.pushes.clear()
            await client.ok("server.cmd", {"server": "e", "command": "after"})
            while b"echo: after" not in await whole_log(client, "e"):
                await trio.sleep(0.05)
            await client.ok("get_version", {})
            assert [p for p in client.pushes if p["type"] == "console_output"] == []

            # Without ``from``: only what comes after the subscription.
            end = len(await whole_log(client, "e"))
            answer = await client.ok("console.subscribe", {"server": "e"})
            assert answer["readIndex"] == end
            await client.ok("server.cmd", {"server": "e", "command": "newest"})
            data, _ = await collect_console(client, "e", end, b"echo: newest\n")
            assert b"before" not in data
            assert b"after" not in data


async def test_console_flood_is_batched_and_byte_exact(daemon: RunningDaemon) -> None:
    total = 3_000_000
    with trio.fail_after(40):
        async with ws_client(daemon, login=True) as client:
            await client.ok(
                "server.create",
                {
                    "server": "f",
                    "type": "command",
                    "settings": command_settings("flood", total, "--sleep"),
                },
            )
            await client.ok("console.subscribe", {"server": "f", "from": 0})
            await client.ok("server.start", {"server": "f"})
            data = b""
            pushes = 0
            while data.count(b"flood ") * 71 < total:
                push = await client.next_push("console_output")
                assert push["content"]["readIndex"] == len(data)
                data += data_of(push)
                pushes += 1
            log = await whole_log(client, "f")
            assert data == log[: len(data)]
            assert not [p for p in client.pushes if p["type"] == "console_overrun"]
            batch = daemon.ctx.settings.ws.console_batch_bytes
            assert pushes <= len(data) // 1000  # batched, not one push per line
            assert pushes >= len(data) // batch
            await client.ok("server.kill", {"server": "f"})


@pytest.mark.parametrize(
    ("content", "status", "pointer"),
    [
        ({"server": "e", "from": -1}, 12, None),
        ({"server": "e", "from": 10**9}, 12, None),
        ({"server": "e", "from": "zero"}, 11, "/content/from"),
        ({}, 11, "/content/server"),
        ({"server": "nope"}, 8, None),
    ],
)
async def test_console_subscribe_bad_arguments(
    daemon: RunningDaemon, content: dict[str, Any], status: int, pointer: str | None
) -> None:
    with trio.fail_after(15):
        async with ws_client(daemon, login=True) as client:
            await client.ok(
                "server.create",
                {"server": "e", "type": "command", "settings": command_settings("echo")},
            )
            answer = await client.call("console.subscribe", content)
            assert answer["status_code"] == status, answer
            if pointer is not None:
                assert answer["content"]["errors"][0]["source"]["pointer"] == pointer
            # Nothing was subscribed.
            assert (await client.call("console.unsubscribe", {"server": "e"}))["status_code"] == 5


async def test_unsubscribe_what_was_never_subscribed(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with ws_client(daemon, login=True) as client:
            for kind, content in [
                ("console.unsubscribe", {"server": "nope"}),
                ("stats.unsubscribe", {}),
                ("events.unsubscribe", None),
            ]:
                answer = await client.call(kind, content)
                assert answer["status_code"] == 5, (kind, answer)
            await client.ok("stats.subscribe", {})
            assert (await client.call("stats.subscribe", {}))["status_code"] == 5
            await client.ok("events.subscribe", {})
            assert (await client.call("events.subscribe", {}))["status_code"] == 5
            assert (await client.call("stats.unsubscribe", {}))["status_code"] == 0
            assert (await client.call("events.unsubscribe", {}))["status_code"] == 0
            assert (await client.call("events.unsubscribe", {}))["status_code"] == 5


# -- events and stats -----------------------------------------------------------------


async def test_events_subscribe_sees_state_changes_and_log_entries(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        await add_account(daemon, "bob")
        async with ws_client(daemon, login=True) as admin, ws_client(daemon) as bob:
            await bob.login("bob", PASSWORD)
            assert await admin.ok("events.subscribe", {}) == {"subscribed": "events"}
            await bob.ok("events.subscribe", {})
            await admin.ok(
                "server.create", {"server": "d", "type": "demo-game", "settings": FAST_DEMO}
            )
            await admin.ok("server.start", {"server": "d"})
            states = []
            logs = []
            uuids = []
            while "running" not in states:
                push = await admin.next_push("event")
                uuids.append(push["uuid"])
                event = push["content"]
                if event["kind"] == "state":
                    assert event["server"] == "d"
                    assert {"old", "new", "reason", "timestamp"} <= set(event)
                    states.append(event["new"])
                else:
                    assert event["kind"] == "log"
                    assert {"id", "timestamp", "level", "topic", "message"} <= set(event)
                    logs.append(event["message"])
            assert states[0] == "starting"
            while not any("created server d" in m for m in logs):
                push = await admin.next_push("event")
                uuids.append(push["uuid"])
                event = push["content"]
                if event["kind"] == "log":
                    logs.append(event["message"])
            # Server pushes carry fresh uuids: all distinct, none of a request.
            assert len(set(uuids)) == len(uuids)
            assert not [u for u in uuids if u.startswith("req-")]
            await admin.ok("server.kill", {"server": "d"})
            await wait_status(admin, "d", "stopped", "exited", "crashed", "failed")
            # bob sees neither the admin's server nor the audit log.
            await bob.ok("get_version", {})
            assert [p for p in bob.pushes if p["type"] == "event"] == []


async def test_stats_subscribe_pushes_running_servers(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", servers={"stats_interval": 0.2})
    async with running_daemon(settings) as daemon:
        with trio.fail_after(30):
            async with ws_client(daemon, login=True) as client:
                await client.ok(
                    "server.create", {"server": "d", "type": "demo-game", "settings": FAST_DEMO}
                )
                assert await client.ok("stats.subscribe", None) == {"subscribed": "stats"}
                first = await client.next_push("stats")
                assert first["content"] == {"servers": {}}
                await client.ok("server.start", {"server": "d"})
                await wait_status(client, "d", "running")
                while "d" not in (push := await client.next_push("stats"))["content"]["servers"]:
                    pass
                stats = push["content"]["servers"]["d"]
                assert {"status", "pid", "uptime", "cpu", "memory", "threads"} <= set(stats)
                assert isinstance(stats["pid"], int)
                await client.ok("stats.unsubscribe", {})
                await client.ok("server.kill", {"server": "d"})

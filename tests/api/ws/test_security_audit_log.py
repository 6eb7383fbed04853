"""The audit log is for ADMIN accounts only: ``get_logs`` refuses every other account
(it would read everyone's logins, addresses and typed console commands), and
``system_overview`` counts only the caller's own servers and sessions unless it is an
ADMIN. Over a real WebSocket against the real daemon."""

from __future__ import annotations

import trio

from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import RunningDaemon
from tests.helpers.http import api_client
from tests.helpers.servers import FAST_DEMO, command_settings
from tests.helpers.ws import ws_client

SECRET = "rcon_password=hunter2-secret"


async def test_get_logs_is_refused_to_every_account_without_admin(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        await add_account(daemon, "nobody")
        await add_account(daemon, "host1", "HOST")
        await add_account(daemon, "mod1", "MOD")
        async with api_client(daemon) as admin:  # what an attacker wants to read
            await admin.create("shell", "command", command_settings("echo"))
            await admin.ok("server_start", {"server": "shell"})
            await admin.ok("server_cmd", {"server": "shell", "command": f"say {SECRET}"})
            await admin.ok("server_stop", {"server": "shell"})

        for user in ("nobody", "host1", "mod1"):
            async with ws_client(daemon) as client:
                await client.login(user, PASSWORD)
                for content in (None, {}, {"p": 1, "ps": 1000, "sort": "asc"}, {"ps": 0}):
                    answer = await client.call("get_logs", content)
                    assert answer["status_code"] == 2, (user, answer)
                    assert answer["status_string"] == "reading the audit log needs the ADMIN flag"
                    assert answer["content"] is None
                    assert SECRET not in str(answer)
                # The rest of the session still works.
                assert (await client.call("server.list", {}))["status_code"] == 0

        async with ws_client(daemon, login=True) as client:
            logs = await client.ok("get_logs", {"p": 1, "ps": 1000})
            assert any(SECRET in e["attributes"]["message"] for e in logs["data"])


async def test_system_overview_counts_only_your_own_unless_admin(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        await add_account(daemon, "host1", "HOST")
        await add_account(daemon, "nobody")
        async with api_client(daemon) as admin, api_client(daemon, "host1") as host:
            await admin.create("a1", "demo-game", FAST_DEMO)
            await admin.create("a2", "demo-game", FAST_DEMO)
            await admin.ok("server_start", {"server": "a1"})
            await admin.wait_status("a1", "running")
            await host.create("h1", "demo-game", FAST_DEMO)

            async with (
                ws_client(daemon, login=True) as admin_ws,
                ws_client(daemon) as host_ws,
                ws_client(daemon) as other_ws,
            ):
                await host_ws.login("host1", PASSWORD)
                await other_ws.login("nobody", PASSWORD)
                everything = await admin_ws.ok("system_overview", {})
                assert everything["servers"]["running"] == 1
                assert everything["servers"]["stopped"] == 2
                assert everything["sessions"] == 3
                assert everything["users"] == 3

                own = await host_ws.ok("system_overview", {})
                assert set(own) == set(everything)
                assert own["servers"] == {**{k: 0 for k in own["servers"]}, "stopped": 1}
                assert own["sessions"] == 1
                assert own["users"] == 1

                none = await other_ws.ok("system_overview", {})
                assert sum(none["servers"].values()) == 0
                assert none["sessions"] == 1
                assert none["users"] == 1
            await admin.ok("server_stop", {"server": "a1"})

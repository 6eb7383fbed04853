"""What a grant does not reach by a side door: typing the stop command is a stop (it
needs ``power``), the settings that start a server need ``power`` too, the live figures
of a status are the ``console`` right's, and GameConsole's server list shows owners to
an ADMIN and to the owner only. Real daemon, real listener, real servers."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.gameconsole import GameConsole
from tests.helpers.http import Api, api_client
from tests.helpers.servers import FAST_DEMO
from tests.helpers.ws import ws_client

DENIED = 2


async def share(api: Api, server: str, account: str, rights: list[str]) -> None:
    await api.ok("server_share_set", {"server": server, "account": account, "rights": rights})


async def test_typing_the_stop_command_needs_power(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(90):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            await add_account(daemon, "finn")
            async with api_client(daemon, "olga") as olga, api_client(daemon, "finn") as finn:
                await olga.create("game", "demo-game", FAST_DEMO)
                await olga.ok("server_start", {"server": "game"})
                await olga.wait_status("game", "running")
                await share(olga, "game", "finn", ["commands"])
                await finn.ok("server_cmd", {"server": "game", "command": "say hi"})
                for line in ("stop", "  stop\t"):
                    refused = await finn.error(
                        "server_cmd", {"server": "game", "command": line}, 403
                    )
                    assert refused["error_type"] == "permission_denied"
                    assert "'power'" in refused["error_message"], refused
                    assert "stop command" in refused["error_message"], refused
                async with ws_client(daemon) as ws:
                    await ws.login("finn", PASSWORD)
                    answer = await ws.call("server.cmd", {"server": "game", "command": "stop"})
                    assert answer["status_code"] == DENIED, answer
                status = await olga.status("game")
                assert (status["status"], status["stop_requested"]) == ("running", None)
                log, _ = await olga.read_log("game")
                assert b"stop command typed" not in log

                # With power as well, the typed stop command is a requested stop.
                await share(olga, "game", "finn", ["commands", "power"])
                await finn.ok("server_cmd", {"server": "game", "command": "stop"})
                stopped = await olga.wait_status("game", "stopped")
                assert stopped["stop_requested"] is not None


async def test_settings_that_start_a_server_need_power(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            await add_account(daemon, "finn")
            async with api_client(daemon, "olga") as olga, api_client(daemon, "finn") as finn:
                await olga.create("game", "demo-game", FAST_DEMO)
                await share(olga, "game", "finn", ["settings"])
                before = await finn.ok("server_settings", {"server": "game"})
                for key, value in (("autostart", True), ("restart", "always"), ("max_restarts", 9)):
                    refused = await finn.error(
                        "server_settings",
                        {"server": "game", "set": {"player_interval": 3, key: value}},
                        403,
                    )
                    assert refused["error_type"] == "permission_denied"
                    assert f"'{key}'" in refused["error_message"], refused
                    assert "'power'" in refused["error_message"], refused
                # Nothing of a refused change was taken.
                assert await finn.ok("server_settings", {"server": "game"}) == before
                await finn.ok("server_settings", {"server": "game", "set": {"player_interval": 3}})

                await share(olga, "game", "finn", ["settings", "power"])
                changed = {"autostart": True, "restart": "always", "max_restarts": 9}
                view = await finn.ok("server_settings", {"server": "game", "set": changed})
                values = {s["name"]: s["value"] for s in view}
                assert {k: values[k] for k in changed} == changed


async def test_live_figures_of_a_status_are_the_console_rights(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", servers={"stats_interval": 0.2})
    figures = ("cpu", "memory", "threads")
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            await add_account(daemon, "finn")
            await add_account(daemon, "cora")
            async with api_client(daemon, "olga") as olga:
                await olga.create("game", "demo-game", FAST_DEMO)
                await olga.ok("server_start", {"server": "game"})
                await olga.wait_status("game", "running")
                await share(olga, "game", "finn", ["power", "files", "settings", "commands"])
                await share(olga, "game", "cora", ["console"])
                while (await olga.status("game"))["memory"] is None:
                    await trio.sleep(0.05)
                async with api_client(daemon, "finn") as finn, api_client(daemon, "cora") as cora:
                    blind = await finn.status("game")
                    assert blind["status"] == "running"
                    assert {k: blind[k] for k in figures} == dict.fromkeys(figures)
                    listed = (await finn.ok("server_status", {}))["servers"]["game"]
                    assert {k: listed[k] for k in figures} == dict.fromkeys(figures)
                    seeing = await cora.status("game")
                    assert all(seeing[k] is not None for k in figures), seeing
                async with ws_client(daemon) as ws:
                    await ws.login("finn", PASSWORD)
                    pushed = await ws.ok("server.status", {"server": "game"})
                    assert {k: pushed[k] for k in figures} == dict.fromkeys(figures)


async def test_gameconsole_shows_owners_to_an_admin_and_the_owner_only(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", http={"gameconsole_service": True})
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            await add_account(daemon, "finn", "HOST")
            async with api_client(daemon, "olga") as olga, api_client(daemon, "finn") as finn:
                await olga.create("olgas", "demo-game", FAST_DEMO)
                await finn.create("finns", "demo-game", FAST_DEMO)
                await share(olga, "olgas", "finn", ["console"])
            async with daemon.http() as client:
                seen: dict[str, dict[str, str]] = {}
                for username, password in (("finn", PASSWORD), ("olga", PASSWORD), ("admin", "")):
                    gc = GameConsole(client)
                    if username == "admin":
                        await gc.login()
                    else:
                        gc.token = (await gc.try_login(username, password))["session_token"]
                    overview = await gc.overview()
                    seen[username] = {e["server-name"]: e["owner"] for e in overview.values()}
                assert seen == {
                    "finn": {"olgas": "", "finns": "finn"},
                    "olga": {"olgas": "olga"},
                    "admin": {"olgas": "olga", "finns": "finn"},
                }

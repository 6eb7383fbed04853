"""Server definitions survive a daemon restart: the list, the settings, the console's
readIndex (it never goes back; new output is appended after), and autostart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from tests.helpers.daemon import make_settings, running_daemon, start_daemon
from tests.helpers.http import Api, api_client
from tests.helpers.servers import FAST_DEMO, command_settings, pid_alive, wait_gone


async def snapshot(api: Api) -> dict[str, Any]:
    names = (await api.ok("server_list"))["servers"]
    return {
        "list": names,
        "settings": {n: await api.ok("server_settings", {"server": n}) for n in names},
        "types": {n: (await api.status(n))["type"] for n in names},
    }


async def test_servers_survive_a_daemon_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon, api_client(daemon) as api:
            await api.create("echo", "command", command_settings("echo"))
            await api.create("demo", "demo-game", {**FAST_DEMO, "port": 30000})
            await api.create("auto", "demo-game", {**FAST_DEMO, "autostart": True})
            await api.create("mc", "minecraft", {"jar": "server.jar", "memory": 512})
            await api.ok("server_settings", {"server": "demo", "set": {"port": 30001}})

            await api.ok("server_start", {"server": "echo"})
            await api.wait_log("echo", b"ready\n")
            await api.ok("server_cmd", {"server": "echo", "command": "first life"})
            await api.wait_log("echo", b"echo: first life\n")
            await api.ok("server_start", {"server": "auto"})
            await api.wait_status("auto", "running")
            # echo is left running: the daemon's shutdown stops it gracefully
            echo_pid = (await api.status("echo"))["pid"]
            auto_pid = (await api.status("auto"))["pid"]
            before = await snapshot(api)
            console_before, end_before = await api.read_log("echo")
            assert before["list"] == ["auto", "demo", "echo", "mc"]
        # the daemon has stopped: so have its servers
        assert not pid_alive(echo_pid)
        assert not pid_alive(auto_pid)
        stopped_console = (tmp_path / "data" / "logs" / "echo" / "console.log").read_bytes()
        assert stopped_console.startswith(console_before)
        end_at_stop = len(stopped_console)
        assert end_at_stop > end_before  # the stop markers

        async with running_daemon(settings) as daemon, api_client(daemon) as api:
            assert await snapshot(api) == before
            by_name = {v["name"]: v["value"] for v in before["settings"]["demo"]}
            assert by_name["port"] == 30001
            # autostart brings "auto" back, the others stay stopped
            status = await api.wait_status("auto", "running")
            assert status["pid"] != auto_pid
            assert pid_alive(status["pid"])
            for name in ("echo", "demo", "mc"):
                assert (await api.status(name))["status"] == "stopped"

            echo = await api.status("echo")
            assert echo["readIndex"] == end_at_stop  # continues, never goes back
            console, end = await api.read_log("echo")
            assert console == stopped_console
            assert end == end_at_stop
            await api.ok("server_start", {"server": "echo"})
            await api.wait_log("echo", b"ready\n", start=end)
            await api.ok("server_cmd", {"server": "echo", "command": "second life"})
            new = await api.wait_log("echo", b"echo: second life\n", start=end)
            assert b"first life" not in new
            whole, _ = await api.read_log("echo")
            assert whole == stopped_console + whole[end_at_stop:]
            assert whole.index(b"echo: first life") < whole.index(b"echo: second life")
            await api.ok("server_stop", {"server": "echo"})
            auto_pid = (await api.status("auto"))["pid"]
            await api.ok("server_destroy", {"server": "mc"})
        await wait_gone([auto_pid])  # the daemon's stop ended it (bounded by the test's 60 s)

        # a third life: the destroyed server stays gone, readIndex still only grows
        async with running_daemon(settings) as daemon, api_client(daemon) as api:
            assert (await api.ok("server_list"))["servers"] == ["auto", "demo", "echo"]
            assert (await api.status("echo"))["readIndex"] >= len(whole)
            await api.wait_status("auto", "running")


async def test_read_index_continues_after_an_unclean_stop(tmp_path: Path) -> None:
    """The daemon is cancelled without its shutdown (no index saved): the console
    files still say where the log ends."""
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            daemon = await start_daemon(nursery, settings)
            async with api_client(daemon) as api:
                await api.create("echo", "command", command_settings("echo"))
                await api.ok("server_start", {"server": "echo"})
                await api.ok("server_cmd", {"server": "echo", "command": "before the crash"})
                await api.wait_log("echo", b"echo: before the crash\n")
                pid = (await api.status("echo"))["pid"]
            nursery.cancel_scope.cancel()
        await wait_gone([pid])
        on_disk = (tmp_path / "data" / "logs" / "echo" / "console.log").read_bytes()
        assert b"echo: before the crash" in on_disk

        async with running_daemon(settings) as daemon, api_client(daemon) as api:
            status = await api.status("echo")
            assert status["readIndex"] == len(on_disk)
            assert (await api.read_log("echo"))[0] == on_disk
            await api.ok("server_start", {"server": "echo"})
            await api.wait_log("echo", b"ready\n", start=len(on_disk))
            await api.ok("server_stop", {"server": "echo"})

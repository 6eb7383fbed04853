"""``leosuite server start|stop|... NAME NAME ...`` and ``--all``: one ``server.power_bulk``
call over one WebSocket, as subprocesses against the in-process daemon (HOME in tmp_path)."""

from __future__ import annotations

import json
from pathlib import Path

import trio

from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.cli import Cli
from tests.helpers.daemon import RunningDaemon, make_settings, start_daemon
from tests.helpers.http import Api, api_client

SLEEP = {"command": "sleep 1000", "stop_timeout": 1}


async def statuses(api: Api) -> dict[str, str]:
    answer = await api.ok("server_status")
    return {name: s["status"] for name, s in answer["servers"].items()}


async def wait_all(api: Api, names: list[str], state: str) -> None:
    while True:
        current = await statuses(api)
        if all(current[n] == state for n in names):
            return
        await trio.sleep(0.05)


def lines(out: bytes) -> list[str]:
    return out.decode().splitlines()


async def test_bulk_power_actions(daemon: RunningDaemon, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    names = ["b1", "b2", "b3", "b4"]
    with trio.fail_after(90):
        await cli.login(daemon.endpoints.http)
        async with api_client(daemon) as api:
            for name in names:
                await api.create(name, "command", SLEEP)

            started = await cli.run("server", "start", *names)
            out = lines(started.stdout)
            assert sorted(out[:4]) == [f"{n}: running" for n in names], out
            assert out[4].startswith("start: 4 ok, 0 failed of 4 in "), out
            await wait_all(api, names, "running")

            # one failure among successes: reported for that server, exit 1
            mixed = await cli.run("server", "restart", "b1", "nope", "b2", expect=1)
            out = lines(mixed.stdout)
            assert any(line.startswith("nope: error: ") for line in out), out
            assert {line.split(":")[0] for line in out[:3]} == {"b1", "nope", "b2"}
            assert out[3].startswith("restart: 2 ok, 1 failed of 3"), out
            await wait_all(api, ["b1", "b2"], "running")

            # JSON: servers in the order given, a conflict (already running) per server
            document = json.loads(
                (await cli.run("server", "start", "b3", "nope", "b3", "--json", expect=1)).stdout
            )
            assert document["action"] == "start"
            assert document["ok"] == 0
            assert document["failed"] == 2  # the repeated b3 was sent once
            b3, nope = document["servers"]
            assert b3["server"] == "b3"
            assert b3["ok"] is False
            assert b3["status_code"] == 1  # GENERAL_FAILURE: already running
            assert b3["error"]
            assert nope == {
                "server": "nope",
                "ok": False,
                "error": nope["error"],
                "status_code": 8,  # ENTITY_NOT_FOUND
            }
            assert "nope" in nope["error"]

            # stop --all stops every one
            stopped = await cli.json("server", "stop", "--all", "--parallel", "2")
            assert [s["server"] for s in stopped["servers"]] == names
            assert all(
                s == {"server": s["server"], "ok": True, "status": "stopped"}
                for s in stopped["servers"]
            ), stopped
            assert (stopped["ok"], stopped["failed"]) == (4, 0)
            assert set((await statuses(api)).values()) == {"stopped"}

            # a single name keeps the old one-request behaviour and output
            one = await cli.run("server", "start", "b1")
            assert one.stdout.decode().startswith("b1: ")
            await wait_all(api, ["b1"], "running")

            # bad input: nothing is sent, b1 keeps running
            both = await cli.run("server", "stop", "--all", "b1", expect=2)
            assert b"not both" in both.stderr
            assert (await cli.run("server", "stop", expect=2)).stderr
            await cli.run("server", "stop", "--parallel", "0", "b1", "b2", expect=2)
            evil = "x\x1b]0;pwned\x07"
            bad = await cli.run("server", "kill", "b1", "Bad/Name", evil, expect=1)
            assert b"invalid server name 'Bad/Name'" in bad.stderr
            assert b"\x1b" not in bad.stderr
            assert bad.stdout == b""
            assert (await api.status("b1"))["status"] == "running"

            killed = await cli.run("server", "force-kill", "--all")  # idempotent
            out = lines(killed.stdout)
            assert sorted(out[:4]) == [f"{n}: stopped" for n in names], out
            await wait_all(api, ["b1"], "stopped")

            for name in names:
                await api.ok("server_destroy", {"server": name})
        empty = await cli.run("server", "stop", "--all")
        assert empty.stdout.decode().startswith("no servers")
        assert (await cli.json("server", "start", "--all"))["servers"] == []


async def test_bulk_paces_under_the_daemons_request_rate(tmp_path: Path) -> None:
    """A HOST account (ADMIN sessions are not rate limited) with its own servers, under
    a low ws.request_burst: each bulk action is one call, every server starts; another
    account's server is reported as unknown and left alone."""
    settings = make_settings(tmp_path / "data", ws={"request_rate": 20.0, "request_burst": 3})
    cli = Cli(tmp_path / "home")
    names = [f"r{i}" for i in range(8)]
    demo = {"ready_delay": 0, "player_interval": 0, "stop_timeout": 1}
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            daemon = await start_daemon(nursery, settings)
            await add_account(daemon, "bob", "HOST")
            await cli.login(daemon.endpoints.http, "bob", PASSWORD)
            async with api_client(daemon, "bob") as api, api_client(daemon) as admin:
                await admin.create("adm", "command", SLEEP)
                await admin.ok("server_start", {"server": "adm"})
                for name in names:
                    await api.create(name, "demo-game", demo)
                document = await cli.json("server", "start", *names)
                assert (document["ok"], document["failed"]) == (8, 0), document
                await wait_all(api, names, "running")
                # the admin's server is not bob's: unknown to him, and left running
                hidden = await cli.run("server", "stop", "r0", "adm", expect=1)
                assert b"adm: error: no server named 'adm'" in hidden.stdout
                await wait_all(api, ["r0"], "stopped")
                killed = await cli.json("server", "force-kill", "--all")
                assert sorted(s["server"] for s in killed["servers"]) == names
                await wait_all(api, names, "stopped")
                assert (await admin.status("adm"))["status"] == "running"
                await admin.ok("server_force_kill", {"server": "adm"})
            daemon.daemon.request_stop()

"""A server's schedules over the HTTP API: who may list and manage them, hostile
definitions refused with a clear answer, and a run on demand on a real demo-game (its
console shows the command; "only if players online" asks the game with `list`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from tests.helpers.accounts import add_account
from tests.helpers.admin_accounts import server_audit
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import Api, api_client
from tests.helpers.servers import FAST_DEMO, command_settings

NIGHTLY = {
    "name": "nightly",
    "cron": "0 4 * * *",
    "zone": "Europe/Berlin",
    "steps": ["command say restarting in a minute", "wait 60", "restart"],
}


async def schedules(api: Api, server: str) -> list[dict[str, Any]]:
    answer = await api.ok("server_schedule_list", {"server": server})
    listed: list[dict[str, Any]] = answer["schedules"]
    return listed


async def test_owner_admin_grantee_and_stranger(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            await add_account(daemon, "finn")
            await add_account(daemon, "sam", "HOST")
            async with api_client(daemon, "olga") as olga:
                await olga.create("game", "demo-game", FAST_DEMO)
                created = await olga.ok("server_schedule_create", {"server": "game", **NIGHTLY})
                schedule = created["schedule"]
                assert schedule["steps"] == NIGHTLY["steps"]
                assert (schedule["cron"], schedule["interval"]) == ("0 4 * * *", None)
                assert schedule["zone"] == "Europe/Berlin"
                assert schedule["next_run"] > daemon.ctx.now()
                assert (schedule["last_due"], schedule["running"]) == (None, False)
                listing = await olga.ok("server_schedule_list", {"server": "game"})
                assert listing["players_query"] is True
                assert [s["name"] for s in listing["schedules"]] == ["nightly"]
                await olga.ok(
                    "server_share_set", {"server": "game", "account": "finn", "rights": ["power"]}
                )

            named = {"server": "game", "name": "nightly"}
            definition = {"server": "game", **NIGHTLY, "interval": None}
            calls: list[tuple[str, dict[str, Any]]] = [
                ("server_schedule_create", {**definition, "name": "other"}),
                ("server_schedule_update", definition),
                ("server_schedule_run", named),
                ("server_schedule_delete", named),
            ]
            # A grantee sees the schedules, and manages none, whatever its rights.
            async with api_client(daemon, "finn") as finn:
                assert [s["name"] for s in await schedules(finn, "game")] == ["nightly"]
                for path, body in calls:
                    refused = await finn.error(path, body, 403)
                    assert refused["error_type"] == "permission_denied"
            # A stranger (even a HOST): the server does not exist for it.
            async with api_client(daemon, "sam") as sam:
                await sam.error("server_schedule_list", {"server": "game"}, 404)
                for path, body in calls:
                    await sam.error(path, body, 404)
            # An ADMIN manages the schedules of any server.
            async with api_client(daemon) as admin:
                changed = await admin.ok(
                    "server_schedule_update",
                    {"server": "game", "name": "nightly", "interval": 3600, "steps": ["stop"]},
                )
                assert changed["schedule"]["zone"] == "UTC"
                assert (changed["schedule"]["cron"], changed["schedule"]["interval"]) == (
                    None,
                    3600.0,
                )
                assert await admin.ok("server_schedule_delete", named) is None
                assert await schedules(admin, "game") == []
                await admin.error("server_schedule_delete", named, 404)

            messages = [e.message for e in await server_audit(daemon, "game")]
            assert any(m.startswith("schedule nightly created: cron 0 4 * * *") for m in messages)
            assert "schedule nightly changed: every 3600 s: stop" in messages
            assert "schedule nightly deleted" in messages


HOSTILE: list[tuple[dict[str, Any], str]] = [
    ({"cron": "0 4 * *"}, "cron"),
    ({"cron": "* * * * * *"}, "cron"),
    ({"cron": "61 4 * * *"}, "cron"),
    ({"cron": "0 4 31 2 *"}, "cron"),
    ({"cron": "0 4 * * *", "zone": "Mars/Olympus"}, "zone"),
    ({"cron": "0 4 * * *", "zone": "../../etc/passwd"}, "zone"),
    ({"cron": "0 4 * * *", "zone": "/etc/localtime"}, "zone"),
    ({"cron": "0 4 * * *", "interval": 60}, "cron"),
    ({}, "cron"),
    ({"interval": 1}, "interval"),
    ({"interval": -60}, "interval"),
    ({"interval": 1e300}, "interval"),
    ({"interval": 60, "steps": ["wait -1"]}, "steps"),
    ({"interval": 60, "steps": ["wait 1e9"]}, "steps"),
    ({"interval": 60, "steps": ["wait soon"]}, "steps"),
    ({"interval": 60, "steps": ["reboot"]}, "steps"),
    ({"interval": 60, "steps": ["start now"]}, "steps"),
    ({"interval": 60, "steps": ["command "]}, "steps"),
    ({"interval": 60, "steps": []}, "steps"),
    ({"interval": 60, "steps": ["start"] * 33}, "steps"),
    ({"interval": 60, "steps": ["start"] * 100_000}, "steps"),
    ({"interval": 60, "steps": ["command " + "x" * 5000]}, "steps"),
    ({"interval": 60, "name": ""}, "name"),
    ({"interval": 60, "name": "../x"}, "name"),
    ({"interval": 60, "name": "n" * 65}, "name"),
]


async def test_hostile_definitions_are_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await admin.create("game", "demo-game", FAST_DEMO)
            await admin.create("cmd", "command", command_settings("echo"))
            for extra, field in HOSTILE:
                body = {"server": "game", "name": "s", "steps": ["restart"], **extra}
                refused = await admin.error("server_schedule_create", body, 400)
                assert refused["error_type"] == "invalid", refused
                assert field.rstrip("s") in refused["error_message"], (extra, refused)
            assert await schedules(admin, "game") == []
            # A type that does not say how to ask for players: refused at create.
            refused = await admin.error(
                "server_schedule_create",
                {
                    "server": "cmd",
                    "name": "s",
                    "interval": 60,
                    "steps": ["stop"],
                    "only_if_players": True,
                },
                400,
            )
            assert "do not say how many players are online" in refused["error_message"]
            # A name is unique on its server.
            body = {"server": "game", "name": "s", "interval": 60, "steps": ["stop"]}
            await admin.ok("server_schedule_create", body)
            await admin.error("server_schedule_create", body, 409)
            await admin.error("server_schedule_run", {"server": "game", "name": "t"}, 404)


async def test_run_now_on_a_demo_game_and_only_if_players_online(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            async with api_client(daemon, "olga") as olga:
                await olga.create("game", "demo-game", FAST_DEMO)
                await olga.ok("server_start", {"server": "game"})
                await olga.wait_status("game", "running")
                for name, extra in (("hello", {}), ("players", {"only_if_players": True})):
                    await olga.ok(
                        "server_schedule_create",
                        {
                            "server": "game",
                            "name": name,
                            "interval": 86400,
                            "steps": [f"command say {name} from a schedule", "backup"],
                            **extra,
                        },
                    )
                answer = await olga.ok("server_schedule_run", {"server": "game", "name": "hello"})
                assert answer == {"server": "game", "name": "hello", "started": True}
                await olga.wait_log("game", b"hello from a schedule")
                results = await wait_results(olga, 1)
                assert results["hello"] == "done (run now)"
                backups = await olga.ok("server_backup_list", {"server": "game"})
                assert [b["by"] for b in backups["backups"]] == ["schedule"]
                # No players are online (player_interval 0): the game's `list` says so.
                await olga.ok("server_schedule_run", {"server": "game", "name": "players"})
                results = await wait_results(olga, 2)
                assert results["players"] == "skipped: no players online (run now)"
                log, _ = await olga.read_log("game")
                assert b"players from a schedule" not in log
                assert b"There are 0 of a max" in log
            messages = [e.message for e in await server_audit(daemon, "game")]
            assert "schedule hello run now" in messages
            assert any(m.startswith("schedule players: skipped") for m in messages)


async def wait_results(api: Api, count: int) -> dict[str, str]:
    """Each schedule's last result once ``count`` of them have one."""
    while True:
        listed = await schedules(api, "game")
        results = {s["name"]: s["last_result"] for s in listed if s["last_result"]}
        if len(results) >= count:
            return results
        await trio.sleep(0.05)


async def test_the_daemon_runs_an_interval_schedule_by_itself(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon:
            async with api_client(daemon) as admin:
                await admin.create("game", "demo-game", FAST_DEMO)
                await admin.ok("server_start", {"server": "game"})
                await admin.wait_status("game", "running")
                body = {
                    "server": "game",
                    "name": "tick",
                    "interval": 10,
                    "only_if_running": True,
                    "steps": ["command say tick from the scheduler"],
                }
                await admin.ok("server_schedule_create", body)
                await admin.wait_log("game", b"tick from the scheduler")
                results = await wait_results(admin, 1)
                assert results["tick"].startswith("done (due at ")
                [listed] = await schedules(admin, "game")
                assert listed["last_due"] is not None
                # The next due time is one interval on (two while a run is being stored).
                assert listed["next_run"] - listed["last_due"] in (10, 20)
            messages = [
                e for e in await server_audit(daemon, "game") if "schedule tick" in e.message
            ]
            assert messages[-1].message.startswith("schedule tick: done (due at ")
            assert messages[-1].user_name == "(schedule)"

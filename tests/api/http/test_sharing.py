"""Sharing a server over the HTTP API: an account granted one right does exactly what it
covers and is refused the rest; a stranger still gets 404; only the owner or an ADMIN
manages the grants; grants go with the server and with the account."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from leosuite.auth.permissions import RIGHTS
from leosuite.store import grants as grant_table
from tests.helpers.accounts import add_account
from tests.helpers.admin_accounts import admin_client, server_audit
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import Api, api_client
from tests.helpers.servers import FAST_DEMO, command_settings

#: What each right's probe call is: (path, body beyond the server name, 2xx status).
PROBES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "console": [("server_log", {"readIndex": 0}), ("server_stats_history", {})],
    "commands": [("server_cmd", {"command": "say hi"})],
    "power": [("server_restart", {})],
    "files": [("server_files_list", {"path": ""})],
    "settings": [("server_settings", {}), ("server_settings", {"set": {"player_interval": 0}})],
}


async def share(api: Api, server: str, account: str, rights: list[str]) -> Any:
    return await api.ok(
        "server_share_set", {"server": server, "account": account, "rights": rights}
    )


async def test_each_single_right_allows_exactly_its_calls(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            await add_account(daemon, "sam", "HOST")
            for right in RIGHTS:
                await add_account(daemon, f"only_{right}")
            async with api_client(daemon, "olga") as olga:
                await olga.create("game", "demo-game", FAST_DEMO)
                await olga.ok("server_start", {"server": "game"})
                await olga.wait_status("game", "running")
                for right in RIGHTS:
                    answer = await share(olga, "game", f"only_{right}", [right])
                    assert answer == {
                        "server": "game",
                        "account": f"only_{right}",
                        "rights": [right],
                    }
                listed = await olga.ok("server_share_list", {"server": "game"})
                assert [(s["account"], s["rights"]) for s in listed["shares"]] == [
                    (f"only_{r}", [r]) for r in sorted(RIGHTS)
                ]
                # Whether an account is locked is an ADMIN's business, not an owner's.
                assert {frozenset(s) for s in listed["shares"]} == {
                    frozenset({"account", "rights", "granted_at"})
                }
                owner_status = await olga.status("game")
                assert (owner_status["rights"], owner_status["manage"]) == (list(RIGHTS), True)

            for right in RIGHTS:
                async with api_client(daemon, f"only_{right}") as mine:
                    listing = await mine.ok("server_list")
                    assert listing["servers"] == ["game"]
                    assert listing["rights"] == {"game": [right]}
                    status = await mine.status("game")
                    assert (status["rights"], status["manage"]) == ([right], False)
                    for other, probes in PROBES.items():
                        for path, extra in probes:
                            response = await mine.post(path, {"server": "game", **extra})
                            wanted = (200, 204) if other == right else (403,)
                            assert response.status_code in wanted, (right, path, response.text)
                            if other == right and path == "server_restart":
                                await mine.wait_status("game", "running")
                    # Power covers every power action; a right never covers managing.
                    stop = await mine.post("server_stop", {"server": "game"})
                    assert stop.status_code == (200 if right == "power" else 403), stop.text
                    if right == "power":
                        await mine.wait_status("game", "stopped")
                        await mine.ok("server_start", {"server": "game"})
                        await mine.wait_status("game", "running")
                    for path, body in (
                        ("server_share_list", {}),
                        ("server_share_set", {"account": "sam", "rights": ["console"]}),
                        ("server_destroy", {}),
                    ):
                        refused = await mine.error(path, {"server": "game", **body}, 403)
                        assert refused["error_type"] == "permission_denied"

            # A stranger: the server does not exist for it, whatever the call.
            async with api_client(daemon, "sam") as sam:
                assert (await sam.ok("server_list"))["servers"] == []
                assert (await sam.ok("server_list"))["rights"] == {}
                for path, extra in [p for probes in PROBES.values() for p in probes] + [
                    ("server_status", {}),
                    ("server_stop", {}),
                    ("server_share_list", {}),
                    ("server_share_set", {"account": "sam", "rights": ["console"]}),
                    ("server_destroy", {}),
                ]:
                    await sam.error(path, {"server": "game", **extra}, 404)

            # Every grant was audited with the acting account.
            shared = [e for e in await server_audit(daemon, "game") if "shared" in e.message]
            assert {e.message for e in shared} == {
                f"shared server game with only_{r}: {r}" for r in RIGHTS
            }
            assert {e.user_name for e in shared} == {"olga"}


async def test_a_revoked_or_changed_right_applies_at_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            await add_account(daemon, "finn")
            async with api_client(daemon, "olga") as olga, api_client(daemon, "finn") as finn:
                await olga.create("game", "demo-game", FAST_DEMO)
                await share(olga, "game", "finn", ["console"])
                await finn.ok("server_log", {"server": "game", "readIndex": 0})
                await share(olga, "game", "FINN", ["files", "console", "files"])
                assert (await finn.status("game"))["rights"] == ["console", "files"]
                await share(olga, "game", "finn", ["files"])
                await finn.error("server_log", {"server": "game", "readIndex": 0}, 403)
                assert await share(olga, "game", "finn", []) == {
                    "server": "game",
                    "account": "finn",
                    "rights": [],
                }
                await finn.error("server_status", {"server": "game"}, 404)
                assert (await olga.ok("server_share_list", {"server": "game"}))["shares"] == []
            messages = [e.message for e in await server_audit(daemon, "game")]
            assert "changed finn's rights on server game: console -> console, files" in messages
            assert "revoked finn's rights on server game (had files)" in messages


async def test_hostile_grants(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            await add_account(daemon, "hank", "HOST")
            await add_account(daemon, "finn")
            locked = await add_account(daemon, "lena")
            async with admin_client(daemon) as admin:
                response = await admin.put(f"/accounts/{locked}/", json={"locked": True})
                assert response.status_code == 200, response.text
            async with api_client(daemon, "olga") as olga, api_client(daemon) as boss:
                await olga.create("game", "demo-game", FAST_DEMO)
                game = {"server": "game"}
                for body in (
                    {"account": "nobody", "rights": ["console"]},  # unknown account
                    {"account": "finn", "rights": ["console", "root"]},  # unknown right
                    {"account": "finn", "rights": ["console"] * 6},  # too many
                    {"account": "finn", "rights": "console"},  # not a list
                    {"account": "finn", "rights": [1]},
                    {"account": "olga", "rights": ["console"]},  # oneself
                    {"account": "finn", "rights": ["console"], "extra": 1},
                    {"account": "x" * 100_000, "rights": ["console"]},
                ):
                    refused = await olga.error("server_share_set", {**game, **body}, 400)
                    assert refused["error_type"] == "invalid", body
                # An ADMIN shares the server with its owner: it has every right already.
                await boss.error(
                    "server_share_set", {**game, "account": "olga", "rights": ["files"]}, 400
                )
                # A locked account may be granted: the rights apply once it is unlocked;
                # only an ADMIN's list says it is locked.
                await share(olga, "game", "lena", ["console"])
                shares = (await olga.ok("server_share_list", game))["shares"]
                assert [(s["account"], "locked" in s) for s in shares] == [("lena", False)]
                shares = (await boss.ok("server_share_list", game))["shares"]
                assert [(s["account"], s["locked"]) for s in shares] == [("lena", True)]
                # An ADMIN manages the grants of any server.
                await share(boss, "game", "finn", ["power"])
                assert len((await boss.ok("server_share_list", game))["shares"]) == 2
                # Another owner's server does not exist for hank.
                async with api_client(daemon, "hank") as hank:
                    await hank.error(
                        "server_share_set", {**game, "account": "finn", "rights": ["power"]}, 404
                    )
                    await hank.error("server_share_list", game, 404)
                    await hank.error(
                        "server_share_set",
                        {"server": "nope", "account": "finn", "rights": []},
                        404,
                    )


async def test_admin_only_types_stay_admin_only_for_grantees(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "hank", "HOST")
            async with api_client(daemon) as boss, api_client(daemon, "hank") as hank:
                await boss.create("shell", "command", command_settings("echo"))
                await share(boss, "shell", "hank", list(RIGHTS))
                assert (await hank.status("shell"))["rights"] == list(RIGHTS)
                for path, extra in (
                    ("server_start", {}),
                    ("server_restart", {}),
                    ("server_cmd", {"command": "hi"}),
                    ("server_settings", {"set": {"stop_timeout": 2}}),
                    ("server_files_mkdir", {"path": "x"}),
                ):
                    refused = await hank.error(path, {"server": "shell", **extra}, 403)
                    assert "ADMIN" in refused["error_message"], (path, refused)
                await hank.ok("server_settings", {"server": "shell"})  # reading is its right
                await hank.ok("server_log", {"server": "shell", "readIndex": 0})


async def test_grants_go_with_the_server_and_the_account(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            await add_account(daemon, "finn")
            gone = await add_account(daemon, "gone")

            async def rows() -> dict[tuple[int, int], frozenset[str]]:
                return await daemon.ctx.db.call(grant_table.list_all)

            async with api_client(daemon, "olga") as olga, api_client(daemon, "finn") as finn:
                await olga.create("game", "demo-game", FAST_DEMO)
                await olga.create("other", "demo-game", FAST_DEMO)
                await share(olga, "game", "finn", ["console"])
                await share(olga, "other", "finn", ["console"])
                await share(olga, "other", "gone", ["files"])
                assert len(await rows()) == 3
                await olga.ok("server_destroy", {"server": "game"})
                assert set((await rows()).values()) == {
                    frozenset({"console"}),
                    frozenset({"files"}),
                }
                # A new server under the old name is not shared with anyone.
                await olga.create("game", "demo-game", FAST_DEMO)
                await finn.error("server_status", {"server": "game"}, 404)
                assert (await finn.ok("server_list"))["servers"] == ["other"]

                async with admin_client(daemon) as admin:
                    response = await admin.delete(f"/accounts/{gone}/")
                    assert response.status_code == 200, response.text
                shares = (await olga.ok("server_share_list", {"server": "other"}))["shares"]
                assert [s["account"] for s in shares] == ["finn"]
                assert len(await rows()) == 1


async def test_grants_survive_a_daemon_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            await add_account(daemon, "finn")
            async with api_client(daemon, "olga") as olga:
                await olga.create("game", "demo-game", FAST_DEMO)
                await share(olga, "game", "finn", ["settings", "console"])
        async with running_daemon(settings) as daemon, api_client(daemon, "finn") as finn:
            assert (await finn.ok("server_list"))["rights"] == {"game": ["console", "settings"]}
            await finn.ok("server_settings", {"server": "game"})
            await finn.error("server_start", {"server": "game"}, 403)

"""Admin API ``DELETE /server/`` and ``DELETE /server/:key`` over real HTTP: a stored
setting is removed and the configuration file's value is in effect again at once;
``overridden`` says which keys are stored; unknown and read-only names are refused
and change nothing; a reset is audited."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import trio

from leosuite.store import audit as audit_table
from leosuite.store import kv
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, make_settings, running_daemon
from tests.helpers.http import assert_admin_error

AUTH = ("admin", ADMIN_PASSWORD)


async def stored_rows(daemon: RunningDaemon) -> dict[str, str]:
    rows: dict[str, str] = await daemon.ctx.db.call(lambda conn: kv.items(conn, "server_settings."))
    return rows


async def test_reset_one_key_then_all_restores_the_file_values(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", community={"session_count_limit": 42, "welcome_message": "from file"}
    )
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon, daemon.admin(auth=AUTH) as client:
            core = daemon.ctx.chat.core
            before = (await client.get("/server/")).json()
            assert before["overridden"] == []
            assert before["sessionCountLimit"] == 42
            changed = await client.put(
                "/server/",
                json={"sessionCountLimit": 7, "welcomeMessage": "hi", "persistence": False},
            )
            assert changed.status_code == 200, changed.text
            assert changed.json()["overridden"] == [
                "sessionCountLimit",
                "enablePersistence",
                "welcomeMessage",
            ]
            assert core.limits.session_count_limit == 7

            one = await client.delete("/api/server/sessionCountLimit")
            assert one.status_code == 200, one.text
            body = one.json()
            assert body["reset"] == ["sessionCountLimit"]
            assert body["sessionCountLimit"] == 42
            assert body["overridden"] == ["enablePersistence", "welcomeMessage"]
            assert core.limits.session_count_limit == 42
            assert set(await stored_rows(daemon)) == {
                "server_settings.enablePersistence",
                "server_settings.welcomeMessage",
            }

            alias = await client.delete("/server/persistence/")
            assert alias.status_code == 200, alias.text
            assert alias.json()["reset"] == ["enablePersistence"]
            assert alias.json()["persistence"] is True
            assert core.limits.enable_persistence is True

            again = await client.delete("/server/sessionCountLimit")
            assert again.status_code == 200, again.text
            assert again.json()["reset"] == []

            everything = await client.delete("/server")
            assert everything.status_code == 200, everything.text
            assert everything.json()["reset"] == ["welcomeMessage"]
            assert everything.json()["welcomeMessage"] == "from file"
            assert everything.json()["overridden"] == []
            assert core.limits.welcome_message == "from file"
            assert await stored_rows(daemon) == {}
            after = (await client.get("/server/")).json()
            assert {k: v for k, v in after.items() if k != "overridden"} == {
                k: v for k, v in before.items() if k != "overridden"
            }
            entries = await daemon.ctx.db.call(
                lambda c: audit_table.page(c, offset=0, limit=50, newest_first=False)
            )
    resets = [e for e in entries if e.message.startswith("server settings reset")]
    assert [e.message for e in resets] == [
        "server settings reset: sessionCountLimit=42",
        "server settings reset: enablePersistence=true",
        'server settings reset: welcomeMessage="from file"',
    ]
    assert all(e.user_name == "admin" and e.topic == "Status" for e in resets)


async def test_a_reset_survives_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", community={"default_max_users": 30})
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon, daemon.admin(auth=AUTH) as client:
            response = await client.put("/server/", json={"sessionUserLimit": 5})
            assert response.status_code == 200, response.text
            response = await client.delete("/server/sessionUserLimit")
            assert response.json()["reset"] == ["sessionUserLimit"]
        async with running_daemon(settings) as daemon, daemon.admin(auth=AUTH) as client:
            body = (await client.get("/server/")).json()
            assert body["sessionUserLimit"] == 30
            assert body["overridden"] == []
            assert daemon.ctx.chat.core.limits.default_max_users == 30


async def test_unknown_huge_and_read_only_names_change_nothing(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.admin(auth=AUTH) as client:
            put = await client.put("/server/", json={"serverTitle": "kept"})
            assert put.status_code == 200, put.text
            unknown = await client.delete("/server/ruleText")
            assert "no server setting is named 'ruleText'" in assert_admin_error(unknown, 404)
            huge = await client.delete("/server/" + "x" * 4000)
            message = assert_admin_error(huge, 404)
            assert "x" * 99 + "…" in message
            assert len(message) < 200
            read_only = await client.delete("/server/logpurgedays")
            assert assert_admin_error(read_only, 400).startswith("logpurgedays: read-only")
            body = (await client.get("/server/")).json()
    assert body["serverTitle"] == "kept"
    assert body["overridden"] == ["serverTitle"]
    assert set(await stored_rows(daemon)) == {"server_settings.serverTitle"}


async def test_reset_all_removes_rows_that_no_longer_validate(daemon: RunningDaemon) -> None:
    """A value stored by an older version, out of today's range, is skipped at load and
    removed by a reset of everything."""

    def plant(conn: sqlite3.Connection) -> None:
        kv.set(conn, "server_settings.sessionCountLimit", "-5")
        kv.set(conn, "server_settings.retiredSetting", "1")

    await daemon.ctx.db.call(plant)
    with trio.fail_after(30):
        async with daemon.admin(auth=AUTH) as client:
            assert (await client.get("/server/")).json()["overridden"] == []
            response = await client.delete("/server/")
    assert response.status_code == 200, response.text
    assert response.json()["reset"] == ["retiredSetting", "sessionCountLimit"]
    assert await stored_rows(daemon) == {}

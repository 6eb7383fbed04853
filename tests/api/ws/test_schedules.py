"""A server's schedules over the WebSocket API: the ``schedule.*`` calls answer as HTTP
``/api/server_schedule_*`` does, with the same permissions."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.servers import FAST_DEMO
from tests.helpers.ws import ws_client

OK, DENIED, NOT_FOUND, INVALID = 0, 2, 8, 12


async def test_schedule_calls_over_websocket(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            await add_account(daemon, "finn")
            await add_account(daemon, "sam")
            named = {"server": "game", "name": "save"}
            definition = {**named, "interval": 600, "steps": ["command save"]}
            async with ws_client(daemon) as olga:
                await olga.login("olga", PASSWORD)
                await olga.ok("server.create", {"server": "game", "type": "demo-game"})
                await olga.ok("server.settings", {"server": "game", "set": FAST_DEMO})
                created = await olga.ok("schedule.create", definition)
                assert created["schedule"]["steps"] == ["command save"]
                assert created["schedule"]["next_run"] > daemon.ctx.now()
                listed = await olga.ok("schedule.list", {"server": "game"})
                assert [s["name"] for s in listed["schedules"]] == ["save"]
                bad = await olga.call("schedule.create", {**definition, "cron": "nonsense"})
                assert bad["status_code"] == INVALID, bad
                changed = await olga.ok(
                    "schedule.update", {**named, "cron": "*/5 * * * *", "steps": ["stop"]}
                )
                assert changed["schedule"]["cron"] == "*/5 * * * *"
                await olga.ok(
                    "server.share_set",
                    {"server": "game", "account": "finn", "rights": ["commands"]},
                )
            async with ws_client(daemon) as finn:
                await finn.login("finn", PASSWORD)
                assert len((await finn.ok("schedule.list", {"server": "game"}))["schedules"]) == 1
                for kind, content in (
                    ("schedule.create", {**definition, "name": "mine"}),
                    ("schedule.update", definition),
                    ("schedule.run", named),
                    ("schedule.delete", named),
                ):
                    answer = await finn.call(kind, content)
                    assert answer["status_code"] == DENIED, (kind, answer)
            async with ws_client(daemon) as sam:
                await sam.login("sam", PASSWORD)
                for kind, content in (
                    ("schedule.list", {"server": "game"}),
                    ("schedule.run", named),
                ):
                    answer = await sam.call(kind, content)
                    assert answer["status_code"] == NOT_FOUND, (kind, answer)
            async with ws_client(daemon) as olga:
                await olga.login("olga", PASSWORD)
                deleted = await olga.ok("schedule.delete", named)
                assert deleted == {"server": "game", "name": "save", "deleted": True}
                assert (await olga.ok("schedule.list", {"server": "game"}))["schedules"] == []

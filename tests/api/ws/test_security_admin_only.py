"""The WebSocket ``server.*`` calls hold the admin-only rule of a type as the HTTP API
does: a demoted ADMIN's ``command`` server is stopped, and its owner may no longer
start, restart, reconfigure or type into it, while an ADMIN still may."""

from __future__ import annotations

import trio

from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.admin_accounts import set_flags
from tests.helpers.daemon import RunningDaemon
from tests.helpers.servers import command_settings
from tests.helpers.ws import ws_client


async def test_demoted_admin_is_refused_on_the_websocket(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        boss_id = await add_account(daemon, "boss2", "ADMIN")
        async with ws_client(daemon) as boss:
            await boss.login("boss2", PASSWORD)
            await boss.ok(
                "server.create",
                {"server": "shell", "type": "command", "settings": command_settings("echo")},
            )
            await boss.ok("server.start", {"server": "shell"})
            await boss.ok("server.cmd", {"server": "shell", "command": "while admin"})
            await set_flags(daemon, boss_id, "HOST")
            closed = await boss.next_push("session_closed")  # its tokens ended with the flag
            assert "flags" in closed["content"]["reason"]
        assert daemon.ctx.servers.status("shell")["status"] == "stopped"

        async with ws_client(daemon) as boss, ws_client(daemon, login=True) as admin:
            await boss.login("boss2", PASSWORD)
            assert (await boss.ok("server.status", {"server": "shell"}))["status"] == "stopped"
            await boss.ok("server.settings", {"server": "shell"})
            for kind, content in (
                ("server.start", {"server": "shell"}),
                ("server.restart", {"server": "shell"}),
                ("server.settings", {"server": "shell", "set": {"command": "id"}}),
                ("server.cmd", {"server": "shell", "command": "id"}),
            ):
                answer = await boss.call(kind, content)
                assert answer["status_code"] == 2, (kind, answer)
                assert "needs the ADMIN flag" in answer["status_string"], answer
            await admin.ok("server.start", {"server": "shell"})
            await admin.ok("server.cmd", {"server": "shell", "command": "from the admin"})
            answer = await boss.call("server.cmd", {"server": "shell", "command": "id"})
            assert answer["status_code"] == 2, answer
            await boss.ok("server.stop", {"server": "shell"})

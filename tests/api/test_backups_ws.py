"""Backups over the WebSocket API: a running demo-game's backup types its save command
first, the caller sees ``backup.progress`` pushes through every phase, a second backup
or a restore meanwhile is refused, and the permissions are HTTP's."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import api_client
from tests.helpers.servers import FAST_DEMO
from tests.helpers.ws import ws_client

OK, NOT_FOUND, BAD_CONTENT = 0, 8, 11


async def test_progress_commands_and_one_job_per_server(tmp_path: Path) -> None:
    # The wait after the save command keeps the first backup going while the test asks.
    settings = make_settings(tmp_path / "data", backups={"command_wait": 3.0})
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            await add_account(daemon, "sam")
            async with api_client(daemon, "olga") as http:
                await http.create("game", "demo-game", FAST_DEMO)
                folder = Path(settings.data_dir) / "servers" / "game" / "world"
                folder.mkdir()
                (folder / "level.dat").write_bytes(b"w" * 300_000)
                await http.ok("server_start", {"server": "game"})
                await http.wait_status("game", "running")
                async with ws_client(daemon) as olga, ws_client(daemon) as other:
                    await olga.login("olga", PASSWORD)
                    await other.login("olga", PASSWORD)
                    answer: dict[str, object] = {}

                    async def create() -> None:
                        answer.update(await olga.ok("backup.create", {"server": "game"}))

                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(create)
                        while not (await other.ok("backup.status", {"server": "game"}))["running"]:
                            await trio.sleep(0.05)
                        status = await other.ok("backup.status", {"server": "game"})
                        assert status["phase"] in ("commands", "archiving")
                        again = await other.call("backup.create", {"server": "game"})
                        assert again["status_code"] != OK
                        assert "is running" in again["status_string"], again
                        refused = await http.error("server_backup_create", {"server": "game"}, 409)
                        assert "is running" in refused["error_message"]
                    assert answer["by"] == "olga"
                    phases = [
                        p["content"]["phase"] for p in olga.pushes if p["type"] == "backup.progress"
                    ]
                    assert phases[0] == "commands"
                    assert "archiving" in phases
                    assert phases[-1] == "done"
                    assert not [p for p in other.pushes if p["type"] == "backup.progress"]
                    done = [p["content"] for p in olga.pushes if p["type"] == "backup.progress"]
                    assert done[-1]["done_bytes"] == done[-1]["total_bytes"] == 300_000
                    assert done[-1]["server"] == "game"
                    await http.wait_log("game", b"Saving the game")

                    listed = await olga.ok("backup.list", {"server": "game"})
                    assert [b["id"] for b in listed["backups"]] == [answer["id"]]
                    one = {"server": "game", "id": answer["id"]}
                    busy = await olga.call("backup.restore", one)
                    assert "stop the server first" in busy["status_string"], busy
                    await http.ok("server_stop", {"server": "game"})
                    await http.wait_status("game", "stopped")
                    olga.pushes.clear()
                    restored = await olga.ok("backup.restore", one)
                    assert restored["restored"] is True
                    phases = [
                        p["content"]["phase"] for p in olga.pushes if p["type"] == "backup.progress"
                    ]
                    assert phases[0] == "restoring"
                    assert phases[-1] == "done"
                    bad = await olga.call("backup.delete", {"server": "game", "id": "../1"})
                    assert bad["status_code"] == BAD_CONTENT, bad
                    deleted = await olga.ok("backup.delete", one)
                    assert deleted["deleted"] is True
                async with ws_client(daemon) as sam:
                    await sam.login("sam", PASSWORD)
                    for kind in ("backup.list", "backup.status", "backup.create"):
                        answer2 = await sam.call(kind, {"server": "game"})
                        assert answer2["status_code"] == NOT_FOUND, (kind, answer2)

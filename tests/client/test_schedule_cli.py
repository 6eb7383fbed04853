"""``leosuite schedule list|add|rm|run`` as subprocesses against the in-process daemon."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.cli import Cli
from tests.helpers.daemon import RunningDaemon
from tests.helpers.http import api_client
from tests.helpers.servers import FAST_DEMO


async def test_schedule_commands(daemon: RunningDaemon, tmp_path: Path) -> None:
    owner = Cli(tmp_path / "owner")
    with trio.fail_after(90):
        await add_account(daemon, "olga", "HOST")
        await owner.login(daemon.endpoints.http, "olga", PASSWORD)
        await owner.run("server", "create", "game", "-t", "demo-game",
                        *(f"--set={k}={v}" for k, v in FAST_DEMO.items()))  # fmt: skip
        assert (await owner.run("schedule", "list", "game")).stdout == b"(no schedules)\n"

        added = await owner.run(
            "schedule", "add", "game", "nightly", "--cron", "0 4 * * *",
            "--zone", "Europe/Berlin", "--step", "command say bye", "--step", "restart",
        )  # fmt: skip
        text = added.stdout.decode()
        assert text.startswith("nightly ")
        assert "cron 0 4 * * * Europe/Berlin: command say bye; restart" in text
        listed = await owner.json("schedule", "list", "game")
        assert [s["name"] for s in listed["schedules"]] == ["nightly"]
        assert listed["schedules"][0]["next_run"] > daemon.ctx.now()

        changed = await owner.json(
            "schedule", "add", "game", "nightly", "--every", "3600", "--step", "command save",
            "--replace",
        )  # fmt: skip
        assert changed["schedule"]["interval"] == 3600.0
        assert changed["schedule"]["steps"] == ["command save"]

        bad = await owner.run(
            "schedule", "add", "game", "x", "--cron", "0 4 * *", "--step", "stop", expect=1
        )
        assert b"five fields" in bad.stderr
        bad = await owner.run(
            "schedule", "add", "game", "x", "--every", "60", "--step", "wait -5", expect=1
        )
        assert b"wait needs 0 to 3600 seconds" in bad.stderr

        async with api_client(daemon, "olga") as olga:
            await olga.ok("server_start", {"server": "game"})
            await olga.wait_status("game", "running")
            ran = await owner.run("schedule", "run", "game", "nightly")
            assert ran.stdout == b"schedule nightly of game started\n"
            while True:
                listed = await owner.json("schedule", "list", "game")
                if listed["schedules"][0]["last_result"]:
                    break
                await trio.sleep(0.1)
            assert listed["schedules"][0]["last_result"] == "done (run now)"
            await olga.wait_log("game", b"Saving")

        removed = await owner.run("schedule", "rm", "game", "nightly")
        assert removed.stdout == b"deleted schedule nightly of game\n"
        await owner.run("schedule", "rm", "game", "nightly", expect=1)

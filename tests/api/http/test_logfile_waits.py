"""Log-file long polls and subscriptions end when they must: a destroyed server's
waiters get its error at once (the followers dropped, the watch gone), and the daemon's
``end_waits`` (what a stop or a reload calls) answers a log-file long poll at once with
what there is, as it does a console long poll. The reader is the least-privileged
account that may read (the ``console`` right, shared)."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import RunningDaemon, make_settings, running_daemon
from tests.helpers.http import Api, api_client
from tests.helpers.servers import command_settings
from tests.helpers.ws import ws_client

LOG = "logs/latest.log"


async def make_game(daemon: RunningDaemon, admin: Api) -> int:
    """The game (its log declared), shared with ``cora`` for ``console`` only; its id."""
    await admin.create("game", "command", command_settings("rotating_log", log_files=LOG))
    await add_account(daemon, "cora")
    share = {"server": "game", "account": "cora", "rights": ["console"]}
    await admin.ok("server_share_set", share)
    record = daemon.ctx.servers.find_record("game")
    assert record is not None
    return record.id


async def users(daemon: RunningDaemon, server_id: int, want: int) -> None:
    """Until ``want`` tasks use the game's log-file follower, its directory watched."""
    root = daemon.ctx.servers.dirs.server("game")
    follower = daemon.ctx.logfiles.get(server_id, root, ("logs", "latest.log"))
    while follower.statistics().users != want or daemon.ctx.logfiles.watching() != 1:
        await trio.sleep(0.02)


async def test_destroy_ends_log_file_polls_and_streams(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(90):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            server_id = await make_game(daemon, admin)
            (daemon.ctx.servers.dirs.server("game") / "logs").mkdir()
            answers: list[dict[str, object]] = []
            async with (
                api_client(daemon, "cora") as cora,
                ws_client(daemon) as ws,
            ):
                await ws.login("cora", PASSWORD)
                await ws.ok("logfile.subscribe", {"server": "game", "file": LOG})

                async def long_poll() -> None:
                    poll = {"server": "game", "file": LOG, "readIndex": 0, "wait": 25}
                    answers.append(await cora.error("server_logfile", poll, 404))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(long_poll)
                    # The stream's hold and its wait, and the poll's wait.
                    await users(daemon, server_id, 3)
                    await admin.ok("server_destroy", {"server": "game"})
                closed = (await ws.next_push("logfile_closed"))["content"]
                assert closed == {"server": "game", "file": LOG, "reason": "gone"}
            (answer,) = answers
            assert answer["error_message"] == "server 'game' was destroyed"
            assert daemon.ctx.logfiles.count(server_id) == 0
            assert daemon.ctx.logfiles.watching() == 0
            assert daemon.ctx.servers.find_record("game") is None


async def test_end_waits_answers_a_log_file_long_poll(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(90):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            server_id = await make_game(daemon, admin)
            logs = daemon.ctx.servers.dirs.server("game") / "logs"
            logs.mkdir()
            (logs / "latest.log").write_bytes(b"seen\n")
            poll = {"server": "game", "file": LOG, "readIndex": 5, "wait": 25}
            answers: list[dict[str, object]] = []
            async with api_client(daemon, "cora") as cora:

                async def long_poll() -> None:
                    answers.append(await cora.ok("server_logfile", poll))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(long_poll)
                    await users(daemon, server_id, 1)
                    daemon.ctx.servers.end_waits()  # what a stop or a reload calls first
                # From now on a poll answers at once too.
                answers.append(await cora.ok("server_logfile", poll))
            for answer in answers:
                assert (answer["oldReadIndex"], answer["data"], answer["readIndex"]) == (5, "", 5)

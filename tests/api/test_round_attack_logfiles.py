"""Hostile use of a server's log-file calls against a real daemon (the bulk power half is
test_round_attack.py): every call by an account without rights and with each single
right, from a foreign Host and Origin, with hostile names and globs matching thousands
of files; a reader that loses its right, its session or its server."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import trio

from leosuite.api.ws.logfiles import MAX_SUBSCRIPTIONS
from leosuite.supervision.logfile_registry import MAX_FOLLOWERS
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, make_settings, running_daemon
from tests.helpers.http import Api, api_client, assert_error
from tests.helpers.security import port_of
from tests.helpers.servers import command_settings
from tests.helpers.ws import ws_client

RIGHTS = ("console", "commands", "power", "files", "settings")
LOG = "logs/latest.log"


async def share(admin: Api, server: str, account: str, rights: list[str]) -> None:
    await admin.ok("server_share_set", {"server": server, "account": account, "rights": rights})


async def _admin_api_put(daemon: RunningDaemon, account_id: int, body: dict[str, Any]) -> None:
    async with daemon.admin(auth=("admin", ADMIN_PASSWORD)) as client:
        response = await client.put(f"/accounts/{account_id}", json=body)
        assert response.status_code == 200, response.text


async def _game(daemon: RunningDaemon, admin: Api, log_files: str = LOG) -> None:
    await admin.create("game", "command", command_settings("rotating_log", log_files=log_files))


async def test_logfile_calls_with_each_single_right(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            for account in ("none", *RIGHTS):
                await add_account(daemon, f"u-{account}", "HOST")
            await _game(daemon, admin)
            logs = daemon.ctx.servers.dirs.server("game") / "logs"
            logs.mkdir(exist_ok=True)
            (logs / "latest.log").write_bytes(b"secret line\n")
            for right in RIGHTS:
                await share(admin, "game", f"u-{right}", [right])
            read = {"server": "game", "file": LOG, "readIndex": 0}
            for account in ("none", *RIGHTS):
                async with api_client(daemon, f"u-{account}") as user:
                    for body in ({"server": "game"}, read, {**read, "wait": 0.1}):
                        response = await user.post("server_logfile", body)
                        if account == "console":
                            assert response.status_code == 200, response.text
                        else:
                            expected = 404 if account == "none" else 403
                            error = assert_error(response, expected)
                            assert "secret" not in json.dumps(error)
                    async with ws_client(daemon) as ws:
                        await ws.login(f"u-{account}", PASSWORD)
                        for kind, content in (
                            ("logfile.list", {"server": "game"}),
                            ("logfile.subscribe", {"server": "game", "file": LOG, "from": 0}),
                        ):
                            answer = await ws.call(kind, content)
                            if account == "console":
                                assert answer["status_code"] == 0, answer
                            else:
                                assert answer["status_code"] in (2, 8), answer
                                assert "secret" not in json.dumps(answer)


async def test_logfile_hostile_names_and_globs(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await _game(daemon, admin, log_files=f"{LOG},many/*.log")
            root = daemon.ctx.servers.dirs.server("game")
            many = root / "many"
            many.mkdir()
            for i in range(5000):
                (many / f"f{i:05d}.log").write_bytes(b"x\n")
            (root / "outside.txt").write_bytes(b"not a log\n")
            listing = await admin.ok("server_logfile", {"server": "game"})
            assert listing["truncated"] is True
            assert len(listing["files"]) <= 64
            read = {"server": "game", "readIndex": 0}
            for bad in (
                "../x",
                "many/../outside.txt",
                "/etc/passwd",
                "//etc/passwd",
                "many/\0.log",
                "a" * 5000,
                "many/" + "b" * 300 + ".log",
            ):
                error = await admin.error("server_logfile", {**read, "file": bad}, 400)
                assert error["error_message"].startswith("file"), (bad, error)
            for unknown in (
                "many/*.log",
                "many/f0000?.log",
                "many/[f]00001.log",
                "outside.txt",
                "many",
                "many/",
                "many/nosuch.log",
                "many/f00001.log.gz",
                "logs\\..\\outside.txt",
                "MANY/f00001.log",
            ):
                await admin.error("server_logfile", {**read, "file": unknown}, 404)
            for bad_type in (7, 1.5, ["many/f00001.log"], {"a": 1}):
                await admin.error("server_logfile", {**read, "file": bad_type}, 400)
            # any of the thousands of matches is readable, and followers stay bounded
            record = daemon.ctx.servers.find_record("game")
            assert record is not None
            for i in range(0, 5000, 19):
                answer = await admin.ok("server_logfile", {**read, "file": f"many/f{i:05d}.log"})
                assert answer["data"] == "x\n"
            assert daemon.ctx.logfiles.count(record.id) <= 128
            # a hostile log_files setting is refused before it is stored
            for hostile in ("/etc/passwd", "../x.log", "logs/../../x", "*/x.log", "a.log.gz"):
                await admin.error(
                    "server_settings", {"server": "game", "set": {"log_files": hostile}}, 400
                )


async def test_followers_in_use_of_one_server_stay_bounded(tmp_path: Path) -> None:
    """Many connections following many files a glob matches: past MAX_FOLLOWERS files of
    one server read at once, a new one is refused (the descriptors they hold stay
    bounded), and it is followed again once others are let go."""
    settings = make_settings(tmp_path / "data")
    connections = MAX_FOLLOWERS // MAX_SUBSCRIPTIONS + 1
    with trio.fail_after(180):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await _game(daemon, admin, log_files="many/*.log")
            many = daemon.ctx.servers.dirs.server("game") / "many"
            many.mkdir()
            total = connections * MAX_SUBSCRIPTIONS
            for i in range(total):
                (many / f"f{i:04d}.log").write_bytes(b"x\n")
            record = daemon.ctx.servers.find_record("game")
            assert record is not None
            refused: list[dict[str, Any]] = []
            async with AsyncExitStack() as stack:
                clients = [
                    await stack.enter_async_context(ws_client(daemon, login=True))
                    for _ in range(connections)
                ]
                for i in range(total):
                    client = clients[i // MAX_SUBSCRIPTIONS]
                    answer = await client.call(
                        "logfile.subscribe", {"server": "game", "file": f"many/f{i:04d}.log"}
                    )
                    if answer["status_code"] != 0:
                        refused.append(answer)
                assert daemon.ctx.logfiles.count(record.id) <= MAX_FOLLOWERS
                assert len(refused) == total - MAX_FOLLOWERS, refused[:3]
                assert "try again" in refused[0]["status_string"], refused[0]
                listing = await admin.ok("server_logfile", {"server": "game"})
                assert listing["files"], listing
                last = {"server": "game", "file": f"many/f{total - 1:04d}.log", "readIndex": 0}
                busy = await admin.error("server_logfile", last, 409)
                assert "try again later" in busy["error_message"]
                await clients[0].ok(
                    "logfile.unsubscribe", {"server": "game", "file": "many/f0000.log"}
                )
                again = {"server": "game", "file": f"many/f{total - 1:04d}.log"}
                while (
                    await admin.post("server_logfile", {**again, "readIndex": 0})
                ).status_code != 200:
                    await trio.sleep(0.05)  # the stream lets go once its task has ended


async def test_a_logfile_follower_loses_its_right_or_its_session(tmp_path: Path) -> None:
    """The console right taken away ends a subscription (``revoked``) and answers a long
    poll under way with 403, without the bytes written meanwhile; an ADMIN demoted has
    its session ended; a server destroyed ends its streams (``gone``)."""
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            cora_id = await add_account(daemon, "cora")
            boss_id = await add_account(daemon, "boss", "ADMIN")
            await _game(daemon, admin)
            logs = daemon.ctx.servers.dirs.server("game") / "logs"
            logs.mkdir()
            log = logs / "latest.log"
            log.write_bytes(b"one\n")
            await share(admin, "game", "cora", ["console"])
            async with (
                api_client(daemon, "cora") as cora,
                ws_client(daemon) as cora_ws,
                ws_client(daemon) as boss_ws,
            ):
                await cora_ws.login("cora", PASSWORD)
                await boss_ws.login("boss", PASSWORD)
                for ws in (cora_ws, boss_ws):
                    await ws.ok("logfile.subscribe", {"server": "game", "file": LOG, "from": 0})
                    first = (await ws.next_push("logfile_output"))["content"]
                    assert first["data"] == "one\n"
                poll = {"server": "game", "file": LOG, "readIndex": 4, "wait": 30}
                polled: list[httpx.Response] = []

                async def long_poll() -> None:
                    polled.append(await cora.post("server_logfile", poll))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(long_poll)
                    record = daemon.ctx.servers.find_record("game")
                    root = daemon.ctx.servers.dirs.server("game")
                    follower = daemon.ctx.logfiles.get(record.id, root, ("logs", "latest.log"))
                    while follower.statistics().users < 3:  # two streams and the poll
                        await trio.sleep(0.02)
                    await share(admin, "game", "cora", [])
                    with log.open("ab") as f:
                        f.write(b"secret two\n")
                closed = (await cora_ws.next_push("logfile_closed"))["content"]
                assert closed["reason"] == "revoked", closed
                (answer,) = polled
                assert answer.status_code in (403, 404), answer.text
                assert "secret" not in answer.text
                assert not any(
                    "secret" in json.dumps(p)
                    for p in cora_ws.pushes
                    if p["type"] != "session_closed"
                )
                await _admin_api_put(daemon, boss_id, {"admin": False})
                ended = await boss_ws.next_push("session_closed")
                assert ended["content"]["reason"], ended
                await share(admin, "game", "cora", ["console"])
                await cora_ws.ok("logfile.subscribe", {"server": "game", "file": LOG})
                await admin.ok("server_destroy", {"server": "game"})
                gone = (await cora_ws.next_push("logfile_closed"))["content"]
                assert gone["reason"] == "gone", gone
            assert cora_id != boss_id


async def test_logfile_calls_from_a_foreign_host_or_origin(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await _game(daemon, admin)
            port = port_of(daemon.endpoints.http)
            for headers in (
                {"Host": f"evil.example:{port}"},
                {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"},
            ):
                response = await admin.client.post(
                    "/api/server_logfile",
                    json={"server": "game", "file": LOG, "readIndex": 0},
                    headers={"Authorization": f"Bearer {admin.token}", **headers},
                )
                assert_error(response, 421)
            cross = await admin.client.post(
                "/api/server_logfile",
                content=json.dumps({"server": "game", "token": admin.token}),
                headers={"Origin": "http://evil.example", "Content-Type": "text/plain"},
            )
            assert cross.status_code == 415
            async with httpx.AsyncClient(base_url=daemon.endpoints.http) as anonymous:
                response = await anonymous.post(
                    "/api/server_logfile", json={"server": "game", "file": LOG}
                )
                assert_error(response, 403)

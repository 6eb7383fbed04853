"""A server's own log files over HTTP ``server_logfile`` and WebSocket ``logfile.*``: a
game rotating its log both ways while a reader follows it reads every byte once, in
order, at continuous indexes; a link the game plants is refused and never read
through; the console right covers it; hostile file names are refused."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import trio

from leosuite.api.ws.logfiles import MAX_SUBSCRIPTIONS
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import RunningDaemon, make_settings, running_daemon
from tests.helpers.http import Api, api_client
from tests.helpers.servers import command_settings
from tests.helpers.ws import ws_client

LOG = "logs/latest.log"


def lines(tag: str, count: int) -> bytes:
    """What ``write count tag`` appends (see tests/fixtures/rotating_log.py)."""
    return b"".join(
        f"{tag} {i}".encode() + (b" \xff\xfe" if i % 3 == 2 else b"") + b"\n" for i in range(count)
    )


async def command(api: Api, line: str, answer: str, start: int) -> int:
    """Type ``line`` into the game and wait for its ``answer``; the console's next index."""
    await api.ok("server_cmd", {"server": "game", "command": line})
    data = await api.wait_log("game", answer.encode() + b"\n", start)
    return start + len(data)


class Reader:
    """Long-polls the log file from index 0, checking that every answer starts where
    the previous one ended."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.data = b""
        self.index = 0
        self.changed = trio.Event()

    async def run(self) -> None:
        while True:
            answer = await self.api.ok(
                "server_logfile",
                {"server": "game", "file": LOG, "readIndex": self.index, "wait": 5},
            )
            assert answer["oldReadIndex"] == self.index, (answer, self.index)
            assert answer["encoding"] in ("utf-8", "base64")
            chunk = (
                base64.b64decode(answer["data"])
                if answer["encoding"] == "base64"
                else answer["data"].encode("utf-8")
            )
            assert answer["nextReadIndex"] == self.index + len(chunk)
            self.data += chunk
            self.index = answer["nextReadIndex"]
            self.changed.set()
            self.changed = trio.Event()

    async def until(self, expected: bytes) -> None:
        while len(self.data) < len(expected):
            await self.changed.wait()
        assert self.data == expected


async def make_game(daemon: RunningDaemon, admin: Api) -> None:
    settings = command_settings("rotating_log", log_files=f"{LOG}, logs/*.txt")
    await admin.create("game", "command", settings)


async def test_rotation_both_ways_reads_every_byte_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await make_game(daemon, admin)
            listing = await admin.ok("server_logfile", {"server": "game"})
            assert listing == {
                "server": "game",
                "files": [
                    {"file": LOG, "exists": False, "size": 0, "readIndex": 0, "oldestIndex": 0}
                ],
                "truncated": False,
            }
            assert daemon.ctx.logfiles.watching() == 0  # nobody reads: nothing watched
            expected = b""
            async with trio.open_nursery() as nursery:
                reader = Reader(admin)
                nursery.start_soon(reader.run)  # before the file exists: it is waited for
                await admin.ok("server_start", {"server": "game"})
                await admin.wait_status("game", "running")
                at = len(await admin.wait_log("game", b"ready\n"))
                while daemon.ctx.logfiles.watching() != 1:  # the long poll watches
                    await trio.sleep(0.05)
                for round_, rotate in enumerate(["rename", "truncate", "rename", "truncate"]):
                    at = await command(admin, f"write 40 r{round_}", f"wrote r{round_}", at)
                    expected += lines(f"r{round_}", 40)
                    await reader.until(expected)
                    answer = "renamed" if rotate == "rename" else "truncated"
                    at = await command(admin, rotate, answer, at)
                    at = await command(admin, f"write 5 a{round_}", f"wrote a{round_}", at)
                    expected += lines(f"a{round_}", 5)
                    await reader.until(expected)
                nursery.cancel_scope.cancel()
            assert reader.data == expected  # every byte once, in order
            listing = await admin.ok("server_logfile", {"server": "game"})
            (entry,) = listing["files"]
            assert entry["readIndex"] == len(expected)
            assert entry["size"] == len(lines("a3", 5))
            assert entry["oldestIndex"] == len(expected) - entry["size"]
            # Before the earliest readable byte: answered from there, as an overrun.
            old = await admin.ok("server_logfile", {"server": "game", "file": LOG, "readIndex": 0})
            assert old["oldReadIndex"] == entry["oldestIndex"]
            while daemon.ctx.logfiles.watching():  # the reader left: the watch goes
                await trio.sleep(0.05)

            # A subscription over the WebSocket API: backlog (with an overrun), then live.
            async with ws_client(daemon, login=True) as ws:
                answer = await ws.ok(
                    "logfile.subscribe", {"server": "game", "file": LOG, "from": 0}
                )
                assert answer == {"server": "game", "file": LOG, "readIndex": 0}
                overrun = (await ws.next_push("logfile_overrun"))["content"]
                assert overrun == {
                    "server": "game",
                    "file": LOG,
                    "skipped": entry["oldestIndex"],
                    "readIndex": entry["oldestIndex"],
                }
                at = await command(admin, "write 3 live", "wrote live", at)
                got = b""
                while not got.endswith(lines("live", 3)):
                    push = (await ws.next_push("logfile_output"))["content"]
                    assert push["readIndex"] == entry["oldestIndex"] + len(got)
                    data = push["data"]
                    got += base64.b64decode(data) if push["encoding"] == "base64" else data.encode()
                assert got == lines("a3", 5) + lines("live", 3)
                assert daemon.ctx.logfiles.watching() == 1
                assert await ws.ok("logfile.unsubscribe", {"server": "game", "file": LOG}) is None
                again = await ws.call("logfile.unsubscribe", {"server": "game", "file": LOG})
                assert again["status_code"] == 5
                while daemon.ctx.logfiles.watching():
                    await trio.sleep(0.05)


async def test_a_link_planted_by_the_game_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    secret = b"secret bytes from outside the server\n"
    outside.write_bytes(secret)
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(90):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await make_game(daemon, admin)
            await admin.ok("server_start", {"server": "game"})
            await admin.wait_status("game", "running")
            at = len(await admin.wait_log("game", b"ready\n"))
            at = await command(admin, "write 2 x", "wrote x", at)
            async with ws_client(daemon, login=True) as ws:
                await ws.ok("logfile.subscribe", {"server": "game", "file": LOG, "from": 0})
                first = (await ws.next_push("logfile_output"))["content"]
                assert first["data"] == "x 0\nx 1\n"
                at = await command(admin, f"link {outside}", "linked", at)
                # The daemon looks again on a change in the directory, or after a while.
                await command(admin, "write 1 y", "wrote y", at)
                closed = (await ws.next_push("logfile_closed"))["content"]
                assert closed["reason"] == "refused"
                assert "symbolic link" in closed["message"]
                outputs = [p for p in ws.pushes if p["type"] == "logfile_output"]
                assert all("secret" not in str(p) and "y 0" not in str(p) for p in outputs)
            refused = await admin.error(
                "server_logfile", {"server": "game", "file": LOG, "readIndex": 0}, 400
            )
            assert refused["error_type"] == "invalid"
            assert "symbolic link" in refused["error_message"]
            assert "secret" not in str(refused)
            listing = await admin.ok("server_logfile", {"server": "game"})
            (entry,) = listing["files"]
            assert entry["file"] == LOG
            assert "symbolic link" in entry["error"]
            refused_ws = await _ws_call(
                daemon, "logfile.subscribe", {"server": "game", "file": LOG}
            )
            assert refused_ws["status_code"] == 12
            assert "secret" not in str(refused_ws)
            # The game wrote through its own link: those bytes are outside, never read.
            assert outside.read_bytes() == secret + b"y 0\n"


async def _ws_call(daemon: RunningDaemon, kind: str, content: Any) -> dict[str, Any]:
    async with ws_client(daemon, login=True) as ws:
        return await ws.call(kind, content)


async def test_rights_and_hostile_names(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(90):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await add_account(daemon, "sam", "HOST")
            await add_account(daemon, "finn")
            await add_account(daemon, "cora")
            await make_game(daemon, admin)
            for account, rights in (("finn", ["files", "power"]), ("cora", ["console"])):
                share = {"server": "game", "account": account, "rights": rights}
                await admin.ok("server_share_set", share)
            read = {"server": "game", "file": LOG, "readIndex": 0}
            async with api_client(daemon, "sam") as sam:
                for body in ({"server": "game"}, read):
                    await sam.error("server_logfile", body, 404)
            async with api_client(daemon, "finn") as finn:
                for body in ({"server": "game"}, read):
                    denied = await finn.error("server_logfile", body, 403)
                    assert denied["error_type"] == "permission_denied"
            async with ws_client(daemon) as ws:
                await ws.login("finn", PASSWORD)
                denied_ws = await ws.call("logfile.subscribe", {"server": "game", "file": LOG})
                assert denied_ws["status_code"] != 0
            async with api_client(daemon, "cora") as cora:
                assert (await cora.ok("server_logfile", read))["readIndex"] == 0
                for bad in ("../latest.log", "/etc/hostname", "logs/../../x", "logs/\0x"):
                    invalid = await cora.error("server_logfile", {**read, "file": bad}, 400)
                    assert invalid["error_message"].startswith("file"), invalid
                for unknown in ("logs/other.log", "logs/*.txt", "logs", "", "logs/a.txt.gz"):
                    await cora.error("server_logfile", {**read, "file": unknown}, 404)
                beyond = await cora.error("server_logfile", {**read, "readIndex": 5}, 400)
                assert "readIndex" in beyond["error_message"]
            # A glob's matches are declared files; compressed ones are not.
            logs = daemon.ctx.servers.dirs.server("game") / "logs"
            logs.mkdir()
            (logs / "chat.txt").write_bytes(b"hello\n")
            (logs / "old.txt.gz").write_bytes(b"\x1f\x8b")
            listing = await admin.ok("server_logfile", {"server": "game"})
            assert [f["file"] for f in listing["files"]] == [LOG, "logs/chat.txt"]
            chat = await admin.ok("server_logfile", {**read, "file": "logs/chat.txt"})
            assert chat["data"] == "hello\n"


async def test_a_rotated_away_file_emptied_is_an_overrun_not_a_spin(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(90):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await make_game(daemon, admin)
            logs = daemon.ctx.servers.dirs.server("game") / "logs"
            logs.mkdir()
            (logs / "latest.log").write_bytes(b"first\n" * 10)
            async with ws_client(daemon, login=True) as live, ws_client(daemon, login=True) as ws:
                await live.ok("logfile.subscribe", {"server": "game", "file": LOG})
                while daemon.ctx.logfiles.watching() != 1:  # its stream holds the file
                    await trio.sleep(0.02)
                (logs / "latest.log").rename(logs / "old.log")  # what the game does
                (logs / "latest.log").write_bytes(b"second\n")
                listing = await admin.ok("server_logfile", {"server": "game"})
                assert (listing["files"][0]["oldestIndex"], listing["files"][0]["readIndex"]) == (
                    0,
                    67,
                )
                (logs / "old.log").write_bytes(b"")  # the old file emptied: 60 bytes gone
                await ws.ok("logfile.subscribe", {"server": "game", "file": LOG, "from": 0})
                overrun = (await ws.next_push("logfile_overrun"))["content"]
                assert (overrun["skipped"], overrun["readIndex"]) == (60, 60)
                output = (await ws.next_push("logfile_output"))["content"]
                assert (output["readIndex"], output["data"]) == (60, "second\n")
                poll = {"server": "game", "file": LOG, "readIndex": 0, "wait": 30}
                answer = await admin.ok("server_logfile", poll)
                assert (answer["oldReadIndex"], answer["data"]) == (60, "second\n")


async def test_only_files_that_exist_are_followed_and_subscriptions_are_capped(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(90):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await make_game(daemon, admin)
            logs = daemon.ctx.servers.dirs.server("game") / "logs"
            logs.mkdir()
            names = [f"logs/p{i:02d}.txt" for i in range(MAX_SUBSCRIPTIONS + 1)]
            for name in names:
                (logs / name.removeprefix("logs/")).write_bytes(b"x\n")
            game_id = daemon.ctx.servers.find_record("game")
            assert game_id is not None
            # An invented name a glob matches is no file: 404, and nothing is followed.
            invented = {"server": "game", "file": "logs/invented.txt", "readIndex": 0}
            await admin.error("server_logfile", invented, 404)
            async with ws_client(daemon, login=True) as ws:
                refused = await ws.call(
                    "logfile.subscribe", {"server": "game", "file": "logs/x.txt"}
                )
                assert refused["status_code"] == 8
                assert daemon.ctx.logfiles.count(game_id.id) == 0
                for name in names[:MAX_SUBSCRIPTIONS]:
                    await ws.ok("logfile.subscribe", {"server": "game", "file": name})
                over = await ws.call("logfile.subscribe", {"server": "game", "file": names[-1]})
                assert over["status_code"] == 5
                await ws.ok("logfile.unsubscribe", {"server": "game", "file": names[0]})
                await ws.ok("logfile.subscribe", {"server": "game", "file": names[-1]})
            # A declared path itself is still waited for before it exists.
            waited = await admin.ok("server_logfile", {"server": "game", "file": LOG})
            assert (waited["readIndex"], waited["data"]) == (0, "")

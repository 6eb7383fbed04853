"""Bad input and faulty children against the server API (issue 4's list), over real
HTTP with real child processes: each answer is the documented JSON error, nothing
changes, and the daemon stays responsive."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest
import trio

from tests.fixtures import INVALID_UTF8, fixture_argv
from tests.helpers.daemon import RunningDaemon, login, make_settings, running_daemon
from tests.helpers.http import Api, api_client, assert_error, decode_data
from tests.helpers.servers import FAST_DEMO, command_settings, pid_alive, wait_gone

MiB = 1024 * 1024

BAD_NAMES = [
    "a/b",
    "../escape",
    "..",
    ".",
    "a\0b",
    "x" * 65,
    "-leading",
    "Upper",
    "",
    "with space",
    "a.b",
    "tab\t",
    "new\nline",
    "é",
]


async def nothing_created(api: Api, daemon: RunningDaemon, before: list[str]) -> None:
    assert (await api.ok("server_list"))["servers"] == before
    servers = daemon.daemon.data_dir / "servers"
    on_disk = sorted(p.name for p in servers.iterdir()) if servers.exists() else []
    assert on_disk == before


# ---------------------------------------------------------------- names, types, variables


async def test_bad_server_names_are_400_everywhere(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            await api.create("x" * 64, "demo-game", FAST_DEMO)  # 64 is the longest allowed
            before = ["x" * 64]
            for name in BAD_NAMES:
                body = {"server": name, "type": "demo-game", "settings": FAST_DEMO}
                error = await api.error("server_create", body, 400)
                assert "server" in error["error_message"], error
                for path in ("server_status", "server_start", "server_settings", "server_destroy"):
                    await api.error(path, {"server": name}, 400)
                await api.error("server_log", {"server": name, "readIndex": 0}, 400)
                await api.error("server_cmd", {"server": name, "command": "x"}, 400)
            await api.error("server_create", {"server": 7, "type": "demo-game"}, 400)
            await api.error("server_create", {"type": "demo-game"}, 400)
            await nothing_created(api, daemon, before)
            assert not (daemon.daemon.data_dir.parent / "escape").exists()


@pytest.mark.parametrize(
    ("type_name", "given", "field"),
    [
        ("no-such-type", {}, "type"),
        ("../command", {}, "type"),
        # A variable's error names its label (what the forms show).
        ("command", {}, "Command line"),  # required variable missing
        ("command", {"command": ""}, "Command line"),
        ("command", {"command": "   "}, "Command line"),
        ("command", {"command": "unbalanced 'quote"}, "Command line"),
        ("command", {"command": 42}, "Command line"),
        ("minecraft", {}, "jar"),
        ("demo-game", {"port": "25565"}, "Port"),
        ("demo-game", {"port": 70000}, "Port"),
        ("demo-game", {"port": 0}, "Port"),
        ("demo-game", {"port": True}, "Port"),
        ("demo-game", {"ready_delay": "soon"}, "Ready delay"),
        ("demo-game", {"ready_delay": -1}, "Ready delay"),
        ("demo-game", {"flood": "yes"}, "Flood the console"),
        ("demo-game", {"autostart": 1}, "Autostart"),
        ("demo-game", {"restart": "sometimes"}, "Restart"),
        ("demo-game", {"stop_timeout": "10"}, "Stop timeout"),
        ("demo-game", {"max_restarts": 1.5}, "Max quick restarts"),
        ("demo-game", {"no_such_variable": 1}, "no_such_variable"),
        ("demo-game", {"port": None}, "port"),
    ],
)
async def test_bad_type_or_variables_are_400(
    daemon: RunningDaemon, type_name: str, given: dict[str, Any], field: str
) -> None:
    with trio.fail_after(20):
        async with api_client(daemon) as api:
            body = {"server": "srv", "type": type_name, "settings": given}
            error = await api.error("server_create", body, 400)
            assert field in error["error_message"], error
            await nothing_created(api, daemon, [])


async def test_malformed_bodies_are_400(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with api_client(daemon) as api:
            headers = {"Authorization": f"Bearer {api.token}"}
            for content, ctype in (
                (b"{", "application/json"),
                (b"[]", "application/json"),
                (b'{"server": "a", "type": "demo-game", "settings": []}', "application/json"),
                (b'{"server": "a", "type": "demo-game", "bogus": 1}', "application/json"),
                (b"\xff\xfe", "application/json"),
                (b'{"server": "a", "type": "demo-game"}', "text/plain"),
            ):
                response = await api.client.post(
                    "/api/server_create",
                    content=content,
                    headers={**headers, "Content-Type": ctype},
                )
                assert_error(response, 415 if ctype == "text/plain" else 400)
            await nothing_created(api, daemon, [])


async def test_create_existing_and_readonly_change_change_nothing(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with api_client(daemon) as api:
            await api.create("mc", "minecraft", {"jar": "a.jar"})
            before = await api.ok("server_settings", {"server": "mc"})
            body = {"server": "mc", "type": "minecraft", "settings": {"jar": "b.jar"}}
            await api.error("server_create", body, 409)
            await api.error("server_settings", {"server": "mc", "set": {"jar": "b.jar"}}, 400)
            await api.error(
                "server_settings", {"server": "mc", "set": {"jar": "b.jar", "memory": 512}}, 400
            )
            assert await api.ok("server_settings", {"server": "mc"}) == before
            await nothing_created(api, daemon, ["mc"])


# ---------------------------------------------------------------- commands and power states


async def test_bad_commands(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            await api.create("echo", "command", command_settings("echo"))
            await api.error("server_cmd", {"server": "echo", "command": "hello"}, 409)
            await api.ok("server_start", {"server": "echo"})
            await api.wait_log("echo", b"ready\n")
            for line in ("two\nlines", "nul\0byte", "cr\rhere", "trailing\n"):
                await api.error("server_cmd", {"server": "echo", "command": line}, 400)
            await api.error("server_cmd", {"server": "echo", "command": 5}, 400)
            await api.error("server_cmd", {"server": "echo"}, 400)
            # 1 MB: fits the 1 MiB body limit, not the command cap
            huge = "y" * 1_000_000
            await api.error("server_cmd", {"server": "echo", "command": huge}, 413)
            assert (await api.status("echo"))["status"] == "running"
            mark = (await api.status("echo"))["readIndex"]
            await api.ok("server_cmd", {"server": "echo", "command": "still alive"})
            data = await api.wait_log("echo", b"echo: still alive\n", start=mark)
            assert data == b"echo: still alive\n"  # nothing of the refused commands got through
            console = (await api.read_log("echo"))[0]
            assert b"lines" not in console
            assert b"yyyy" not in console
            await api.ok("server_stop", {"server": "echo"})
            await api.error("server_cmd", {"server": "echo", "command": "hello"}, 409)


async def test_start_running_stop_stopped_are_409(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            await api.create("echo", "command", command_settings("echo"))
            await api.error("server_stop", {"server": "echo"}, 409)
            await api.error("server_kill", {"server": "echo"}, 409)
            assert (await api.status("echo"))["status"] == "stopped"
            await api.ok("server_start", {"server": "echo"})
            pid = (await api.wait_status("echo", "running"))["pid"]
            await api.error("server_start", {"server": "echo"}, 409)
            status = await api.status("echo")
            assert status["status"] == "running"
            assert status["pid"] == pid
            await api.ok("server_stop", {"server": "echo"})
            await api.error("server_stop", {"server": "echo"}, 409)


async def test_start_and_stop_racing_from_two_clients(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        async with api_client(daemon) as one, api_client(daemon) as two:
            await one.create("echo", "command", command_settings("echo"))
            codes: list[int] = []

            async def call(api: Api, path: str) -> None:
                response = await api.post(path, {"server": "echo"})
                codes.append(response.status_code)
                if response.status_code != 200:
                    assert_error(response, 409)

            for round_ in range(6):
                async with trio.open_nursery() as nursery:
                    paths = ("server_start", "server_stop", "server_start", "server_restart")
                    for i, path in enumerate(paths):
                        nursery.start_soon(call, (one, two)[(i + round_) % 2], path)
                status = await one.wait_status("echo", "running", "stopped")
                assert await two.status("echo") == status or status["status"] == "running"
                if status["status"] == "running":
                    assert pid_alive(status["pid"])
                    await one.ok("server_stop", {"server": "echo"})
                    await wait_gone([status["pid"]])
                else:
                    assert status["pid"] is None
            assert set(codes) <= {200, 409}, codes
            assert 200 in codes, codes
            assert (await one.status("echo"))["status"] == "stopped"


# ---------------------------------------------------------------- faulty children


async def test_child_ignoring_sigterm_is_killed_on_time(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            await api.create("stubborn", "command", command_settings("unkillable"))
            await api.ok("server_start", {"server": "stubborn"})
            pid = (await api.wait_status("stubborn", "running"))["pid"]
            await api.wait_log("stubborn", b"ready\n")
            started = trio.current_time()
            assert (await api.ok("server_stop", {"server": "stubborn"}))["status"] == "stopped"
            took = trio.current_time() - started
            assert 0.9 < took < 1 * 2 + 1.5, took  # stop_timeout 1: SIGTERM, wait 1 s, SIGKILL
            assert not pid_alive(pid)
            status = await api.status("stubborn")
            assert status["status"] == "stopped"
            assert status["exit_code"] == -9
            text = (await api.read_log("stubborn"))[0].decode()
            assert "SIGKILL" in text

            # demo-game with ignore_sigterm, stopped by server_kill (SIGTERM then SIGKILL)
            settings = {**FAST_DEMO, "ignore_sigterm": True}
            await api.create("demo", "demo-game", settings)
            await api.ok("server_start", {"server": "demo"})
            pid = (await api.wait_status("demo", "running"))["pid"]
            started = trio.current_time()
            assert (await api.ok("server_kill", {"server": "demo"}))["status"] == "stopped"
            assert trio.current_time() - started < 1 * 2 + 1.5
            assert not pid_alive(pid)


async def test_grandchildren_die_with_the_group(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            await api.create("forker", "command", command_settings("forker", 3))
            await api.ok("server_start", {"server": "forker"})
            pid = (await api.wait_status("forker", "running"))["pid"]
            text = (await api.wait_log("forker", b"ready\n")).decode()
            children = [int(p) for p in re.findall(r"child (\d+)", text)]
            assert len(children) == 3
            assert all(pid_alive(c) for c in children)
            assert all(psutil.Process(c).ppid() == pid for c in children)
            await api.ok("server_stop", {"server": "forker"})
            with trio.fail_after(3):
                await wait_gone([pid, *children])

            # the leader dying on its own takes the grandchildren with it too; its output
            # is read from where the console stood before the start (it may be ready first)
            start = (await api.status("forker"))["readIndex"]
            await api.ok("server_start", {"server": "forker"})
            status = await api.wait_status("forker", "running")
            data = await api.wait_log("forker", b"ready\n", start=start)
            children = [int(p) for p in re.findall(r"child (\d+)", data.decode())]
            assert len(children) == 3
            psutil.Process(status["pid"]).kill()
            await api.wait_status("forker", "crashed")
            with trio.fail_after(3):
                await wait_gone([status["pid"], *children])


async def test_child_that_closes_stdin(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            await api.create("deaf", "command", command_settings("closes_stdin"))
            await api.ok("server_start", {"server": "deaf"})
            await api.wait_log("deaf", b"stdin closed\n")
            for _ in range(2):
                with trio.fail_after(2):
                    error = await api.error("server_cmd", {"server": "deaf", "command": "hi"}, 409)
                assert "stdin" in error["error_message"]
            assert (await api.status("deaf"))["status"] == "running"
            with trio.fail_after(5):
                await api.ok("server_stop", {"server": "deaf"})


async def test_crash_loop_backs_off_then_stays_crashed(daemon: RunningDaemon) -> None:
    """Backoff is 1 s then 2 s of real time: the daemon's Fleet takes the default
    Backoff (no setting injects it), so this test takes ~3 s."""
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            settings = command_settings("crash", 3, restart="on-failure", max_restarts=2)
            await api.create("crashy", "command", settings)
            started = trio.current_time()
            answer = await api.ok("server_start", {"server": "crashy"})
            assert answer["status"] in ("starting", "running", "crashed", "backoff")
            seen: set[str] = set()
            while True:
                status = await api.status("crashy")
                seen.add(status["status"])
                if status["status"] == "crashed" and status["restarts"] == 2:
                    break
                await trio.sleep(0.02)
            assert "backoff" in seen, seen
            assert trio.current_time() - started >= 2.5  # 1 s + 2 s of backoff
            assert status["exit_code"] == 3
            assert status["pid"] is None
            await trio.sleep(1.5)  # nothing more happens
            status = await api.status("crashy")
            assert status["status"] == "crashed"
            assert status["restarts"] == 2
            text = (await api.read_log("crashy"))[0].decode()
            assert text.count("crash.py exiting with 3") == 3
            assert "not restarting" in text
            # a manual start is allowed again from crashed
            assert (await api.ok("server_start", {"server": "crashy"}))["status"] in (
                "starting",
                "running",
                "crashed",
                "backoff",
            )
            await api.ok("server_force_kill", {"server": "crashy"})

            # restart never: crashed at once, no restarts
            await api.create("once", "command", command_settings("crash", 1, restart="never"))
            await api.ok("server_start", {"server": "once"})
            status = await api.wait_status("once", "crashed")
            assert status["restarts"] == 0
            assert status["exit_code"] == 1


async def test_invalid_utf8_is_returned_losslessly(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with api_client(daemon) as api:
            await api.create("bin", "command", command_settings("invalid_utf8", "--sleep"))
            await api.ok("server_start", {"server": "bin"})
            await api.wait_log("bin", INVALID_UTF8)
            console, end = await api.read_log("bin")
            start = console.index(INVALID_UTF8)
            answer = await api.ok("server_log", {"server": "bin", "readIndex": start})
            assert answer["encoding"] == "base64"
            assert decode_data(answer) == console[start:end]
            assert decode_data(answer).startswith(INVALID_UTF8)
            # base64 on request, even for text
            asked = await api.ok(
                "server_log", {"server": "bin", "readIndex": 0, "encoding": "base64"}
            )
            assert asked["encoding"] == "base64"
            assert decode_data(asked) == console[: asked["nextReadIndex"]]
            # the bytes on disk are the bytes the child wrote
            on_disk = (daemon.daemon.data_dir / "logs" / "bin" / "console.log").read_bytes()
            assert INVALID_UTF8 in on_disk
            body = {"server": "bin", "readIndex": start, "encoding": "utf-8"}
            await api.error("server_log", body, 400)
            await api.error("server_log", {**body, "encoding": "latin-1"}, 400)
            await api.ok("server_force_kill", {"server": "bin"})


async def test_output_without_newline_keeps_memory_bounded(daemon: RunningDaemon) -> None:
    total = 20 * MiB
    with trio.fail_after(60):
        async with api_client(daemon) as api:
            await api.create("blob", "command", command_settings("no_newline", total))
            me = psutil.Process()
            before = me.memory_info().rss
            await api.ok("server_start", {"server": "blob"})
            while (status := await api.status("blob"))["readIndex"] < total:
                await trio.sleep(0.05)
            grown = me.memory_info().rss - before
            assert grown < 100 * MiB, grown
            assert status["status"] == "running"
            tail = await api.ok(
                "server_log", {"server": "blob", "readIndex": status["readIndex"] - 10}
            )
            assert tail["data"] == "x" * 10
            await api.ok("server_force_kill", {"server": "blob"})


async def test_status_stays_prompt_while_a_server_floods(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        async with api_client(daemon) as api, daemon.http() as other:
            token = await login(other)
            await api.create("flood", "command", command_settings("flood", 10**12))
            await api.ok("server_start", {"server": "flood"})
            while (await api.status("flood"))["readIndex"] < 4 * MiB:
                await trio.sleep(0.05)
            slowest = 0.0
            for _ in range(50):
                started = trio.current_time()
                response = await other.post(
                    "/api/server_status",
                    json={"server": "flood"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                slowest = max(slowest, trio.current_time() - started)
                assert response.status_code == 200, response.text
                assert response.json()["status"] == "running"
            assert slowest < 2.0, slowest
            before = (await api.status("flood"))["readIndex"]
            await trio.sleep(0.2)
            assert (await api.status("flood"))["readIndex"] > before  # still capturing
            with trio.fail_after(5):
                await api.ok("server_force_kill", {"server": "flood"})


# ---------------------------------------------------------------- readIndex and wait


async def test_read_index_bounds_overrun_and_capped_wait(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data",
        servers={
            "console_file_max_bytes": 65536,
            "console_keep_files": 1,
            "console_ring_bytes": 65536,
            "log_max_wait": 0.5,
        },
    )
    with trio.fail_after(40):
        async with running_daemon(settings) as daemon, api_client(daemon) as api:
            await api.create("flood", "command", command_settings("flood", MiB))
            await api.ok("server_start", {"server": "flood"})
            # an exit nobody asked for is a crash, even with code 0
            assert (await api.wait_status("flood", "crashed"))["exit_code"] == 0
            end = (await api.status("flood"))["readIndex"]
            assert end > MiB

            for bad in (end + 1, end + 10**12, -1, -(10**9)):
                error = await api.error("server_log", {"server": "flood", "readIndex": bad}, 400)
                assert "readIndex" in error["error_message"]
                await api.error("server_log", {"server": "flood", "readIndex": bad, "wait": 1}, 400)
            await api.error("server_log", {"server": "flood", "readIndex": 2**70}, 400)

            answer = await api.ok("server_log", {"server": "flood", "readIndex": 0})
            old = answer["oldReadIndex"]
            assert old > 0, (old, end)
            assert old >= end - 3 * 65536, (old, end)
            assert answer["nextReadIndex"] == old + len(decode_data(answer))
            assert answer["readIndex"] == end
            # from there on everything is contiguous, and max is capped by log_max_read
            index, pieces = old, []
            while index < end:
                body = {"server": "flood", "readIndex": index, "max": 10**9}
                piece = await api.ok("server_log", body)
                assert piece["oldReadIndex"] == index
                data = decode_data(piece)
                assert 0 < len(data) <= 64 * 1024
                pieces.append(data)
                index = piece["nextReadIndex"]
            assert index == end
            assert b"exited" in b"".join(pieces) or b"exit" in b"".join(pieces)

            # wait of 10 000 s is capped by servers.log_max_wait (0.5 s here)
            started = trio.current_time()
            body = {"server": "flood", "readIndex": end, "wait": 10000}
            answer = await api.ok("server_log", body)
            took = trio.current_time() - started
            assert 0.4 < took < 3, took
            assert answer == {
                "oldReadIndex": end,
                "nextReadIndex": end,
                "readIndex": end,
                "data": "",
                "encoding": "utf-8",
            }
            huge = {"server": "flood", "readIndex": end, "wait": 1e300}
            with trio.fail_after(3):
                await api.ok("server_log", huge)


async def test_destroy_while_long_polling(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            await api.create("echo", "command", command_settings("echo"))
            await api.ok("server_start", {"server": "echo"})
            await api.wait_log("echo", b"ready\n")
            pid = (await api.status("echo"))["pid"]
            end = (await api.status("echo"))["readIndex"]
            async with trio.open_nursery() as nursery:
                codes: list[int] = []

                async def poll() -> None:
                    body = {"server": "echo", "readIndex": end + 200, "wait": 20}
                    codes.append((await api.post("server_log", body)).status_code)
                    body = {"server": "echo", "readIndex": end, "wait": 20}
                    codes.append((await api.post("server_log", body)).status_code)

                nursery.start_soon(poll)
                await trio.sleep(0.2)
                response = await api.post("server_destroy", {"server": "echo"})
                assert response.status_code == 204
            assert codes[0] == 400, codes
            assert codes[1] in (200, 404), codes
            assert not pid_alive(pid)


def test_fixture_commands_quote_cleanly() -> None:
    """The command strings the tests give the ``command`` type round-trip through shlex."""
    argv = fixture_argv("echo", "a b", "c'd")
    assert shlex.split(command_settings("echo", "a b", "c'd")["command"]) == argv


async def test_stop_while_starting_and_while_in_backoff(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            await api.create("slow", "demo-game", {**FAST_DEMO, "ready_delay": 60})
            assert (await api.ok("server_start", {"server": "slow"}))["status"] == "starting"
            pid = (await api.status("slow"))["pid"]
            await api.wait_log("slow", b"Loading world")
            assert (await api.ok("server_stop", {"server": "slow"}))["status"] == "stopped"
            status = await api.status("slow")
            assert status["exit_code"] == 0  # it obeyed the stop command
            assert not pid_alive(pid)

            settings = command_settings("crash", 2, restart="always", max_restarts=5)
            await api.create("loop", "command", settings)
            await api.ok("server_start", {"server": "loop"})
            await api.wait_status("loop", "backoff")
            assert (await api.ok("server_stop", {"server": "loop"}))["status"] == "stopped"
            await trio.sleep(1.3)  # past the first backoff delay: no restart happened
            status = await api.status("loop")
            assert status["status"] == "stopped"
            assert status["restarts"] == 0
            await api.error("server_stop", {"server": "loop"}, 409)

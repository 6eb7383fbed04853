"""Servers outlive the daemon: after ``kill -9`` of a real daemon process its servers
run on with the same pids, and the daemon started again on the same data directory
re-adopts them (console continuous, commands reach them, nothing started twice); a
server that ended meanwhile is shown crashed with the reason and its restart policy
applies; a recorded pid that now names another process is never adopted; twenty
reloads in a row leave a flooding server and its console untouched."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import trio

from tests.helpers.daemon_process import Served, api_at, reaping, serving
from tests.helpers.http import Api
from tests.helpers.servers import FAST_DEMO, pid_alive, wait_gone
from tests.helpers.store import store_sql

#: Numbered lines, whole lines per write, spread over a few seconds; then END and a wait.
FLOODER = """
import os, sys, time
n, pause = int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.003
for start in range(0, n, 200):
    os.write(1, b"".join(b"%08d\\n" % i for i in range(start, min(n, start + 200))))
    time.sleep(pause)
os.write(1, b"END\\n")
time.sleep(300)
"""
LINES = 200_000


def command(*argv: str) -> str:
    return shlex.join(argv)


@asynccontextmanager
async def up(run: Served) -> AsyncIterator[Api]:
    """The API of ``run`` once it serves."""
    endpoints = await run.wait_generation(0)
    async with api_at(endpoints["http"]) as api:
        yield api


def copies(marker: str) -> list[int]:
    """Processes whose command line holds ``marker``."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and marker in cmdline:
            found.append(proc.info["pid"])
    return found


def numbered(console: bytes) -> list[int]:
    """The flooder's numbers, in console order (the daemon's own lines left out)."""
    return [int(line) for line in re.findall(rb"^(\d{8})$", console, re.MULTILINE)]


async def create_fleet(api: Api, tmp_path: Path) -> None:
    script = tmp_path / "flooder.py"
    script.write_text(FLOODER)
    await api.create(
        "flooder", "command", {"command": command(sys.executable, str(script), str(LINES))}
    )
    await api.create("game", "demo-game", {**FAST_DEMO, "port": 27001})
    await api.create(
        "sleeper",
        "command",
        {"command": command("sleep", "301"), "autostart": True, "restart": "always"},
    )


async def test_kill_9_leaves_every_server_running_and_the_next_daemon_adopts_them(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    with trio.fail_after(90), reaping() as leftovers:
        async with serving(tmp_path) as first, up(first) as api:
            await create_fleet(api, tmp_path)
            for name in ("flooder", "game", "sleeper"):
                await api.ok("server_start", {"server": name})
            await api.wait_status("game", "running")
            before = {name: (await api.status(name))["pid"] for name in ("flooder", "game")}
            before["sleeper"] = (await api.wait_status("sleeper", "running"))["pid"]
            leftovers.extend(before.values())
            # Kill the daemon while the flooder is half-way.
            while (await api.status("flooder"))["readIndex"] < LINES * 9 // 4:
                await trio.sleep(0.01)
            first.proc.send_signal(signal.SIGKILL)
            await first.proc.wait()
        for name, pid in before.items():
            assert pid_alive(pid), name
        assert copies("301") == [before["sleeper"]]

        async with serving(tmp_path) as second, up(second) as api:
            for name, pid in before.items():
                status = await api.status(name)
                assert (status["status"], status["pid"]) == ("running", pid), status
                assert status["uptime"] > 0
            # Autostart did not start a second sleeper beside the adopted one.
            assert copies("301") == [before["sleeper"]]
            # The console goes on live, every numbered line there once, in order.
            console = await api.wait_log("flooder", b"END\n")
            assert numbered(console) == list(range(LINES))
            # Commands reach the adopted game; its stop works through the daemon.
            end = (await api.status("game"))["readIndex"]
            await api.ok("server_cmd", {"server": "game", "command": "say hello again"})
            await api.wait_log("game", b"hello again", start=end)
            await api.ok("server_stop", {"server": "game"})
            assert (await api.status("game"))["status"] == "stopped"
            await api.ok("server_kill", {"server": "flooder"})
            assert not pid_alive(before["flooder"])
            # A stop of an adopted server leaves nothing recorded to adopt again.
            assert read_processes(data) == {"sleeper": before["sleeper"]}
            assert await second.terminate() == 0
        await wait_gone([before["sleeper"]])


async def test_a_server_that_ended_while_the_daemon_was_down_is_shown_and_restarted(
    tmp_path: Path,
) -> None:
    with trio.fail_after(60), reaping() as leftovers:
        async with serving(tmp_path) as first, up(first) as api:
            await api.create(
                "once",
                "command",
                {"command": command("sleep", "302"), "restart": "never"},
            )
            await api.create(
                "again",
                "command",
                {"command": command("sleep", "303"), "restart": "on-failure"},
            )
            pids = {}
            for name in ("once", "again"):
                await api.ok("server_start", {"server": name})
                pids[name] = (await api.wait_status(name, "running"))["pid"]
            leftovers.extend(pids.values())
            first.proc.send_signal(signal.SIGKILL)
            await first.proc.wait()
        for pid in pids.values():
            os.kill(pid, signal.SIGTERM)
        await wait_gone(pids.values())

        async with serving(tmp_path) as second, up(second) as api:
            once = await api.status("once")
            assert once["status"] == "crashed"
            assert once["pid"] is None
            assert once["exit_code"] is None  # not known: the daemon was not its parent
            assert "while the daemon was not running" in once["last_error"]
            console, _ = await api.read_log("once")
            assert b"exited while the daemon was not running (exit code unknown)" in console
            # on-failure: an exit it cannot vouch for is restarted, as a new process.
            again = await api.wait_status("again", "running")
            assert again["pid"] != pids["again"]
            leftovers.append(again["pid"])
            assert copies("303") == [again["pid"]]
            assert await second.terminate() == 0


async def test_a_pid_that_names_another_process_is_not_adopted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with trio.fail_after(60), reaping() as leftovers:
        async with serving(tmp_path) as first, up(first) as api:
            await api.create("srv", "command", {"command": command("sleep", "304")})
            await api.ok("server_start", {"server": "srv"})
            pid = (await api.wait_status("srv", "running"))["pid"]
            leftovers.append(pid)
            first.proc.send_signal(signal.SIGKILL)
            await first.proc.wait()
        # The server ends while no daemon runs, and its pid now names another process.
        os.kill(pid, signal.SIGKILL)
        await wait_gone([pid])
        stranger = subprocess.Popen(["sleep", "305"], start_new_session=True)
        leftovers.append(stranger.pid)
        store_sql(data, "UPDATE server_processes SET pid = ?", stranger.pid)
        try:
            async with serving(tmp_path) as second, up(second) as api:
                status = await api.status("srv")
                assert status["status"] == "crashed"
                assert status["pid"] is None
                assert pid_alive(stranger.pid)  # left alone: not signalled, not adopted
                assert read_processes(data) == {}
                assert await second.terminate() == 0
            assert pid_alive(stranger.pid)
        finally:
            stranger.kill()
            stranger.wait()


async def test_a_start_the_store_could_not_record_is_found_by_its_tag(tmp_path: Path) -> None:
    """A server started while the store could not be written (a full disk) runs with no
    record: after a kill -9 the next daemon finds it by its tag, records it, and its
    autostart starts no second copy."""
    data = tmp_path / "data"
    with trio.fail_after(60), reaping() as leftovers:
        async with serving(tmp_path) as first, up(first) as api:
            await api.create(
                "srv", "command", {"command": command("sleep", "306"), "autostart": True}
            )
            await api.ok("server_start", {"server": "srv"})
            pid = (await api.wait_status("srv", "running"))["pid"]
            leftovers.append(pid)
            first.proc.send_signal(signal.SIGKILL)
            await first.proc.wait()
        store_sql(data, "DELETE FROM server_processes")  # as if the write had failed
        async with serving(tmp_path) as second, up(second) as api:
            status = await api.status("srv")
            assert (status["status"], status["pid"]) == ("running", pid)
            assert copies("306") == [pid]
            assert read_processes(data) == {"srv": pid}  # recorded now
            await api.ok("server_stop", {"server": "srv"})
            assert await second.terminate() == 0
        await wait_gone([pid])


def read_processes(data: Path) -> dict[str, int]:
    rows = store_sql(
        data,
        "SELECT servers.name, pid FROM server_processes "
        "JOIN servers ON servers.id = server_processes.server_id",
    )
    return dict(rows)


async def test_twenty_reloads_while_a_server_floods(tmp_path: Path) -> None:
    """Every reload leaves the flooding server alone: same pid, running, and its console
    holds every line it wrote, in order, through all twenty."""
    script = tmp_path / "flooder.py"
    script.write_text(FLOODER)
    lines = 400_000
    argv = command(sys.executable, str(script), str(lines), "0.005")
    # A bound against a hang, not a speed check: twenty re-executions of the daemon.
    with trio.fail_after(300), reaping() as leftovers:
        async with serving(tmp_path) as run, up(run) as api:
            await api.create("flooder", "command", {"command": argv})
            await api.ok("server_start", {"server": "flooder"})
            pid = (await api.wait_status("flooder", "running"))["pid"]
            leftovers.append(pid)
            for _ in range(20):
                endpoints = await run.reload()
                async with api_at(endpoints["http"]) as again:
                    status = await again.status("flooder")
                assert (status["status"], status["pid"]) == ("running", pid)
            assert (endpoints["generation"], endpoints["pid"]) == (20, run.proc.pid)
            async with api_at(endpoints["http"]) as again:
                console = await again.wait_log("flooder", b"END\n")
                assert numbered(console) == list(range(lines))
                await again.ok("server_kill", {"server": "flooder"})
            assert await run.terminate() == 0

"""``leosuite server ...`` as subprocesses against the in-process daemon, with HOME in
tmp_path so the saved token is isolated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import trio

from tests.fixtures import INVALID_UTF8
from tests.helpers.cli import Cli
from tests.helpers.daemon import RunningDaemon
from tests.helpers.http import Api, api_client
from tests.helpers.servers import command_settings


async def test_server_commands(daemon: RunningDaemon, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    with trio.fail_after(60):
        not_yet = await cli.run("server", "list", expect=1)
        assert b"not logged in" in not_yet.stderr
        await cli.login(daemon.endpoints.http)
        assert (tmp_path / "home" / ".config").is_dir()

        types = {t["type"] for t in (await cli.json("server", "types"))["types"]}
        assert {"command", "demo-game", "minecraft"} <= types
        created = await cli.json(
            "server",
            "create",
            "demo",
            "-t",
            "demo-game",
            "-s",
            "ready_delay=0.1",
            "-s",
            "player_interval=0",
            "-s",
            "stop_timeout=1",
        )
        assert created == {"server": "demo", "readIndex": 0}
        listed = await cli.json("server", "list")
        assert listed["servers"] == ["demo"]
        assert listed["owners"] == {"demo": "admin"}  # an ADMIN's list names the owners

        started = await cli.run("server", "start", "demo")
        assert started.stdout.decode().startswith("demo: ")
        async with api_client(daemon) as api:
            await api.wait_status("demo", "running")
            status = await cli.json("server", "status", "demo")
            assert status["status"] == "running"
            assert status["pid"] == (await api.status("demo"))["pid"]
            text = (await cli.run("server", "status", "demo")).stdout.decode()
            assert "demo" in text
            assert "running" in text

            await cli.run("server", "cmd", "demo", "say", "hello", "from", "cli")
            await api.wait_log("demo", b"[Server] hello from cli")
            logs = (await cli.run("server", "logs", "demo")).stdout
            assert b"[Server] hello from cli" in logs
            assert b"Server ready" in logs
            assert logs == (await api.read_log("demo"))[0]

            stopped = await cli.run("server", "stop", "demo")
            assert stopped.stdout.decode().strip() == "demo: stopped"
            final = await api.status("demo")
            assert final["status"] == "stopped"
            assert final["exit_code"] == 0

        everything = await cli.json("server", "status")
        assert set(everything["servers"]) == {"demo"}
        changed = await cli.json("server", "settings", "demo", "--set", "port=30000")
        assert {v["name"]: v["value"] for v in changed}["port"] == 30000

        # errors: exit 1 with the daemon's message, nothing printed on stdout
        missing = await cli.run("server", "start", "nope", expect=1)
        assert missing.stdout == b""
        assert b"nope" in missing.stderr
        bad = await cli.run("server", "create", "x", "-t", "demo-game", "-s", "port=abc", expect=1)
        assert b"port" in bad.stderr
        await cli.run("server", "create", "Bad/Name", "-t", "demo-game", expect=1)
        await cli.run("server", "stop", "demo", expect=1)
        assert (await cli.json("server", "list"))["servers"] == ["demo"]

        destroyed = await cli.run("server", "destroy", "demo", "--delete-files")
        assert b"destroyed demo" in destroyed.stdout
        assert (await cli.json("server", "list"))["servers"] == []


async def test_server_logs_follow_and_binary_output(daemon: RunningDaemon, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    with trio.fail_after(60):
        await cli.login(daemon.endpoints.http)
        async with api_client(daemon) as api:
            await api.create("bin", "command", command_settings("invalid_utf8", "--sleep"))
            await api.ok("server_start", {"server": "bin"})
            await api.wait_log("bin", INVALID_UTF8)
            out = (await cli.run("server", "logs", "bin")).stdout
            assert INVALID_UTF8 in out
            assert out == (await api.read_log("bin"))[0]
            await api.ok("server_force_kill", {"server": "bin"})

            await api.create("echo", "command", command_settings("echo"))
            await api.ok("server_start", {"server": "echo"})
            await api.wait_log("echo", b"ready\n")
            # login saved the WebSocket URL the daemon announced; --ws-url overrides it
            await follow_until(cli, api, None, b"echo: followed line\n")
            await follow_until(cli, api, daemon.endpoints.ws, b"echo: second line\n")


async def follow_until(cli: Cli, api: Api, ws_url: str | None, needle: bytes) -> None:
    """``server logs -f`` (it follows over the WebSocket API) prints a line sent after
    it started."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "leosuite", "server", "logs", "-f", "echo"]
        + (["--ws-url", ws_url] if ws_url else []),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=cli.env,
    )
    assert process.stdout is not None
    try:
        seen = b""
        while b"ready\n" not in seen:
            chunk = await process.stdout.receive_some(65536)
            assert chunk, seen
            seen += chunk
        await api.ok("server_cmd", {"server": "echo", "command": needle.decode()[6:-1]})
        while needle not in seen:
            chunk = await process.stdout.receive_some(65536)
            assert chunk, seen
            seen += chunk
        assert process.returncode is None  # still following
    finally:
        process.kill()
        await process.wait()
        await process.stdout.aclose()

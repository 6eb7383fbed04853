"""``leosuite server logs NAME --file FILE [-f]`` prints a server's own log file, byte
for byte, and follows it live; an undeclared file is a clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import trio

from tests.helpers.cli import Cli
from tests.helpers.daemon import RunningDaemon
from tests.helpers.http import api_client
from tests.helpers.servers import command_settings

FILE_FROM_4 = ("--file", "latest.log", "--from", "4")


async def test_logs_file_prints_and_follows(daemon: RunningDaemon, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    with trio.fail_after(60):
        await cli.login(daemon.endpoints.http)
        async with api_client(daemon) as api:
            settings = command_settings("rotating_log", log_files="logs/latest.log")
            await api.create("game", "command", settings)
            await api.ok("server_start", {"server": "game"})
            await api.wait_status("game", "running")
            await api.ok("server_cmd", {"server": "game", "command": "write 3 x"})
            await api.wait_log("game", b"wrote x\n")
            expected = b"x 0\nx 1\nx 2 \xff\xfe\n"
            printed = await cli.run("server", "logs", "game", "--file", "latest.log")
            assert printed.stdout == expected
            same = await cli.run("server", "logs", "game", "--file", "logs/latest.log")
            assert same.stdout == expected

            unknown = await cli.run("server", "logs", "game", "--file", "other.log", expect=1)
            assert b"no declared log file 'other.log'" in unknown.stderr
            assert b"logs/latest.log" in unknown.stderr

            follow = subprocess.Popen(
                [sys.executable, "-m", "leosuite", "server", "logs", "-f", "game", *FILE_FROM_4],
                stdout=subprocess.PIPE,
                env=cli.env,
            )
            try:
                await api.ok("server_cmd", {"server": "game", "command": "write 1 live"})
                assert follow.stdout is not None
                wanted = expected[4:] + b"live 0\n"
                got = b""
                while len(got) < len(wanted):
                    chunk = await trio.to_thread.run_sync(follow.stdout.read1, 65536)
                    assert chunk, got
                    got += chunk
                assert got == wanted
            finally:
                follow.kill()
                follow.wait()
                assert follow.stdout is not None
                follow.stdout.close()

"""The command line does what README and docs/ say: every client command finds the
daemon by one rule (the data directory's ``run/endpoints.json``), a start that ends
crashed fails, ``--json`` means JSON everywhere, and a closed pipe ends quietly."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

from tests.helpers.cli import Cli
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon
from tests.helpers.daemon_process import PASSWORD, base_env, serve_argv, serving


async def run(
    cli: Cli, *args: str, cwd: Path, stdin: bytes = b"", expect: int = 0
) -> subprocess.CompletedProcess[bytes]:
    result = await trio.run_process(
        [sys.executable, "-m", "leosuite", *args],
        stdin=stdin,
        capture_stdout=True,
        capture_stderr=True,
        env=cli.env,
        cwd=cwd,
        check=False,
    )
    assert result.returncode == expect, (args, result.returncode, result.stdout, result.stderr)
    return result


def urls(endpoints: dict[str, Any]) -> tuple[str, str, str]:
    return endpoints["http"], endpoints["ws"], endpoints["admin"]


async def test_every_client_command_finds_the_daemon_it_logged_in_to(tmp_path: Path) -> None:
    """Logged in once, the commands find that daemon from another directory after it
    started again on other ports (the saved URL is stale)."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    cli = Cli(home)
    with trio.fail_after(120):
        async with serving(tmp_path) as first:
            before = await first.wait_generation(0)
            login = ["login", "--data-dir", str(first.data_dir), "-u", "admin", "--password-stdin"]
            await run(cli, *login, cwd=elsewhere, stdin=PASSWORD.encode())
            assert await first.terminate() == 0

        async with serving(tmp_path) as second:
            after = await second.wait_generation(0)
            assert urls(after) != urls(before)
            for argv in (
                ["server", "list"],
                ["server", "status"],
                ["server", "kept"],
                ["session", "list"],
                ["ban", "list"],
                ["log", "--page", "0"],
            ):
                out = await run(cli, *argv, "--json", cwd=elsewhere)
                json.loads(out.stdout)  # an answer of the daemon, whatever its content
            # --url is every client command's, as README says
            listed = await run(cli, "server", "list", "--url", after["http"], cwd=elsewhere)
            assert listed.stdout == b"(no servers)\n"
            stale = await run(
                cli, "server", "list", "--url", before["http"], cwd=elsewhere, expect=1
            )
            assert b"cannot reach leosuite at " + before["http"].encode() in stale.stderr
            bye = json.loads((await run(cli, "logout", "--json", cwd=elsewhere)).stdout)
            assert bye == {"url": after["http"], "logged_out": True}
            assert not (home / ".config" / "leosuite" / "token.json").exists()


async def test_a_login_to_a_remote_url_never_asks_a_local_daemon(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    """A login by ``--url`` to a daemon of no local data directory saves none, so a
    ``./leosuite-data`` of the working directory is not consulted afterwards; the
    admin API's URL given to ``login`` is saved for the later commands."""
    home, where = tmp_path / "home", tmp_path / "cwd"
    (where / "leosuite-data" / "run").mkdir(parents=True)
    decoy = {"http": "http://127.0.0.1:9", "ws": "ws://127.0.0.1:9", "admin": "http://127.0.0.1:9"}
    (where / "leosuite-data" / "run" / "endpoints.json").write_text(json.dumps(decoy))
    cli = Cli(home)
    with trio.fail_after(60):
        urls = ["--url", daemon.endpoints.http, "--admin-url", daemon.endpoints.admin]
        login = ["login", *urls, "-u", "admin", "--password-stdin"]
        await run(cli, *login, cwd=where, stdin=ADMIN_PASSWORD.encode())
        saved = json.loads((home / ".config" / "leosuite" / "token.json").read_text())
        assert saved["data_dir"] is None
        assert saved["admin_url"] == daemon.endpoints.admin
        assert (await run(cli, "server", "list", cwd=where)).stdout == b"(no servers)\n"
        assert (await run(cli, "ban", "list", cwd=where)).stdout == b"(no bans)\n"
        assert (await run(cli, "session", "list", cwd=where)).stdout == b"(no sessions)\n"
        # naming the data directory does consult it, but the token saved for another
        # daemon is not sent to the one found there
        named = await run(cli, "ban", "list", "--data-dir", "leosuite-data", cwd=where, expect=1)
        assert b"the saved login is for " in named.stderr
        assert b"not http://127.0.0.1:9" in named.stderr


async def test_a_start_that_ends_crashed_fails_with_its_reason(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    cli = Cli(tmp_path / "home")
    missing = shlex.quote(str(tmp_path / "no-such-program"))
    with trio.fail_after(60):
        await cli.login(daemon.endpoints.http)
        for name, restart in (("once", "never"), ("again", "on-failure")):
            sets = ["-s", f"command={missing}", "-s", f"restart={restart}"]
            await cli.run("server", "create", name, "-t", "command", *sets)
        once = await cli.run("server", "start", "once", expect=1)
        assert once.stdout == b""
        assert once.stderr.decode().startswith("leosuite: once: crashed: command not found: ")
        again = await cli.run("server", "start", "again", expect=1)
        assert again.stderr.decode().startswith("leosuite: again: backoff: command not found: ")
        as_json = json.loads((await cli.run("server", "start", "once", "--json", expect=1)).stdout)
        assert as_json["status"] == "crashed"
        assert as_json["last_error"].startswith("command not found: ")

        # several servers: the crashed one counts as failed
        demo = ["-s", "ready_delay=0.1", "-s", "player_interval=0"]
        await cli.run("server", "create", "fine", "-t", "demo-game", *demo)
        bulk = await cli.run("server", "start", "fine", "once", expect=1)
        lines = bulk.stdout.decode().splitlines()
        assert "once: error: crashed: command not found: " in "\n".join(lines)
        assert any(line.startswith("fine: ") and "error" not in line for line in lines)
        assert "1 ok, 1 failed of 2" in lines[-1]


async def closed_pipe(*argv: str) -> subprocess.CompletedProcess[bytes]:
    """Run ``leosuite *argv`` with its stdout a pipe whose reader is gone."""
    read, write = os.pipe()
    os.close(read)
    try:
        return await trio.run_process(
            [sys.executable, "-m", "leosuite", *argv],
            stdout=write,
            capture_stderr=True,
            env=base_env(),
            check=False,
        )
    finally:
        os.close(write)


async def test_a_closed_pipe_ends_quietly() -> None:
    """``leosuite ... | head`` when head has gone: exit 141 (as SIGPIPE would), no
    traceback."""
    for argv in (["config", "show"], ["config", "show", "--json"]):
        result = await closed_pipe(*argv)
        assert result.stderr == b"", (argv, result.stderr)
        assert result.returncode == 141, argv
    for argv in (["--help"], ["server", "--help"]):  # argparse ignores the failed write
        result = await closed_pipe(*argv)
        assert result.stderr == b"", (argv, result.stderr)
        assert result.returncode in (0, 141), argv


async def test_serve_json_prints_the_endpoints_once_it_serves(tmp_path: Path) -> None:
    data = tmp_path / "data"
    argv = [*serve_argv(data), "--json"]
    async with trio.open_nursery() as nursery:
        with trio.fail_after(60):
            proc: trio.Process = await nursery.start(
                lambda task_status: trio.run_process(
                    argv,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env=base_env(LEOSUITE_ADMIN_PASSWORD=PASSWORD),
                    check=False,
                    task_status=task_status,
                )
            )
            assert proc.stdout is not None
            line = b""
            while not line.endswith(b"\n"):
                chunk = await proc.stdout.receive_some(4096)
                assert chunk, "serve --json ended without a line"
                line += chunk
            announced = json.loads(line)
            assert announced == json.loads((data / "run" / "endpoints.json").read_text())
            assert announced["pid"] == proc.pid
            proc.terminate()


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    result = subprocess.run(
        [sys.executable, "-m", "leosuite", "--version"], capture_output=True, timeout=60
    )
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout.decode() == f"leosuite {version('leosuite')}\n"

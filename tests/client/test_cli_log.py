"""``leosuite log`` as a subprocess against the in-process daemon's admin API, with
HOME in tmp_path so the saved token is isolated."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import trio

from leosuite.audit import Actor
from leosuite.store import audit
from tests.helpers.accounts import add_account
from tests.helpers.cli import Cli
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon

#: 2030-01-01T10:00:00Z (later than the daemon's own entries)
BASE = 1893492000.0


async def admin_log(daemon: RunningDaemon, **params: str) -> Any:
    async with daemon.admin(auth=("admin", ADMIN_PASSWORD)) as client:
        response = await client.get("/log/", params=params)
        assert response.status_code == 200, response.text
        return response.json()


async def test_log_pages_filters_and_errors(daemon: RunningDaemon, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    data = ["--data-dir", str(daemon.daemon.data_dir)]
    with trio.fail_after(90):
        not_yet = await cli.run("log", *data, expect=1)
        assert b"not logged in" in not_yet.stderr
        await cli.login(daemon.endpoints.http)
        actor = Actor(id=5, ip="10.1.2.3", name="bob")
        await daemon.ctx.audit.record("Join", "bob joined", actor=actor, session="Lobby")
        await daemon.ctx.audit.record("Kick", "bob kicked", actor=actor, session="Lobby")

        # The admin URL comes from the data dir's endpoints.json (its http is the saved URL).
        as_json = await cli.json("log", *data)
        assert as_json == await admin_log(daemon)
        text = (await cli.run("log", *data)).stdout.decode().splitlines()
        assert len(text) == len(as_json)
        assert text[-1].endswith(" Info  Kick [Lobby] 5;10.1.2.3;bob: bob kicked")
        assert text[-2].endswith(" Info  Join [Lobby] 5;10.1.2.3;bob: bob joined")
        assert "daemon" in text[0]  # oldest first

        url = ["--admin-url", daemon.endpoints.admin]
        lobby = await cli.json("log", *url, "--session", "LOBBY")
        assert [e["message"] for e in lobby] == ["bob kicked", "bob joined"]
        after = await cli.json("log", *url, "--session", "lobby", "--after", lobby[1]["timestamp"])
        assert [e["message"] for e in after] in (["bob kicked"], ["bob kicked", "bob joined"])
        assert (await cli.run("log", *url, "--page", "1")).stdout == b"(no entries)\n"
        assert await cli.json("log", *url, "--page", "1") == []

        bad = await cli.run("log", *url, "--after", "yesterday", expect=1)
        assert b"after: must be an ISO 8601 time" in bad.stderr
        assert b"--page" in (await cli.run("log", *url, "--page", "-1", expect=1)).stderr
        assert b"--page" in (await cli.run("log", *url, "-f", "--page", "2", expect=1)).stderr
        nowhere = await cli.run("log", "--admin-url", "http://127.0.0.1:9", expect=1)
        assert b"cannot reach" in nowhere.stderr

        # A token of an account that is not an ADMIN.
        await add_account(daemon, "bob", "HOST", password="bob-secret-1")
        bob = Cli(tmp_path / "bob")
        out = await bob.run(
            "login",
            "--url",
            daemon.endpoints.http,
            "-u",
            "bob",
            "--password-stdin",
            stdin=b"bob-secret-1",
        )
        assert b"logged in" in out.stdout
        refused = await bob.run("log", *url, expect=1)
        assert b"not an administrator" in refused.stderr


async def _lines(proc: trio.Process, buffer: bytearray, count: int) -> list[str]:
    """The next ``count`` lines of ``proc``'s stdout."""
    assert proc.stdout is not None
    while buffer.count(b"\n") < count:
        chunk = await proc.stdout.receive_some(65536)
        assert chunk, bytes(buffer)
        buffer.extend(chunk)
    lines = []
    for _ in range(count):
        line, _, rest = bytes(buffer).partition(b"\n")
        buffer[:] = rest
        lines.append(line.decode())
    return lines


async def test_log_follow_prints_new_entries_once(daemon: RunningDaemon, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    db = daemon.ctx.db

    def add(*rows: tuple[float, str]) -> Any:
        def insert(conn: sqlite3.Connection) -> None:
            for stamp, message in rows:
                audit.append(
                    conn,
                    timestamp=stamp,
                    level="info",
                    topic="Status",
                    message=message,
                    session="F",
                )

        return db.call(insert)

    with trio.fail_after(60):
        await cli.login(daemon.endpoints.http)
        await add((BASE, "first"), (BASE + 1, "second"))
        argv = [sys.executable, "-m", "leosuite", "log", "-f", "--json", "--session", "f"]
        argv += ["--interval", "0.05", "--admin-url", daemon.endpoints.admin]
        async with trio.open_nursery() as nursery:
            proc: trio.Process = await nursery.start(
                partial(
                    trio.run_process,
                    argv,
                    stdout=subprocess.PIPE,
                    env=cli.env,
                    check=False,
                )
            )
            buffer = bytearray()
            shown = [json.loads(line)["message"] for line in await _lines(proc, buffer, 2)]
            assert shown == ["first", "second"]
            # Several in one millisecond, then more in that same millisecond: each once.
            await add((BASE + 2, "a"), (BASE + 2, "b"))
            assert [json.loads(x)["message"] for x in await _lines(proc, buffer, 2)] == ["a", "b"]
            await add((BASE + 2.0004, "c"))
            assert [json.loads(x)["message"] for x in await _lines(proc, buffer, 1)] == ["c"]
            # More than a page between two looks.
            await add(*[(BASE + 3 + i / 1000, f"burst {i}") for i in range(250)])
            burst = [json.loads(x)["message"] for x in await _lines(proc, buffer, 250)]
            assert burst == [f"burst {i}" for i in range(250)]
            await add((BASE + 4, "last"))
            assert json.loads((await _lines(proc, buffer, 1))[0])["message"] == "last"
            proc.send_signal(signal.SIGINT)
            assert proc.stdout is not None
            while chunk := await proc.stdout.receive_some(65536):
                buffer.extend(chunk)
        assert proc.returncode == 130
        assert not buffer  # nothing shown twice


async def test_log_follow_as_text(daemon: RunningDaemon, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    with trio.fail_after(60):
        await cli.login(daemon.endpoints.http)
        argv = [sys.executable, "-m", "leosuite", "log", "-f", "--session", "Room"]
        argv += ["--interval", "0.05", "--admin-url", daemon.endpoints.admin]
        async with trio.open_nursery() as nursery:
            proc: trio.Process = await nursery.start(
                partial(trio.run_process, argv, stdout=subprocess.PIPE, env=cli.env, check=False)
            )
            await daemon.ctx.audit.record(
                "Op", "alice is op", actor=Actor(ip="::1", name="alice"), session="room"
            )
            line = (await _lines(proc, bytearray(), 1))[0]
            assert line.endswith(" Info  Op [room] ;::1;alice: alice is op"), line
            proc.send_signal(signal.SIGINT)
        assert proc.returncode == 130

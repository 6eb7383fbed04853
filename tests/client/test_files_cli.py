"""``leosuite server files NAME ...`` as subprocesses against the in-process daemon, with
HOME in tmp_path so the saved token is isolated."""

from __future__ import annotations

import os
from pathlib import Path

import trio

from tests.helpers.cli import Cli
from tests.helpers.daemon import RunningDaemon
from tests.helpers.http import api_client
from tests.helpers.servers import FAST_DEMO


async def test_files_commands(daemon: RunningDaemon, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    root = Path(daemon.ctx.settings.daemon.data_dir) / "servers" / "game"
    local = tmp_path / "local"
    local.mkdir()
    big = os.urandom(3 * 1024 * 1024 + 5)
    (local / "world.dat").write_bytes(big)
    with trio.fail_after(90):
        async with api_client(daemon) as api:
            await api.create("game", "demo-game", FAST_DEMO)
        await cli.login(daemon.endpoints.http)
        files = ("server", "files", "game")

        assert (await cli.run(*files, "ls")).stdout == b"(empty)\n"
        assert (await cli.run(*files, "mkdir", "config")).stdout == b"made config/\n"
        await cli.run(*files, "mkdir", "-p", "saves/2024/slot1")
        assert (root / "saves" / "2024" / "slot1").is_dir()

        put = await cli.run(*files, "put", str(local / "world.dat"), "saves/")
        assert put.stdout.decode().endswith(f"-> saves/world.dat ({len(big)} bytes)\n")
        assert (root / "saves" / "world.dat").read_bytes() == big
        await cli.run(*files, "put", "-", "config/motd.txt", stdin=b"hello\xff from stdin\n")
        assert (root / "config" / "motd.txt").read_bytes() == b"hello\xff from stdin\n"

        listing = (await cli.run(*files, "ls", "saves")).stdout.decode().splitlines()
        assert listing[0].startswith("d 07")
        assert listing[0].endswith("  2024/")
        assert listing[1].startswith("- 06")
        assert listing[1].endswith("  world.dat")
        assert f" {len(big)}  " in listing[1]
        entries = (await cli.json(*files, "ls", "config"))["entries"]
        assert [(e["name"], e["size"]) for e in entries] == [("motd.txt", 18)]

        cat = await cli.run(*files, "cat", "config/motd.txt")
        assert cat.stdout == b"hello\xff from stdin\n"
        got = await cli.run(*files, "get", "saves/world.dat", str(local / "copy.dat"))
        assert got.stdout.decode().strip() == f"saves/world.dat -> {local / 'copy.dat'}"
        assert (local / "copy.dat").read_bytes() == big
        await cli.run(*files, "get", "config/motd.txt", str(local))
        assert (local / "motd.txt").read_bytes() == b"hello\xff from stdin\n"
        assert sorted(p.name for p in local.iterdir()) == ["copy.dat", "motd.txt", "world.dat"]

        moved = await cli.run(*files, "mv", "config/motd.txt", "motd.txt")
        assert moved.stdout == b"config/motd.txt -> motd.txt\n"
        assert (root / "motd.txt").exists()
        assert (await cli.run(*files, "rm", "motd.txt")).stdout == b"deleted motd.txt\n"
        full = await cli.run(*files, "rm", "saves", expect=1)
        assert b"saves is a directory that is not empty" in full.stderr
        await cli.run(*files, "rm", "-r", "saves")
        assert sorted(p.name for p in root.iterdir()) == ["config"]

        # Refusals exit 1 with the daemon's message; a wrong argument count exits 2.
        outside = await cli.run(*files, "cat", "../../leosuite.db", expect=1)
        assert outside.stderr == b"leosuite: path: '..' is not allowed (HTTP 400)\n"
        assert outside.stdout == b""
        missing = await cli.run(*files, "get", "nothing.txt", str(local / "n.txt"), expect=1)
        assert b"no such file or directory: nothing.txt (HTTP 404)" in missing.stderr
        assert not (local / "n.txt").exists()
        assert sorted(p.name for p in local.iterdir()) == ["copy.dat", "motd.txt", "world.dat"]
        unknown = await cli.run("server", "files", "nosuch", "ls", expect=1)
        assert b"no server named 'nosuch'" in unknown.stderr
        usage = await cli.run(*files, "mv", "only-one", expect=2)
        assert b"the following arguments are required: TO" in usage.stderr

        # The common options work before the action and after it.
        before = await cli.run("server", "files", "--json", "game", "ls", "config")
        after = await cli.run(*files, "ls", "config", "--json")
        assert before.stdout == after.stdout
        assert b'"entries": []' in after.stdout

"""``leosuite backup list|create|download|restore|delete`` as subprocesses against the
in-process daemon."""

from __future__ import annotations

import hashlib
from pathlib import Path

import trio

from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.cli import Cli
from tests.helpers.daemon import RunningDaemon
from tests.helpers.servers import FAST_DEMO


async def test_backup_commands(daemon: RunningDaemon, tmp_path: Path) -> None:
    owner = Cli(tmp_path / "owner")
    with trio.fail_after(90):
        await add_account(daemon, "olga", "HOST")
        await owner.login(daemon.endpoints.http, "olga", PASSWORD)
        await owner.run("server", "create", "game", "-t", "demo-game",
                        *(f"--set={k}={v}" for k, v in FAST_DEMO.items()))  # fmt: skip
        level = Path(daemon.ctx.settings.data_dir) / "servers" / "game" / "level.dat"
        level.write_bytes(b"before\n" * 100)
        listed = await owner.run("backup", "list", "game")
        assert listed.stdout.startswith(b"(no backups)\n")

        created = await owner.run("backup", "create", "game", "--note", "first")
        assert created.stdout.startswith(b"created backup ")
        made = (await owner.json("backup", "list", "game"))["backups"][0]
        assert made["note"] == "first"
        assert made["by"] == "olga"

        target = tmp_path / "copy.tar.zst"
        got = await owner.run("backup", "download", "game", str(made["id"]), "-o", str(target))
        assert got.stdout.decode().strip().endswith(str(target))
        assert hashlib.sha256(target.read_bytes()).hexdigest() == made["sha256"]
        into = tmp_path / "here"
        into.mkdir()
        await owner.run("backup", "download", "game", str(made["id"]), "-o", str(into))
        assert [p.name for p in into.iterdir()] == [f"game-{made['name']}.tar.zst"]

        level.write_bytes(b"after")
        restored = await owner.run("backup", "restore", "game", str(made["id"]))
        assert restored.stdout.decode().startswith(f"restored backup {made['id']} (")
        assert level.read_bytes() == b"before\n" * 100

        missing = await owner.run("backup", "restore", "game", "999", expect=1)
        assert b"no backup 999" in missing.stderr
        deleted = await owner.run("backup", "delete", "game", str(made["id"]))
        assert deleted.stdout.decode().startswith(f"deleted backup {made['id']} ")
        assert (await owner.json("backup", "list", "game"))["backups"] == []

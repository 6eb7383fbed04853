"""The backup service on a real daemon: a restart cleans what an interrupted backup
left and forgets records whose file is gone; a corrupt or hostile archive is refused on
restore with the server's directory untouched; the quota refuses before and after;
retention keeps the newest; the schedule step ``backup`` makes one."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import trio

from leosuite.backups.model import Backup
from leosuite.store import backups as backup_table
from tests.helpers.accounts import add_account
from tests.helpers.admin_accounts import server_audit
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import Api, api_client
from tests.helpers.servers import FAST_DEMO


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def game_with_world(api: Api, daemon: Any) -> Path:
    await api.create("game", "demo-game", FAST_DEMO)
    folder = Path(daemon.ctx.settings.data_dir) / "servers" / "game"
    (folder / "world").mkdir()
    (folder / "world" / "level.dat").write_bytes(b"level\n" * 500)
    return folder


async def forge(daemon: Any, server_id: int, name: str, data: bytes, size: int = 0) -> int:
    """Put ``data`` as a backup file of the server, with a record that matches it."""
    folder = daemon.ctx.settings.backups_dir / str(server_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.tar.gz").write_bytes(data)
    forged = Backup(
        id=0,
        server_id=server_id,
        name=name,
        created_at=daemon.ctx.now(),
        size=size or len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        files=1,
        source_bytes=len(data),
        compression="gzip",
        by="admin",
    )
    stored: Backup = await daemon.ctx.db.call(
        lambda conn: backup_table.add(conn, forged)  # type: ignore[no-any-return]
    )
    return stored.id


def hostile_tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name in ("world/level.dat", "../escaped.txt"):
            info = tarfile.TarInfo(name)
            info.size = 5
            tar.addfile(info, io.BytesIO(b"evil\n"))
    return out.getvalue()


async def test_restart_cleans_leftovers(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await game_with_world(admin, daemon)
            kept = await admin.ok("server_backup_create", {"server": "game"})
            lost = await admin.ok("server_backup_create", {"server": "game"})
            server_id = daemon.ctx.servers.record("game").id
        folder = settings.backups_dir / str(server_id)
        (folder / f"{lost['name']}.tar.zst").unlink()
        partial = folder / ".2030-01-01T00-00-00Z.tar.zst.partial"
        partial.write_bytes(b"half an archive")
        orphan = folder / "2030-01-01T00-00-01Z.tar.gz"
        orphan.write_bytes(b"a whole archive nobody recorded")
        mine = folder / "notes.txt"
        mine.write_bytes(b"not a backup: left alone")
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            listed = await admin.ok("server_backup_list", {"server": "game"})
            assert [b["id"] for b in listed["backups"]] == [kept["id"]]
            assert not partial.exists()
            assert not orphan.exists()
            assert mine.read_bytes() == b"not a backup: left alone"
            assert (folder / f"{kept['name']}.tar.zst").exists()


async def test_corrupt_and_hostile_archives_lose_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            folder = await game_with_world(admin, daemon)
            made = await admin.ok("server_backup_create", {"server": "game"})
            server_id = daemon.ctx.servers.record("game").id
            (folder / "world" / "level.dat").write_bytes(b"changed since")
            before = tree(folder)

            async def refused(backup_id: int) -> str:
                body = {"server": "game", "id": backup_id}
                error = await admin.error("server_backup_restore", body, 400)
                assert tree(folder) == before
                assert sorted(p.name for p in folder.parent.iterdir()) == ["game"]
                assert not (folder.parent / "escaped.txt").exists()
                return str(error["error_message"])

            # The recorded archive replaced by other bytes: its SHA-256 differs.
            archive = settings.backups_dir / str(server_id) / f"{made['name']}.tar.zst"
            archive.write_bytes(archive.read_bytes()[:100] + b"tampered")
            await refused(made["id"])
            # A damaged archive whose record matches it.
            garbage = b"\x1f\x8b" + b"not gzip at all" * 50
            await refused(await forge(daemon, server_id, "2030-01-01T00-00-00Z", garbage))
            # A hostile archive (a member climbing out) whose record matches it.
            hostile = await forge(daemon, server_id, "2030-01-01T00-00-01Z", hostile_tar())
            assert ".." in await refused(hostile)
            messages = [e.message for e in await server_audit(daemon, "game")]
            assert any(m.startswith("backup 2030-01-01T00-00-01Z not restored") for m in messages)
            # The server still starts from its untouched directory.
            await admin.ok("server_start", {"server": "game"})
            await admin.wait_status("game", "running")


async def test_quota_and_retention(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", backups={"quota_bytes": 60_000, "keep": 2, "compression": "gzip"}
    )
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            async with api_client(daemon, "olga") as olga:
                folder = await game_with_world(olga, daemon)
                made = [await olga.ok("server_backup_create", {"server": "game"}) for _ in range(3)]
                assert made[0]["compression"] == "gzip"
                assert len({b["name"] for b in made}) == 3
                listed = await olga.ok("server_backup_list", {"server": "game"})
                # Retention kept the two newest.
                assert [b["id"] for b in listed["backups"]] == [made[2]["id"], made[1]["id"]]
                used = made[1]["size"] + made[2]["size"]
                assert listed["quota"] == {"used": used, "limit": 60_000}
                # An archive that takes the owner over the quota is made, then removed.
                (folder / "world" / "big.bin").write_bytes(os.urandom(70_000))
                over = await olga.error("server_backup_create", {"server": "game"}, 409)
                assert "over the quota of 60000 bytes" in over["error_message"]
                after = await olga.ok("server_backup_list", {"server": "game"})
                assert after["backups"] == listed["backups"]
                files = sorted(p.name for p in settings.backups_dir.rglob("*") if p.is_file())
                assert files == sorted(f"{b['name']}.tar.gz" for b in listed["backups"])
                # An owner at its quota is refused before anything starts.
                server_id = daemon.ctx.servers.record("game").id
                await forge(daemon, server_id, "2030-01-01T00-00-00Z", b"x", size=60_000)
                at = await olga.error("server_backup_create", {"server": "game"}, 409)
                assert "at or over the quota" in at["error_message"]
            messages = [e.message for e in await server_audit(daemon, "game")]
            assert (
                f"backup {made[0]['name']} removed by retention (backups.keep, backups.keep_days)"
                in messages
            )
            # An ADMIN's own servers have no quota.
            async with api_client(daemon) as admin:
                await admin.create("mine", "demo-game", FAST_DEMO)
                quota = (await admin.ok("server_backup_list", {"server": "mine"}))["quota"]
                assert quota["limit"] == 0


async def test_schedule_backup_step(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await game_with_world(admin, daemon)
            await admin.ok(
                "server_schedule_create",
                {"server": "game", "name": "nightly", "interval": 86400, "steps": ["backup"]},
            )
            await admin.ok("server_schedule_run", {"server": "game", "name": "nightly"})
            while True:
                listed = await admin.ok("server_schedule_list", {"server": "game"})
                if listed["schedules"][0]["last_result"]:
                    break
                await trio.sleep(0.05)
            assert listed["schedules"][0]["last_result"] == "done (run now)"
            backups = (await admin.ok("server_backup_list", {"server": "game"}))["backups"]
            assert [b["by"] for b in backups] == ["schedule"]
            messages = [e.message for e in await server_audit(daemon, "game")]
            assert any(m.startswith(f"backup {backups[0]['name']} created") for m in messages)

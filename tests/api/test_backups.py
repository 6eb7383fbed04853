"""A server's backups over the HTTP API on a real daemon: a create, list, download,
restore and delete round trip of a demo-game's world; who may do what; hostile values."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import trio

from tests.helpers.accounts import add_account
from tests.helpers.admin_accounts import server_audit
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import Api, api_client, assert_error
from tests.helpers.servers import FAST_DEMO


def world(daemon: Any, server: str) -> Path:
    return Path(daemon.ctx.settings.data_dir) / "servers" / server / "world"


async def download(api: Api, server: str, backup_id: object) -> Any:
    return await api.client.get(
        "/api/server_backup_download",
        params={"server": server, "id": str(backup_id)},
        headers={"Authorization": f"Bearer {api.token}"},
    )


async def test_create_list_download_restore_delete(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await admin.create("game", "demo-game", FAST_DEMO)
            level = world(daemon, "game") / "level.dat"
            level.parent.mkdir()
            level.write_bytes(b"the world as it was\n" * 1000)
            (level.parent / "region").mkdir()
            (level.parent / "region" / "r.0.0.mca").write_bytes(bytes(range(256)) * 64)

            made = await admin.ok("server_backup_create", {"server": "game", "note": "before"})
            assert made["server"] == "game"
            assert made["by"] == "admin"
            assert made["note"] == "before"
            assert made["compression"] == "zstd"
            assert made["files"] == 2
            assert made["name"].endswith("Z")
            listing = await admin.ok("server_backup_list", {"server": "game"})
            assert listing["backups"] == [made]
            assert listing["quota"] == {"used": made["size"], "limit": 0}
            status = await admin.ok("server_backup_status", {"server": "game"})
            assert status["running"] is False

            answer = await download(admin, "game", made["id"])
            assert answer.status_code == 200, answer.text
            assert hashlib.sha256(answer.content).hexdigest() == made["sha256"]
            assert int(answer.headers["content-length"]) == made["size"] == len(answer.content)
            assert answer.headers["x-backup-sha256"] == made["sha256"]
            assert answer.headers["etag"] == f'"{made["sha256"]}"'
            assert answer.headers["content-disposition"] == (
                f'attachment; filename="game-{made["name"]}.tar.zst"'
            )
            # A foreign Host is refused before routing.
            foreign = await admin.client.get(
                "/api/server_backup_download",
                params={"server": "game", "id": str(made["id"])},
                headers={"Authorization": f"Bearer {admin.token}", "Host": "evil.example"},
            )
            assert foreign.status_code == 421

            # Break the world; a restore is refused while the server runs.
            level.write_bytes(b"griefed")
            (level.parent / "junk").write_bytes(b"x")
            await admin.ok("server_start", {"server": "game"})
            await admin.wait_status("game", "running")
            body = {"server": "game", "id": made["id"]}
            refused = await admin.error("server_backup_restore", body, 409)
            assert "stop the server first" in refused["error_message"]
            await admin.ok("server_stop", {"server": "game"})
            await admin.wait_status("game", "stopped")
            restored = await admin.ok("server_backup_restore", body)
            assert restored == {"server": "game", "backup": made, "restored": True}
            assert level.read_bytes() == b"the world as it was\n" * 1000
            assert not (level.parent / "junk").exists()
            servers = level.parent.parent.parent
            assert sorted(p.name for p in servers.iterdir()) == ["game"]  # nothing set aside
            # The restored server starts.
            await admin.ok("server_start", {"server": "game"})
            await admin.wait_status("game", "running")
            await admin.ok("server_stop", {"server": "game"})
            await admin.wait_status("game", "stopped")

            deleted = await admin.ok("server_backup_delete", body)
            assert deleted == {
                "server": "game",
                "id": made["id"],
                "name": made["name"],
                "deleted": True,
            }
            assert (await admin.ok("server_backup_list", {"server": "game"}))["backups"] == []
            await admin.error("server_backup_delete", body, 404)
            assert (await download(admin, "game", made["id"])).status_code == 404

            messages = [e.message for e in await server_audit(daemon, "game")]
            name = made["name"]
            assert any(m.startswith(f"backup {name} created (") for m in messages)
            for what in ("downloaded", "restored", "deleted"):
                assert f"backup {name} {what}" in messages, what


async def test_who_may_do_what_and_hostile_values(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            for name in ("finn", "gia", "sam"):
                await add_account(daemon, name)
            async with api_client(daemon, "olga") as olga:
                await olga.create("game", "demo-game", FAST_DEMO)
                await olga.create("other", "demo-game", FAST_DEMO)
                made = await olga.ok("server_backup_create", {"server": "game"})
                theirs = await olga.ok("server_backup_create", {"server": "other"})
                for account, rights in (("finn", ["console", "power"]), ("gia", ["files"])):
                    await olga.ok(
                        "server_share_set", {"server": "game", "account": account, "rights": rights}
                    )
                # Another server's backup does not exist under this one.
                for path in ("server_backup_delete", "server_backup_restore"):
                    await olga.error(path, {"server": "game", "id": theirs["id"]}, 404)
                assert (await download(olga, "game", theirs["id"])).status_code == 404
                # Hostile values: path-like and odd ids, a huge note, unknown fields.
                for bad in ("../1", "1/../2", "-1", "0", "1e3", "", "99999999999999999999"):
                    assert_error(await download(olga, "game", bad), 400)
                for body in (
                    {"server": "game", "id": "../../etc/passwd"},
                    {"server": "game", "id": -1},
                    {"server": "game", "id": 2**60},
                    {"server": "../game", "id": made["id"]},
                    {"server": "game", "id": made["id"], "path": "/etc"},
                ):
                    await olga.error("server_backup_delete", body, 400)
                huge = {"server": "game", "note": "n" * 501}
                assert (
                    "note" in (await olga.error("server_backup_create", huge, 400))["error_message"]
                )
                missing = await olga.client.get(
                    "/api/server_backup_download", params={"server": "game", "id": "1"}
                )
                assert_error(missing, 403)

            one = {"server": "game", "id": made["id"]}
            changes = [
                ("server_backup_create", {"server": "game"}),
                ("server_backup_delete", one),
                ("server_backup_restore", one),
            ]
            # A grantee with files reads the backups, and changes none.
            async with api_client(daemon, "gia") as gia:
                listed = await gia.ok("server_backup_list", {"server": "game"})
                assert [b["id"] for b in listed["backups"]] == [made["id"]]
                assert (await gia.ok("server_backup_status", {"server": "game"}))[
                    "running"
                ] is False
                answer = await download(gia, "game", made["id"])
                assert hashlib.sha256(answer.content).hexdigest() == made["sha256"]
                for path, body in changes:
                    await gia.error(path, body, 403)
            # A grantee without files: 403 for everything.
            async with api_client(daemon, "finn") as finn:
                await finn.error("server_backup_list", {"server": "game"}, 403)
                await finn.error("server_backup_status", {"server": "game"}, 403)
                assert (await download(finn, "game", made["id"])).status_code == 403
                for path, body in changes:
                    await finn.error(path, body, 403)
            # An account without access: the server does not exist.
            async with api_client(daemon, "sam") as sam:
                await sam.error("server_backup_list", {"server": "game"}, 404)
                assert (await download(sam, "game", made["id"])).status_code == 404
                for path, body in changes:
                    await sam.error(path, body, 404)
            # An ADMIN manages every server's backups.
            async with api_client(daemon) as admin:
                await admin.ok("server_backup_restore", one)
                # Destroying a server removes its backups and their files.
                await admin.ok("server_destroy", {"server": "other"})
                left = [p.name for p in settings.backups_dir.rglob("*") if p.is_file()]
                assert left == [f"{made['name']}.tar.zst"]

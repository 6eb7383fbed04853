"""Backups as an attacker reaches them, on a real daemon over real sockets: a grantee
with each single right and an account with none on every backup call (HTTP and
WebSocket), a foreign Host or Origin, hostile ids and names, hostile archives restored
through the API, a download while its backup is deleted, and the quota filled by a
HOST account."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import httpx
import trio

from leosuite.backups.model import Backup
from leosuite.store import backups as backup_table
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import RunningDaemon, make_settings, running_daemon
from tests.helpers.http import Api, api_client, assert_error
from tests.helpers.security import handshake, port_of
from tests.helpers.servers import FAST_DEMO
from tests.helpers.ws import ws_client

RIGHTS = ("console", "commands", "power", "files", "settings")
OK, PERMISSION_DENIED, ENTITY_NOT_FOUND = 0, 2, 8
MALFORMED_CODES = {11, 12}  # MODEL_EXCEPTION, INVALID_ARGUMENT
EVIL = "evil.example"
# Every address of these tests is 127.0.0.1: no request rate gets in the way.
ROOMY = {"request_burst": 100_000, "request_rate": 10_000.0}


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def download(api: Api, server: str, backup_id: object, **headers: str) -> httpx.Response:
    return await api.client.get(
        "/api/server_backup_download",
        params={"server": server, "id": str(backup_id)},
        headers={"Authorization": f"Bearer {api.token}", **headers},
    )


async def game(api: Api, daemon: RunningDaemon, name: str = "game") -> Path:
    await api.create(name, "demo-game", FAST_DEMO)
    folder = Path(daemon.ctx.settings.data_dir) / "servers" / name
    (folder / "world").mkdir()
    (folder / "world" / "level.dat").write_bytes(b"level\n" * 500)
    return folder


async def test_each_single_right_and_none_on_every_call(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", http=ROOMY)
    with trio.fail_after(180):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            await add_account(daemon, "nobody")
            for right in RIGHTS:
                await add_account(daemon, f"r-{right}")
            async with api_client(daemon, "olga") as olga:
                folder = await game(olga, daemon)
                made = await olga.ok("server_backup_create", {"server": "game"})
                for right in RIGHTS:
                    share = {"server": "game", "account": f"r-{right}", "rights": [right]}
                    await olga.ok("server_share_set", share)
            before = tree(folder)
            archive = settings.backups_dir / str(daemon.ctx.servers.record("game").id)
            files_before = sorted(p.name for p in archive.iterdir())
            one = {"server": "game", "id": made["id"]}
            reads = [("list", {"server": "game"}), ("status", {"server": "game"})]
            changes = [("create", {"server": "game"}), ("delete", one), ("restore", one)]

            for account in [f"r-{r}" for r in RIGHTS] + ["nobody"]:
                reader = account == "r-files"
                hidden = account == "nobody"
                async with api_client(daemon, account) as http:
                    for call, body in reads:
                        path = f"server_backup_{call}"
                        if reader:
                            await http.ok(path, body)
                        else:
                            await http.error(path, body, 404 if hidden else 403)
                    got = await download(http, "game", made["id"])
                    if reader:
                        assert hashlib.sha256(got.content).hexdigest() == made["sha256"]
                    else:
                        assert_error(got, 404 if hidden else 403)
                    for call, body in changes:
                        refused = await http.error(
                            f"server_backup_{call}", body, 404 if hidden else 403
                        )
                        if not hidden:
                            assert "backups" in refused["error_message"], refused
                async with ws_client(daemon) as ws:
                    await ws.login(account, PASSWORD)
                    for call, body in reads:
                        answer = await ws.call(f"backup.{call}", body)
                        expected = (
                            OK if reader else (ENTITY_NOT_FOUND if hidden else PERMISSION_DENIED)
                        )
                        assert answer["status_code"] == expected, (account, call, answer)
                    for call, body in changes:
                        answer = await ws.call(f"backup.{call}", body)
                        expected = ENTITY_NOT_FOUND if hidden else PERMISSION_DENIED
                        assert answer["status_code"] == expected, (account, call, answer)
                    assert not [p for p in ws.pushes if p["type"] == "backup.progress"]
            # Nothing changed: the one backup, its file, the server's directory.
            async with api_client(daemon, "olga") as olga:
                listed = await olga.ok("server_backup_list", {"server": "game"})
                assert listed["backups"] == [made]
            assert sorted(p.name for p in archive.iterdir()) == files_before
            assert tree(folder) == before


async def test_foreign_host_and_origin(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await game(admin, daemon)
            made = await admin.ok("server_backup_create", {"server": "game"})
            port = port_of(daemon.endpoints.http)
            one = {"server": "game", "id": made["id"]}
            calls = [
                ("list", {"server": "game"}),
                ("status", {"server": "game"}),
                ("create", {"server": "game"}),
                ("delete", one),
                ("restore", one),
            ]
            bearer = {"Authorization": f"Bearer {admin.token}"}
            rebound = {"Host": f"{EVIL}:{port}", "Origin": f"http://{EVIL}:{port}"}
            for call, body in calls:
                answer = await admin.client.post(
                    f"/api/server_backup_{call}", json=body, headers={**bearer, **rebound}
                )
                assert assert_error(answer, 421)["error_type"] == "misdirected"
            assert_error(await download(admin, "game", made["id"], **rebound), 421)
            # A page elsewhere under the daemon's own Host: no CORS header lets it read an
            # answer, its preflight is granted nothing, and a form's body type is refused.
            page = {"Origin": f"http://{EVIL}"}
            listed = await admin.client.post(
                "/api/server_backup_list", json={"server": "game"}, headers={**bearer, **page}
            )
            assert "access-control-allow-origin" not in listed.headers
            got = await download(admin, "game", made["id"], **page)
            assert "access-control-allow-origin" not in got.headers
            for call, _body in calls:
                preflight = await admin.client.options(
                    f"/api/server_backup_{call}",
                    headers={**page, "Access-Control-Request-Method": "POST"},
                )
                assert "access-control-allow-origin" not in preflight.headers
                form = await admin.client.post(
                    f"/api/server_backup_{call}",
                    content=f"server=game&id={made['id']}&token={admin.token}",
                    headers={**page, "Content-Type": "application/x-www-form-urlencoded"},
                )
                assert_error(form, 415)
            # The backup and its server are as they were.
            assert (await admin.ok("server_backup_list", {"server": "game"}))["backups"] == [made]
            # The WebSocket handshake under a foreign Origin or Host never reaches backup.*.
            ws = daemon.endpoints.ws + "/"
            ws_port = port_of(ws)
            assert (await handshake(ws, origin=f"http://{EVIL}"))[0] == 403
            assert (await handshake(ws, host=f"{EVIL}:{ws_port}"))[0] == 421
            assert (await handshake(ws, origin=f"http://127.0.0.1:{ws_port}"))[0] == 101


async def test_hostile_ids_and_names(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", http=ROOMY)
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await game(admin, daemon)
            await game(admin, daemon, "other")
            made = await admin.ok("server_backup_create", {"server": "game"})
            theirs = await admin.ok("server_backup_create", {"server": "other"})
            # Another server's backup does not exist under this one, on any call.
            wrong = {"server": "game", "id": theirs["id"]}
            for call in ("delete", "restore"):
                await admin.error(f"server_backup_{call}", wrong, 404)
            assert_error(await download(admin, "game", theirs["id"]), 404)
            bad_ids: list[Any] = [
                "../1",
                f"{made['id']}/../{theirs['id']}",
                "/etc/passwd",
                -1,
                0,
                2**53 + 1,
                2**63,
                -(2**63),
                1.5,
                True,
                None,
                [made["id"]],
                {"id": made["id"]},
                str(made["id"]),
            ]
            for bad in bad_ids:
                for call in ("delete", "restore"):
                    await admin.error(f"server_backup_{call}", {"server": "game", "id": bad}, 400)
            for text in (
                "../1",
                "1/../2",
                "%2e%2e%2f1",
                "-1",
                "0",
                "+1",
                " 1",
                "1 ",
                "0x1",
                "\u0661",
            ):
                assert_error(await download(admin, "game", text), 400)
            for text in ("9" * 16, "9" * 17, "9" * 400):
                assert_error(await download(admin, "game", text), 404 if len(text) <= 16 else 400)
            bad_names: list[Any] = ["../game", "game/..", "/game", "game\x00", "g" * 10_000, "", 1]
            for name in bad_names:
                for call in ("list", "status", "create"):
                    await admin.error(f"server_backup_{call}", {"server": name}, 400)
                await admin.error("server_backup_delete", {"server": name, "id": made["id"]}, 400)
            assert_error(
                await admin.client.get(
                    "/api/server_backup_download",
                    params={"server": "../game", "id": str(made["id"])},
                    headers={"Authorization": f"Bearer {admin.token}"},
                ),
                400,
            )
            for body in ({"server": "game", "note": 5}, {"server": "game", "note": "n" * 501}):
                await admin.error("server_backup_create", body, 400)
            async with ws_client(daemon) as ws:
                await ws.login()
                for bad in bad_ids:
                    answer = await ws.call("backup.delete", {"server": "game", "id": bad})
                    assert answer["status_code"] in MALFORMED_CODES, (bad, answer)
                for name in bad_names:
                    answer = await ws.call("backup.list", {"server": name})
                    assert answer["status_code"] in MALFORMED_CODES, (name, answer)
                answer = await ws.call("backup.restore", wrong)
                assert answer["status_code"] == ENTITY_NOT_FOUND, answer
                for content in (None, [], "game", {"server": "game", "id": 1, "extra": 1}):
                    answer = await ws.call("backup.delete", content)
                    assert answer["status_code"] in MALFORMED_CODES, (content, answer)
            # Both backups are still there.
            for server, backup in (("game", made), ("other", theirs)):
                listed = await admin.ok("server_backup_list", {"server": server})
                assert listed["backups"] == [backup]


def _archive(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    return info


HOSTILE: dict[str, tuple[bytes, str]] = {
    "absolute": (_archive((_member("/evil.txt"), b"evil")), "absolute path"),
    "dotdot": (_archive((_member("world/../../evil.txt"), b"evil")), "'..'"),
    "link out": (
        _archive((_member("world/out", tarfile.SYMTYPE, "../../.."), b"")),
        "outside the destination",
    ),
    "through a link": (
        _archive(
            (_member("world", tarfile.SYMTYPE, "."), b""),
            (_member("world/evil.txt"), b"evil"),
        ),
        "inside a file or a symbolic link",
    ),
    "hard link": (
        _archive((_member("world/pw", tarfile.LNKTYPE, "/etc/passwd"), b"")),
        "a hard link",
    ),
    "device": (_archive((_member("world/dev", tarfile.CHRTYPE), b"")), "a device"),
    "twice": (
        _archive((_member("world/a"), b"one"), (_member("world/a"), b"two")),
        "twice",
    ),
}


async def _forge(daemon: RunningDaemon, server_id: int, name: str, data: bytes) -> int:
    """Put ``data`` as a backup of the server with a record that matches it."""
    folder = daemon.ctx.settings.backups_dir / str(server_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.tar.gz").write_bytes(data)
    forged = Backup(
        id=0,
        server_id=server_id,
        name=name,
        created_at=daemon.ctx.now(),
        size=len(data),
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


async def test_hostile_archives_refused_through_the_api(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(180):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            folder = await game(admin, daemon)
            server_id = daemon.ctx.servers.record("game").id
            before = tree(folder)
            outside = sorted(p.name for p in folder.parent.iterdir())
            async with ws_client(daemon) as ws:
                await ws.login()
                for index, (label, (data, why)) in enumerate(HOSTILE.items()):
                    backup_id = await _forge(daemon, server_id, f"2030-01-01T00-00-0{index}Z", data)
                    body = {"server": "game", "id": backup_id}
                    refused = await admin.error("server_backup_restore", body, 400)
                    assert why in refused["error_message"], (label, refused)
                    answer = await ws.call("backup.restore", body)
                    assert answer["status_code"] in MALFORMED_CODES, (label, answer)
                    assert why in answer["status_string"], (label, answer)
                    assert tree(folder) == before, label
                    assert sorted(p.name for p in folder.parent.iterdir()) == outside, label
            assert not (folder.parent.parent / "evil.txt").exists()
            # The untouched server still starts.
            await admin.ok("server_start", {"server": "game"})
            await admin.wait_status("game", "running")
            await admin.ok("server_stop", {"server": "game"})
            await admin.wait_status("game", "stopped")


async def test_a_download_while_its_backup_is_deleted(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            folder = await game(admin, daemon)
            (folder / "world" / "noise.bin").write_bytes(os.urandom(6 << 20))
            made = await admin.ok("server_backup_create", {"server": "game"})
            assert made["size"] > 6 << 20
            got = bytearray()
            request = admin.client.build_request(
                "GET",
                "/api/server_backup_download",
                params={"server": "game", "id": str(made["id"])},
                headers={"Authorization": f"Bearer {admin.token}"},
            )
            response = await admin.client.send(request, stream=True)
            try:
                assert response.status_code == 200
                chunks = response.aiter_raw()
                got += await chunks.__anext__()
                assert len(got) < made["size"]
                deleted = await admin.ok(
                    "server_backup_delete", {"server": "game", "id": made["id"]}
                )
                assert deleted["deleted"] is True
                async for chunk in chunks:
                    got += chunk
            finally:
                await response.aclose()
            # The download begun before the delete is whole; nothing is left behind.
            assert hashlib.sha256(got).hexdigest() == made["sha256"]
            assert not [p for p in settings.backups_dir.rglob("*") if p.is_file()]
            assert_error(await download(admin, "game", made["id"]), 404)


QUOTA = 250_000


async def test_quota_filled_by_a_host_account(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", backups={"quota_bytes": QUOTA, "max_concurrent": 2})
    with trio.fail_after(180):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "olga", "HOST")
            await add_account(daemon, "gia")
            async with api_client(daemon, "olga") as olga:
                for name in ("one", "two"):
                    folder = await game(olga, daemon, name)
                    (folder / "world" / "noise.bin").write_bytes(os.urandom(150_000))
                await olga.ok(
                    "server_share_set", {"server": "one", "account": "gia", "rights": list(RIGHTS)}
                )
                # A grantee with every right makes no backups: none count against the owner.
                async with api_client(daemon, "gia") as gia:
                    await gia.error("server_backup_create", {"server": "one"}, 403)
                    listed = await gia.ok("server_backup_list", {"server": "one"})
                    assert listed["quota"] == {"used": 0, "limit": QUOTA}
                # Two backups at once, each fitting alone, both over together: one is
                # refused, whatever the order they finish in.
                answers: list[httpx.Response] = []

                async def make(server: str) -> None:
                    answers.append(await olga.post("server_backup_create", {"server": server}))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(make, "one")
                    nursery.start_soon(make, "two")
                assert sorted(a.status_code for a in answers) == [200, 409], [
                    a.text for a in answers
                ]
                refused = next(a for a in answers if a.status_code == 409)
                assert "over the quota" in assert_error(refused, 409)["error_message"]
                listed = await olga.ok("server_backup_list", {"server": "one"})
                used = listed["quota"]["used"]
                assert 150_000 < used <= QUOTA
                # Over what is left of the quota: refused, the archive stopped and removed.
                again = await olga.error("server_backup_create", {"server": "one"}, 409)
                assert "it was stopped and removed" in again["error_message"]
                on_disk = [p for p in settings.backups_dir.rglob("*") if p.is_file()]
                assert sum(p.stat().st_size for p in on_disk) == used
                assert len(on_disk) == 1
            # An ADMIN's backup of the HOST's server counts against its owner too.
            async with api_client(daemon) as admin:
                await admin.error("server_backup_create", {"server": "one"}, 409)

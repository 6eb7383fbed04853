"""A server's files over the HTTP API: every call on a real daemon's listener, what it
leaves on disk, its audit entries, and who may make it."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import trio

from tests.helpers.accounts import add_account
from tests.helpers.admin_accounts import server_audit, set_flags
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.files import usual_umask
from tests.helpers.http import api_client, assert_error
from tests.helpers.server_files import Files, leftovers
from tests.helpers.servers import FAST_DEMO, command_settings

BINARY = bytes(range(256)) * 3


async def test_every_file_call(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    root = tmp_path / "data" / "servers" / "game"
    with trio.fail_after(60), usual_umask():
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "boss", "ADMIN")
            async with api_client(daemon, "boss") as api:
                await api.create("game", "demo-game", FAST_DEMO)
                files = Files(api, "game")
                assert await files.ok("list") == {
                    "path": "",
                    "entries": [],
                    "truncated": False,
                    "max_read_bytes": 1024 * 1024,
                    "max_upload_bytes": 1024 * 1024 * 1024,
                }

                made = await files.ok("mkdir", path="config")
                assert (made["path"], made["name"], made["type"]) == (
                    "config",
                    "config",
                    "directory",
                )
                assert (root / "config").is_dir()
                assert (await files.refused("mkdir", 409, path="config"))[
                    "error_type"
                ] == "conflict"
                missing = await files.refused("mkdir", 404, path="a/b/c")
                assert "no such file or directory: a" in missing["error_message"]
                await files.ok("mkdir", path="a/b/c", parents=True)
                assert (root / "a" / "b" / "c").is_dir()

                text = "motd=hello\nmax-players=4\n"
                wrote = await files.ok("write", path="config/server.properties", data=text)
                assert wrote["path"] == "config/server.properties"
                assert (wrote["type"], wrote["size"], wrote["mode"]) == ("file", len(text), "0644")
                assert (root / "config" / "server.properties").read_text() == text
                read = await files.ok("read", path="config/server.properties")
                assert read == {
                    "path": "config/server.properties",
                    "size": len(text),
                    "mtime": wrote["mtime"],
                    "encoding": "utf-8",
                    "data": text,
                }

                # Binary content goes as base64 both ways.
                b64 = base64.b64encode(BINARY).decode()
                await files.ok("write", path="blob.bin", data=b64, encoding="base64")
                assert (root / "blob.bin").read_bytes() == BINARY
                read = await files.ok("read", path="blob.bin")
                assert (read["encoding"], read["data"]) == ("base64", b64)
                refusal = await files.refused("read", 400, path="blob.bin", encoding="utf-8")
                assert refusal["error_message"].startswith("this file is not valid UTF-8")
                forced = await files.ok("read", path="config/server.properties", encoding="base64")
                assert base64.b64decode(forced["data"]) == text.encode()

                # A write replaces the file whole (a new inode) and keeps its permissions.
                target = root / "config" / "server.properties"
                target.chmod(0o750)
                inode = target.stat().st_ino
                again = await files.ok("write", path="config/server.properties", data="motd=x\n")
                assert again["mode"] == "0750"
                assert stat.S_IMODE(target.stat().st_mode) == 0o750
                assert target.stat().st_ino != inode
                assert target.read_text() == "motd=x\n"
                assert leftovers(root / "config") == []

                # Uploads and downloads stream past http.max_body_bytes (1 MiB).
                big = os.urandom(3 * 1024 * 1024 + 17)
                response = await files.upload("world/level.dat", big)
                assert_error(response, 404)  # the directory must exist first
                response = await files.upload("a/level.dat", big)
                assert response.status_code == 200, response.text
                assert response.json()["size"] == len(big)
                assert (root / "a" / "level.dat").read_bytes() == big
                down = await files.download("a/level.dat")
                assert down.status_code == 200
                assert down.headers["content-type"] == "application/octet-stream"
                assert (
                    down.headers["content-disposition"] == "attachment; filename*=UTF-8''level.dat"
                )
                assert down.content == big
                too_big = await files.refused("read", 413, path="a/level.dat")
                assert "download it instead" in too_big["error_message"]
                assert (await files.refused("download", 409, path="a"))["error_type"] == "conflict"

                listed = await files.ok("list", path="config/")
                assert listed["path"] == "config"
                (entry,) = listed["entries"]
                assert entry["name"] == "server.properties"
                assert (entry["type"], entry["size"], entry["mode"]) == ("file", 7, "0750")
                names = [e["name"] for e in (await files.ok("list"))["entries"]]
                assert names == ["a", "blob.bin", "config"]

                moved = await files.ok(
                    "rename", path="config/server.properties", to="server.properties"
                )
                assert (moved["path"], moved["type"]) == ("server.properties", "file")
                assert (root / "server.properties").read_text() == "motd=x\n"
                assert not (root / "config" / "server.properties").exists()
                taken = await files.refused("rename", 409, path="blob.bin", to="server.properties")
                assert taken["error_message"] == "server.properties exists already"
                assert (root / "blob.bin").read_bytes() == BINARY
                await files.refused("rename", 404, path="nothing", to="else")
                into_itself = await files.refused("rename", 400, path="a", to="a/b/c/a")
                assert "cannot be moved into itself" in into_itself["error_message"]

                full = await files.refused("delete", 409, path="a")
                assert "not empty" in full["error_message"]
                assert await files.ok("delete", path="a", recursive=True) is None
                assert not (root / "a").exists()
                await files.ok("delete", path="blob.bin")
                await files.ok("delete", path="config")
                assert not (root / "config").exists()
                await files.refused("delete", 404, path="blob.bin")
                itself = await files.refused("delete", 400, path="", recursive=True)
                assert "itself cannot be deleted" in itself["error_message"]
                assert sorted(p.name for p in root.iterdir()) == ["server.properties"]

            changes = [e for e in await server_audit(daemon, "game") if "files:" in e.message]
            assert [e.message for e in changes] == [
                "files: made directory config",
                "files: made directory a/b/c",
                f"files: wrote config/server.properties ({len(text)} bytes)",
                "files: wrote blob.bin (768 bytes)",
                "files: wrote config/server.properties (7 bytes)",
                f"files: uploaded a/level.dat ({len(big)} bytes)",
                "files: renamed config/server.properties to server.properties",
                "files: deleted directory a",
                "files: deleted file blob.bin",
                "files: deleted directory config",
            ]
            assert {(e.topic, e.user_name) for e in changes} == {("server", "boss")}


async def test_only_the_owner_and_admins_use_a_servers_files(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    root = tmp_path / "data" / "servers" / "game"
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "host", "HOST")
            await add_account(daemon, "other", "HOST")
            async with api_client(daemon, "host") as host:
                await host.create("game", "demo-game", FAST_DEMO)
                mine = Files(host, "game")
                # It runs as the daemon's own user: what its owner wrote there (a module
                # on its path, a jar) would run with the daemon's rights.
                for op, body in (
                    ("write", {"path": "mine.txt", "data": "mine"}),
                    ("mkdir", {"path": "leosuite"}),
                ):
                    refusal = await mine.refused(op, 403, **body)
                    assert "runs as the daemon's own user" in refusal["error_message"]
                upload = await mine.upload("mine.txt", b"mine")
                assert "daemon's own user" in assert_error(upload, 403)["error_message"]
                assert (await mine.ok("list"))["entries"] == []
            async with api_client(daemon) as admin:
                await Files(admin, "game").ok("write", path="mine.txt", data="mine")
            async with api_client(daemon, "other") as other:
                # Another account gets the answer of a server that does not exist.
                for files in (Files(other, "game"), Files(other, "nosuchserver")):
                    for op, body in (
                        ("list", {}),
                        ("read", {"path": "mine.txt"}),
                        ("download", {"path": "mine.txt"}),
                        ("write", {"path": "mine.txt", "data": "theirs"}),
                        ("rename", {"path": "mine.txt", "to": "x.txt"}),
                        ("delete", {"path": "mine.txt"}),
                        ("mkdir", {"path": "d"}),
                    ):
                        refusal = await files.refused(op, 404, **body)
                        assert refusal["error_message"] == f"no server named {files.server!r}"
                    upload = await files.upload("mine.txt", b"theirs")
                    assert assert_error(upload, 404)["error_message"].startswith("no server named")
            assert sorted(p.name for p in root.iterdir()) == ["mine.txt"]
            assert (root / "mine.txt").read_text() == "mine"

            async with daemon.http() as anonymous:
                response = await anonymous.post("/api/server_files_list", json={"server": "game"})
                assert assert_error(response, 403)["error_type"] == "forbidden"

            # An ADMIN uses every server's files.
            async with api_client(daemon) as admin:
                files = Files(admin, "game")
                await files.ok("write", path="mine.txt", data="admin was here")
                assert (await files.ok("read", path="mine.txt"))["data"] == "admin was here"


async def test_an_admin_only_types_files_are_changed_by_an_admin_only(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    root = tmp_path / "data" / "servers" / "shell"
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon:
            boss_id = await add_account(daemon, "boss", "ADMIN")
            async with api_client(daemon, "boss") as boss:
                await boss.create("shell", "command", command_settings("echo"))
                await Files(boss, "shell").ok("write", path="run.sh", data="echo one\n")
            await set_flags(daemon, boss_id, "HOST")
            async with api_client(daemon, "boss") as boss:
                files = Files(boss, "shell")
                # Still its owner: it lists, reads and downloads...
                assert [e["name"] for e in (await files.ok("list"))["entries"]] == ["run.sh"]
                assert (await files.ok("read", path="run.sh"))["data"] == "echo one\n"
                assert (await files.download("run.sh")).content == b"echo one\n"
                # ...but changes nothing: its program could run what it wrote.
                for op, body in (
                    ("write", {"path": "run.sh", "data": "rm -rf /\n"}),
                    ("rename", {"path": "run.sh", "to": "other.sh"}),
                    ("delete", {"path": "run.sh"}),
                    ("mkdir", {"path": "bin"}),
                ):
                    refusal = await files.refused(op, 403, **body)
                    assert refusal == {
                        "error_type": "permission_denied",
                        "error_message": "changing the files of a server of type 'command' "
                        "needs the ADMIN flag",
                    }
                upload = await files.upload("run.sh", b"rm -rf /\n")
                assert assert_error(upload, 403)["error_type"] == "permission_denied"
            assert sorted(p.name for p in root.iterdir()) == ["run.sh"]
            assert (root / "run.sh").read_text() == "echo one\n"
            async with api_client(daemon) as admin:
                await Files(admin, "shell").ok("write", path="run.sh", data="echo two\n")
            assert (root / "run.sh").read_text() == "echo two\n"

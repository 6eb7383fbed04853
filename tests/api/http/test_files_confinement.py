"""No file call leaves a server's directory: a real managed server plants symbolic links
to /etc, to a directory and files outside, a dangling link, a link up to the data
directory, a hard link to an outside file and a named pipe; every list, read,
download, write, upload, mkdir, rename and delete through them is refused with the
documented error (or, for a link itself, works on the link only), and nothing outside
changes. Over the real HTTP listener of a real daemon."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import trio

from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import api_client, assert_error
from tests.helpers.server_files import Files, leftovers, snapshot
from tests.helpers.servers import command_settings

VICTIM = b"outside, never to be changed\n"
LINK = "is a symbolic link (links are never followed)"
#: What the attacks below would have made outside, had one got through.
ATTACK_NAMES = {"leosuite-attack", "stolen.txt", "newdir", "created.txt", "new.txt"}


def link_refusal(body: dict[str, object], shown: str, field: str = "path") -> None:
    assert body == {"error_type": "invalid", "error_message": f"{field}: {shown} {LINK}"}, body


async def test_links_planted_by_a_server_are_never_followed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_bytes(VICTIM)
    (outside / "keep").mkdir()
    root = data / "servers" / "planter"
    with trio.fail_after(60):
        async with running_daemon(make_settings(data)) as daemon, api_client(daemon) as api:
            await api.create("bystander", "command", command_settings("echo"))
            (data / "servers" / "bystander" / "world.dat").write_bytes(b"bystander's")
            settings = command_settings("plant_links", outside)
            await api.create("planter", "command", settings)
            await api.ok("server_start", {"server": "planter"})
            await api.wait_log(
                "planter", b"\nplanted\n"
            )  # its own line: tmp_path has "planted" too
            before = snapshot(tmp_path / "outside")
            files = Files(api, "planter")

            # Listing shows the links as links, without following them.
            entries = {e["name"]: e for e in (await files.ok("list"))["entries"]}
            assert entries["etc"]["type"] == "link"
            assert entries["etc"]["target"] == "/etc"
            assert entries["outside"]["target"] == str(outside)
            assert entries["victim.txt"]["type"] == "link"
            assert entries["fifo"]["type"] == "other"
            assert entries["hard.txt"]["type"] == "file"
            odd = entries["bad\ufffdname"]
            assert base64.b64decode(odd["raw_name"]) == b"bad\xffname"
            assert "raw_name" not in entries["own.txt"]

            # Through a link to a directory: nothing is listed, read or made.
            for path, shown in (
                ("etc", "etc"),
                ("etc/ssl", "etc"),
                ("outside", "outside"),
                ("outside/keep/", "outside"),
                ("sub/escape", "sub/escape"),
                ("sub/escape/servers/bystander", "sub/escape"),
            ):
                link_refusal(await files.refused("list", 400, path=path), shown)
            for op in ("read", "download"):
                for path, shown in (
                    ("etc/passwd", "etc"),
                    ("etc/shadow", "etc"),
                    ("outside/victim.txt", "outside"),
                    ("victim.txt", "victim.txt"),
                    ("dangling", "dangling"),
                    ("sub/escape/leosuite.db", "sub/escape"),
                ):
                    link_refusal(await files.refused(op, 400, path=path), shown)
                # A hard link may be an outside file: it is not read either.
                hard = await files.refused(op, 400, path="hard.txt")
                assert "has other hard links" in hard["error_message"]
                pipe = await files.refused(op, 400, path="fifo")
                assert pipe["error_message"] == "path: fifo is not a regular file"

            # Nothing is written through a link, a dangling one included.
            for path, shown in (
                ("victim.txt", "victim.txt"),
                ("dangling", "dangling"),
                ("outside/victim.txt", "outside"),
                ("outside/new.txt", "outside"),
                ("etc/leosuite-attack", "etc"),
                ("sub/escape/leosuite-attack", "sub/escape"),
            ):
                body = await files.refused("write", 400, path=path, data="pwned")
                link_refusal(body, shown)
                upload = await files.upload(path, b"pwned")
                link_refusal(assert_error(upload, 400), shown)
            for path, shown in (
                ("outside/newdir", "outside"),
                ("etc/newdir", "etc"),
                ("sub/escape/newdir", "sub/escape"),
            ):
                link_refusal(await files.refused("mkdir", 400, path=path), shown)
                body = await files.refused("mkdir", 400, path=path + "/a/b", parents=True)
                link_refusal(body, shown)

            # A rename neither reaches through a link nor lands on or behind one.
            for to, shown in (
                ("outside/stolen.txt", "outside"),
                ("etc/stolen.txt", "etc"),
                ("sub/escape/stolen.txt", "sub/escape"),
                ("victim.txt", "victim.txt"),
                ("dangling", "dangling"),
            ):
                body = await files.refused("rename", 400, path="own.txt", to=to)
                link_refusal(body, shown, "to")
            for path, shown in (("outside/victim.txt", "outside"), ("etc/hosts", "etc")):
                body = await files.refused("rename", 400, path=path, to="here.txt")
                link_refusal(body, shown)
            for path in ("outside/victim.txt", "etc/passwd", "sub/escape/leosuite.db"):
                body = await files.refused("delete", 400, path=path, recursive=True)
                assert body["error_message"].endswith(LINK)

            # Paths that leave by their spelling never reach the file system.
            for path in ("/etc/passwd", "../bystander/world.dat", "sub/../../bystander"):
                for op in ("list", "read", "download", "delete"):
                    refusal = await files.refused(op, 400, path=path)
                    assert refusal["error_type"] == "invalid"
                await files.refused("write", 400, path=path, data="x")
                assert_error(await files.upload(path, b"x"), 400)
                await files.refused("rename", 400, path="own.txt", to=path)

            # A write to the hard link replaces the server's own name only.
            wrote = await files.ok("write", path="hard.txt", data="mine now\n")
            assert wrote["size"] == 9
            assert (root / "hard.txt").read_bytes() == b"mine now\n"
            assert os.stat(root / "hard.txt").st_nlink == 1

            # A link itself is renamed and deleted as a link.
            moved = await files.ok("rename", path="victim.txt", to="sub/moved-link")
            assert moved["type"] == "link"
            assert os.readlink(root / "sub" / "moved-link") == str(outside / "victim.txt")
            await files.ok("delete", path="sub/moved-link")
            await files.ok("delete", path="etc", recursive=True)
            await files.ok("delete", path="outside", recursive=True)
            # A directory holding a link up to the data directory goes, link and all.
            await files.ok("delete", path="sub", recursive=True)
            names = sorted(p.name for p in root.iterdir())
            assert names == ["bad\udcffname", "dangling", "fifo", "hard.txt", "own.txt"]
            assert leftovers(root) == []

            # Nothing outside changed: the outside tree, /etc, the data directory.
            assert snapshot(tmp_path / "outside") == before
            assert (outside / "victim.txt").read_bytes() == VICTIM
            assert not (outside / "created.txt").exists()
            for where in (Path("/etc"), data, data / "servers"):
                assert not ATTACK_NAMES & set(os.listdir(where)), where
            assert (data / "servers" / "bystander" / "world.dat").read_bytes() == b"bystander's"
            if not daemon.ctx.settings.store.url:  # a PostgreSQL store has no file here
                assert (data / "leosuite.db").exists()
            await api.ok("server_stop", {"server": "planter"})

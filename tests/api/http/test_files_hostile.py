"""Hostile values in the file calls: huge paths and names, NUL bytes, wrong types, names
that are not UTF-8, uploads over the limit (announced or not: stopped at the limit with
nothing left behind, an existing file untouched), uploads without the header token or
of another type. Every refusal is the API's error shape. Real daemon, real listener."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import trio

from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import Blob, api_client, assert_error
from tests.helpers.server_files import Files, leftovers
from tests.helpers.servers import FAST_DEMO

LIMIT = 256 * 1024


async def test_hostile_paths_and_bodies_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    root = data / "servers" / "game"
    with trio.fail_after(60):
        async with running_daemon(make_settings(data)) as daemon, api_client(daemon) as api:
            await api.create("game", "demo-game", FAST_DEMO)
            files = Files(api, "game")
            await files.ok("write", path="keep.txt", data="keep\n")

            for path, message in (
                ("a\0b", "path: contains a NUL byte"),
                ("x" * 5000, "path: is longer than 4096 bytes"),
                ("/".join(["abcdefgh"] * 600), "path: is longer than 4096 bytes"),
                ("n" * 256, "path: a name is longer than 255 bytes"),
                ("é" * 128, "path: a name is longer than 255 bytes"),
                ("/keep.txt", "path: must be relative to the server's directory (no leading /)"),
                ("..", "path: '..' is not allowed"),
                ("a/../keep.txt", "path: '..' is not allowed"),
            ):
                for op, body in (
                    ("list", {}),
                    ("read", {}),
                    ("download", {}),
                    ("write", {"data": "x"}),
                    ("delete", {"recursive": True}),
                    ("mkdir", {"parents": True}),
                    ("rename", {"to": "moved"}),
                ):
                    refusal = await files.refused(op, 400, path=path, **body)
                    assert refusal == {"error_type": "invalid", "error_message": message}, op
                to = await files.refused("rename", 400, path="keep.txt", to=path)
                assert to["error_message"] == message.replace("path:", "to:", 1)
                upload = assert_error(await files.upload(path, b"x"), 400)
                assert upload["error_message"] == message
            # A name of 255 bytes, the most a file system takes, is fine.
            await files.ok("write", path="n" * 255, data="long name")
            await files.ok("delete", path="n" * 255)

            for body in (
                {"path": 7},
                {"path": None},
                {"path": ["keep.txt"]},
                {"path": "keep.txt", "extra": 1},
                {"path": "keep.txt", "encoding": "latin-1"},
            ):
                refusal = await files.refused("read", 400, **body)
                assert refusal["error_type"] == "invalid"
            bad_b64 = await files.refused("write", 400, path="k", data="*!", encoding="base64")
            assert bad_b64["error_message"] == "data: is not valid base64"
            missing = await files.refused("read", 400)
            assert "path" in missing["error_message"]
            raw = await api.client.post(
                "/api/server_files_read",
                content=b'{"server": "game", "path": "\xff\xfe"}',
                headers={
                    "Authorization": f"Bearer {api.token}",
                    "Content-Type": "application/json",
                },
            )
            assert assert_error(raw, 400)["error_message"] == "request body is not valid UTF-8"

            # A name that is not UTF-8 (the server's own doing) is listed, never unreadable.
            os.close(os.open(os.fsencode(root) + b"/caf\xe9.txt", os.O_CREAT | os.O_WRONLY))
            entries = {e["name"]: e for e in (await files.ok("list"))["entries"]}
            assert entries["caf\ufffd.txt"]["raw_name"] == "Y2Fm6S50eHQ="
            await files.refused("read", 404, path="caf\ufffd.txt")

            # Uploads: the header's token only, the file's own type, both query fields.
            query = {"server": "game", "path": "up.bin"}
            no_header = await api.client.post(
                "/api/server_files_upload",
                params={**query, "token": api.token},
                content=b"x",
                headers={"Content-Type": "application/octet-stream"},
            )
            assert assert_error(no_header, 403)["error_type"] == "forbidden"
            for kind in ("application/json", "text/plain", "multipart/form-data; boundary=x"):
                wrong = await files.upload("up.bin", b"{}", headers={"Content-Type": kind})
                assert assert_error(wrong, 415)["error_message"].startswith("an upload's body")
            only_server = await files.upload("up.bin", b"x", params={"server": "game"})
            assert assert_error(only_server, 400)["error_message"].startswith("path: required")
            assert not (root / "up.bin").exists()


async def test_an_upload_over_the_limit_leaves_nothing_behind(tmp_path: Path) -> None:
    data = tmp_path / "data"
    root = data / "servers" / "game"
    settings = make_settings(data, servers={"files_max_upload_bytes": LIMIT})
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon, api_client(daemon) as api:
            await api.create("game", "demo-game", FAST_DEMO)
            files = Files(api, "game")
            await files.ok("write", path="world.dat", data="the old world\n")
            before = sorted(p.name for p in root.iterdir())

            # Announced too large: refused before a byte is written.
            announced = await files.upload("world.dat", os.urandom(LIMIT + 1))
            body = assert_error(announced, 413)
            assert announced.headers["connection"] == "close"  # its body may still be coming
            assert body["error_message"] == (
                f"the upload is larger than {LIMIT} bytes (servers.files_max_upload_bytes)"
            )
            # Not announced (chunked): stopped once past the limit, the part written removed.
            for size in (LIMIT + 1, 8 * LIMIT):
                try:
                    response = await files.upload("world.dat", Blob(size, chunk=16 * 1024))
                except (httpx.WriteError, httpx.RemoteProtocolError):
                    pass  # the daemon answered and closed while the body was still coming
                else:
                    assert assert_error(response, 413)["error_message"] == body["error_message"]
                assert sorted(p.name for p in root.iterdir()) == before
                assert leftovers(root) == []
                assert (root / "world.dat").read_text() == "the old world\n"

            # The daemon serves on, and a file of exactly the limit is taken.
            exact = os.urandom(LIMIT)
            response = await files.upload("world.dat", exact)
            assert response.status_code == 200, response.text
            assert (root / "world.dat").read_bytes() == exact
            chunked = await files.upload("other.dat", Blob(LIMIT, chunk=10_000))
            assert chunked.status_code == 200, chunked.text
            assert (root / "other.dat").read_bytes() == b" " * LIMIT
            assert leftovers(root) == []


class Drip(httpx.AsyncByteStream):
    """A body that arrives a byte at a time, each well within the read timeout."""

    def __init__(self, count: int, every: float) -> None:
        self.count = count
        self.every = every

    def __aiter__(self) -> Drip:
        return self

    async def __anext__(self) -> bytes:  # not a generator: it may be left half-read
        if self.count == 0:
            raise StopAsyncIteration
        self.count -= 1
        await trio.sleep(self.every)
        return b"x"


async def test_an_upload_dripping_in_is_ended_with_nothing_left(tmp_path: Path) -> None:
    """Each byte comes within ``http.read_timeout``, but the whole body does not come
    within it plus a second per 64 KiB of the largest upload: 408, no temp file stays."""
    data = tmp_path / "data"
    root = data / "servers" / "game"
    settings = make_settings(
        data, http={"read_timeout": 1.0}, servers={"files_max_upload_bytes": 1024}
    )
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon, api_client(daemon) as api:
            await api.create("game", "demo-game", FAST_DEMO)
            files = Files(api, "game")
            answer = await files.upload("slow.bin", Drip(12, 0.4))
            assert assert_error(answer, 408)["error_type"]
            assert not (root / "slow.bin").exists()
            assert leftovers(root) == []

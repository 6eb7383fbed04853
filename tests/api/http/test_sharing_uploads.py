"""An upload is put in place only if its account may still change the server's files
when the body has arrived: a revoke, a change of the server's user that leaves the
files to ADMIN accounts, or a lock while the body comes refuses it (403) and leaves
nothing behind. Real users (``useradd``), a real daemon and its HTTP listener."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import trio

from tests.helpers.accounts import add_account
from tests.helpers.admin_accounts import admin_client, server_audit
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import api_client, assert_error
from tests.helpers.server_files import Files, leftovers
from tests.helpers.servers import FAST_DEMO
from tests.helpers.users import needs_root, reachable_dir, system_user

pytestmark = needs_root


class Held(httpx.AsyncByteStream):
    """A body whose first part goes at once and whose second waits for ``release``; not
    an async generator, since it may be left half-read."""

    def __init__(self, release: trio.Event) -> None:
        self.parts = [b"a" * 1000, b"b" * 1000]
        self.release = release

    def __aiter__(self) -> Held:
        return self

    async def __anext__(self) -> bytes:
        if not self.parts:
            raise StopAsyncIteration
        if len(self.parts) == 1:
            await self.release.wait()
        return self.parts.pop(0)


async def held_upload(
    files: Files, root: Path, path: str, meanwhile: Callable[[], Awaitable[None]]
) -> httpx.Response:
    """Upload ``path`` with a body held until its temporary file exists and
    ``meanwhile`` has run; the answer."""
    release = trio.Event()
    answers: list[httpx.Response] = []

    async def send() -> None:
        answers.append(await files.upload(path, Held(release)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        while not leftovers(root):
            await trio.sleep(0.02)
        await meanwhile()
        release.set()
    return answers[0]


async def test_an_upload_is_refused_when_its_right_goes_while_it_comes() -> None:
    with reachable_dir() as base, system_user() as (user, _):
        data = base / "data"
        root = data / "servers" / "svc"
        with trio.fail_after(60):
            async with running_daemon(make_settings(data)) as daemon:
                finn_id = await add_account(daemon, "finn")
                async with api_client(daemon) as boss, api_client(daemon, "finn") as finn:
                    await boss.create("svc", "demo-game", {**FAST_DEMO, "user": user.pw_name})

                    async def grant(rights: list[str]) -> None:
                        body = {"server": "svc", "account": "finn", "rights": rights}
                        await boss.ok("server_share_set", body)

                    async def set_user(name: str) -> None:
                        await boss.ok("server_settings", {"server": "svc", "set": {"user": name}})

                    async def lock() -> None:
                        async with admin_client(daemon) as admin:
                            answer = await admin.put(f"/accounts/{finn_id}/", json={"locked": True})
                            assert answer.status_code == 200, answer.text

                    files = Files(finn, "svc")
                    await grant(["files"])
                    # Nothing happens meanwhile: the upload is put in place.
                    kept = await held_upload(files, root, "kept.bin", lambda: trio.sleep(0))
                    assert kept.status_code == 200, kept.text
                    assert (root / "kept.bin").read_bytes() == b"a" * 1000 + b"b" * 1000

                    revoked = await held_upload(files, root, "r.bin", lambda: grant([]))
                    assert assert_error(revoked, 403)["error_type"] == "permission_denied"

                    await grant(["files"])
                    daemon_user = await held_upload(files, root, "u.bin", lambda: set_user(""))
                    refusal = assert_error(daemon_user, 403)
                    assert "only an ADMIN" in refusal["error_message"], refusal
                    await set_user(user.pw_name)

                    locked = await held_upload(files, root, "l.bin", lock)
                    assert assert_error(locked, 403)["error_type"] == "forbidden"

                    for name in ("r.bin", "u.bin", "l.bin"):
                        assert not (root / name).exists(), name
                    assert leftovers(root) == []
                uploads = [e.message for e in await server_audit(daemon, "svc")]
                assert [m for m in uploads if "uploaded" in m] == [
                    "files: uploaded kept.bin (2000 bytes)"
                ]

"""Server names and files do not leak between accounts: a create under a name another
account has gets the same neutral 409 an account gets for its own server's name; a
server destroyed with its files kept never hands its directory to the next creator of
the name; and an account without ADMIN owns at most ``servers.max_per_account``
servers. Over real HTTP and WebSocket against the real daemon."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import Api, api_client
from tests.helpers.servers import FAST_DEMO
from tests.helpers.ws import ws_client

NOT_AVAILABLE = {"error_type": "conflict", "error_message": "server name not available"}


def create_body(name: str) -> dict[str, object]:
    return {"server": name, "type": "demo-game", "settings": FAST_DEMO}


async def test_a_taken_name_is_refused_without_saying_whose(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "host1", "HOST")
            await add_account(daemon, "host2", "HOST")
            async with api_client(daemon, "host1") as one, api_client(daemon, "host2") as two:
                await one.create("world", "demo-game", FAST_DEMO)
                foreign = await two.error("server_create", create_body("world"), 409)
                own = await one.error("server_create", create_body("world"), 409)
                assert foreign == own == NOT_AVAILABLE
                await two.error("server_status", {"server": "world"}, 404)
                # A free name is still created as before.
                await two.create("world2", "demo-game", FAST_DEMO)
            async with ws_client(daemon) as ws:
                await ws.login("host2", PASSWORD)
                answer = await ws.call("server.create", create_body("world"))
                assert answer["status_code"] == 1
                assert answer["status_string"] == "server name not available"
                assert answer["content"] is None


async def test_a_destroyed_servers_directory_is_not_handed_on(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    servers = tmp_path / "data" / "servers"
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "host1", "HOST")
            await add_account(daemon, "host2", "HOST")
            async with api_client(daemon, "host1") as one, api_client(daemon, "host2") as two:
                await one.create("world", "demo-game", FAST_DEMO)
                old_id = daemon.ctx.servers.record("world").id
                (servers / "world" / "ops.json").write_text('{"op": "host1", "pw": "s3cret"}')
                await one.ok("server_start", {"server": "world"})
                await one.wait_status("world", "running")
                await one.ok("server_destroy", {"server": "world"})  # files kept

                kept = servers / ".destroyed" / f"world-{old_id}"
                assert (kept / "ops.json").read_text() == '{"op": "host1", "pw": "s3cret"}'
                assert not (servers / "world").exists()

                await two.create("world", "demo-game", FAST_DEMO)
                assert list((servers / "world").iterdir()) == []
                await two.ok("server_start", {"server": "world"})
                await two.wait_status("world", "running")
                assert not (servers / "world" / "ops.json").exists()
                await two.ok("server_destroy", {"server": "world", "delete_files": True})
                assert not (servers / "world").exists()
                assert (kept / "ops.json").exists()  # deleting the new one spares the old

                # A directory left in place (by an older version) is set aside too.
                (servers / "legacy").mkdir()
                (servers / "legacy" / "secret.txt").write_text("left behind")
                await two.create("legacy", "demo-game", FAST_DEMO)
                assert list((servers / "legacy").iterdir()) == []
                (aside,) = (servers / ".destroyed").glob("legacy-*")
                assert (aside / "secret.txt").read_text() == "left behind"


async def create_many(api: Api, names: list[str]) -> list[int]:
    """Create every name at once; the HTTP status of each."""
    statuses: list[int] = []

    async def one(name: str) -> None:
        statuses.append((await api.post("server_create", create_body(name))).status_code)

    async with trio.open_nursery() as nursery:
        for name in names:
            nursery.start_soon(one, name)
    return sorted(statuses)


async def test_servers_per_account_quota(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", servers={"max_per_account": 2})
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "host1", "HOST")
            await add_account(daemon, "host2", "HOST")
            async with api_client(daemon, "host1") as one, api_client(daemon, "host2") as two:
                await one.create("a1", "demo-game", FAST_DEMO)
                # Racing creates cannot slip past the quota.
                assert await create_many(one, ["a2", "a3", "a4"]) == [200, 403, 403]
                assert len((await one.ok("server_list"))["servers"]) == 2
                refusal = await one.error("server_create", create_body("a5"), 403)
                assert refusal["error_type"] == "permission_denied"
                assert "servers.max_per_account" in refusal["error_message"]
                # At the quota even a taken name gets the quota's answer, not the 409.
                await two.create("b1", "demo-game", FAST_DEMO)
                await one.error("server_create", create_body("b1"), 403)
                # Another account has its own quota; a destroyed server frees a place.
                await two.create("b2", "demo-game", FAST_DEMO)
                await one.ok("server_destroy", {"server": "a1", "delete_files": True})
                await one.create("a5", "demo-game", FAST_DEMO)
            async with ws_client(daemon) as ws:
                await ws.login("host1", PASSWORD)
                answer = await ws.call("server.create", create_body("a6"))
                assert answer["status_code"] == 2, answer
            async with api_client(daemon) as admin:  # ADMIN has no quota
                for name in ("x1", "x2", "x3"):
                    await admin.create(name, "demo-game", FAST_DEMO)

"""``POST /api/server_create_bulk`` and WebSocket ``server.create_bulk``: many servers in
one call, the batch checked whole as the single create checks each server (nothing is
created when one is refused), one transaction, one audit batch."""

from __future__ import annotations

import json
from typing import Any

import trio

from leosuite.store import audit as audit_table
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import RunningDaemon
from tests.helpers.http import Api, api_client, assert_error
from tests.helpers.security import port_of
from tests.helpers.ws import ws_client

SLEEP = {"command": "sleep 1000", "stop_timeout": 1}
DEMO = {"ready_delay": 0, "player_interval": 0, "stop_timeout": 1}


def batch(names: list[str], type_name: str = "command", settings: Any = None) -> dict[str, Any]:
    settings = SLEEP if settings is None else settings
    return {"servers": [{"server": n, "type": type_name, "settings": settings} for n in names]}


async def names(api: Api) -> set[str]:
    return set((await api.ok("server_status", {}))["servers"])


async def entries(daemon: RunningDaemon, needle: str) -> list[audit_table.AuditEntry]:
    found: list[audit_table.AuditEntry] = await daemon.ctx.db.call(
        lambda conn: audit_table.page(conn, newest_first=False, limit=1000)
    )
    return [e for e in found if needle in e.message]


async def test_an_admin_creates_many_in_one_call(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        async with api_client(daemon) as admin:
            wanted = [f"b{i}" for i in range(25)]
            answer = await admin.ok("server_create_bulk", batch(wanted))
            assert answer == {
                "ok": 25,
                "failed": 0,
                "servers": [{"server": n, "readIndex": 0} for n in wanted],
            }
            assert await names(admin) == set(wanted)
            status = await admin.status("b7")
            assert status["status"] == "stopped"
            await admin.ok("server_start", {"server": "b7"})  # a server like any other
            await admin.wait_status("b7", "running")
            await admin.ok("server_force_kill", {"server": "b7"})
            created = await entries(daemon, "of type command (bulk)")
            assert sorted(e.session for e in created) == sorted(wanted)
            assert len({e.timestamp for e in created}) == 1  # one batch
            assert {e.user_name for e in created} == {"admin"}


async def test_a_host_is_checked_as_its_single_create(daemon: RunningDaemon) -> None:
    """The least-privileged account that may create: its quota counts the whole batch,
    an admin-only type or a ``user`` refuses the batch, each refusal naming its server."""
    await add_account(daemon, "olga", "HOST")
    await add_account(daemon, "nina")
    limit = daemon.ctx.settings.servers.max_per_account
    with trio.fail_after(90):
        async with api_client(daemon, "olga") as olga, api_client(daemon, "nina") as nina:
            refused = await nina.error("server_create_bulk", batch(["n1"], "demo-game", DEMO), 403)
            assert "HOST" in refused["error_message"]

            mixed = batch(["o1"], "demo-game", DEMO)
            mixed["servers"] += batch(["o2"])["servers"]  # command: admin only
            refused = await olga.error("server_create_bulk", mixed, 403)
            assert refused["error_message"].startswith("o2: ")
            as_root = batch(["o1", "o2"], "demo-game", {**DEMO, "user": "root"})
            refused = await olga.error("server_create_bulk", as_root, 403)
            assert refused["error_message"].startswith("o1: ")
            over = batch([f"o{i}" for i in range(limit + 1)], "demo-game", DEMO)
            refused = await olga.error("server_create_bulk", over, 403)
            assert "max_per_account" in refused["error_message"]
            assert await names(olga) == set()  # nothing was created

            first = await olga.ok("server_create_bulk", batch(["o1", "o2"], "demo-game", DEMO))
            assert first["ok"] == 2
            rest = [f"o{i}" for i in range(3, limit + 2)]  # one too many with o1, o2
            await olga.error("server_create_bulk", batch(rest, "demo-game", DEMO), 403)
            answer = await olga.ok("server_create_bulk", batch(rest[:-1], "demo-game", DEMO))
            assert answer["ok"] == limit - 2
            assert len(await names(olga)) == limit
            assert await names(nina) == set()  # another account's servers stay unseen


async def test_hostile_batches_are_refused_whole(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        async with api_client(daemon) as admin:
            await admin.create("taken", "command", SLEEP)
            for body, status in (
                ({"servers": []}, 400),
                ({}, 400),
                (batch([f"n{i}" for i in range(1001)]), 400),
                (batch(["h1", "Bad/Name"]), 400),
                (batch(["h1", "h1\n"]), 400),
                (batch(["h1", "x" * 65]), 400),
                (batch(["h1", ""]), 400),
                (batch(["h1", "a\u202e1"]), 400),
                ({"servers": [{"server": 7, "type": "command"}]}, 400),
                ({"servers": [{"server": "h1", "type": "command", "extra": 1}]}, 400),
                ({"servers": [{"server": "h1", "type": "command", "settings": []}]}, 400),
                ({"servers": "h1"}, 400),
                (batch(["h1", "h2"], settings={"command": "sleep 1", "bogus": 1}), 400),
                (batch(["h1", "h2"], settings={"stop_timeout": -5, "command": "x"}), 400),
                (batch(["h1", "h2"], "no-such-type"), 400),
                (batch(["h1", "h2", "h1"]), 409),
                (batch(["h1", "taken"]), 409),
            ):
                error = await admin.error("server_create_bulk", body, status)
                assert error["error_type"], (body, error)
            assert await names(admin) == {"taken"}  # nothing was created
            taken = await admin.error("server_create_bulk", batch(["h1", "taken"]), 409)
            assert taken["error_message"] == "taken: server name not available"

            no_token = await admin.client.post("/api/server_create_bulk", json=batch(["h1"]))
            assert_error(no_token, 403)
            bad = await admin.client.post(
                "/api/server_create_bulk", json={**batch(["h1"]), "token": "x" * 40}
            )
            assert_error(bad, 403)
            assert await names(admin) == {"taken"}


async def test_a_foreign_host_or_origin_is_refused(daemon: RunningDaemon) -> None:
    port = port_of(daemon.endpoints.http)
    evil = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    with trio.fail_after(30):
        async with api_client(daemon) as admin:
            response = await admin.client.post(
                "/api/server_create_bulk",
                json=batch(["f1"]),
                headers={"Authorization": f"Bearer {admin.token}", **evil},
            )
            assert assert_error(response, 421)["error_type"] == "misdirected"
            cross = await admin.client.post(
                "/api/server_create_bulk",
                content=json.dumps(batch(["f1"])),
                headers={
                    "Authorization": f"Bearer {admin.token}",
                    "Origin": "http://evil.example",
                    "Content-Type": "text/plain",
                },
            )
            assert cross.status_code == 415
            assert await names(admin) == set()


async def test_the_websocket_call(daemon: RunningDaemon) -> None:
    await add_account(daemon, "olga", "HOST")
    with trio.fail_after(60):
        async with api_client(daemon) as admin:
            await admin.create("taken", "command", SLEEP)
            async with ws_client(daemon) as client:
                refused = await client.call("server.create_bulk", batch(["w1"], "demo-game", DEMO))
                assert refused["status_code"] == 2  # not logged in
                await client.login("olga", PASSWORD)
                for content in (
                    batch(["w1", "w1"], "demo-game", DEMO),
                    batch(["w1", "taken"], "demo-game", DEMO),
                    batch(["w1", "w2"]),  # command: admin only
                    batch(["w1", "Bad/Name"], "demo-game", DEMO),
                    {"servers": []},
                    None,
                ):
                    answer = await client.call("server.create_bulk", content)
                    assert answer["status_code"] != 0, (content, answer)
                assert await names(admin) == {"taken"}
                answer = await client.ok(
                    "server.create_bulk", batch(["w1", "w2"], "demo-game", DEMO)
                )
                assert answer == {
                    "ok": 2,
                    "failed": 0,
                    "servers": [{"server": "w1", "readIndex": 0}, {"server": "w2", "readIndex": 0}],
                }
            assert await names(admin) == {"taken", "w1", "w2"}

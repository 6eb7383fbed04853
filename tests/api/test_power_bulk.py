"""``POST /api/server_power_bulk``: one power action on many servers, answered as NDJSON,
checked per server as the single call is, audited in one batch."""

from __future__ import annotations

import gc
import json
from typing import Any

import httpx
import pytest
import trio

from leosuite import memory_trim
from leosuite.store import audit as audit_table
from tests.helpers.accounts import add_account
from tests.helpers.daemon import RunningDaemon
from tests.helpers.http import Api, api_client, assert_error
from tests.helpers.security import port_of

SLEEP = {"command": "sleep 1000", "stop_timeout": 1}
DEMO = {"ready_delay": 0, "player_interval": 0, "stop_timeout": 1}


async def bulk(api: Api, body: dict[str, Any], **headers: str) -> list[dict[str, Any]]:
    """The answer's lines; asserts the stream ended with its summary line."""
    response = await api.client.post(
        "/api/server_power_bulk",
        json=body,
        headers={"Authorization": f"Bearer {api.token}", **headers},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in response.text.splitlines()]
    summary = lines.pop()
    assert summary == {
        "done": True,
        "ok": sum("status" in line for line in lines),
        "failed": sum("error_type" in line for line in lines),
    }, (summary, lines)
    return lines


def by_server(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {line["server"]: line for line in lines}
    assert len(found) == len(lines), lines  # one line per server
    return found


async def entries(daemon: RunningDaemon, needle: str) -> list[audit_table.AuditEntry]:
    found: list[audit_table.AuditEntry] = await daemon.ctx.db.call(
        lambda conn: audit_table.page(conn, newest_first=False, limit=1000)
    )
    return [e for e in found if needle in e.message]


async def test_each_server_checked_as_its_single_call(daemon: RunningDaemon) -> None:
    """A HOST account owns some servers and has one shared with power and one with the
    console only: the others are reported as unknown names, never leaked."""
    await add_account(daemon, "olga", "HOST")
    with trio.fail_after(90):
        async with api_client(daemon) as admin, api_client(daemon, "olga") as olga:
            for name in ("o1", "o2"):
                await olga.create(name, "demo-game", DEMO)
            for name in ("a1", "shared", "seen"):
                await admin.create(name, "command", SLEEP)
            await admin.ok(
                "server_share_set", {"server": "shared", "account": "olga", "rights": ["power"]}
            )
            await admin.ok(
                "server_share_set", {"server": "seen", "account": "olga", "rights": ["console"]}
            )
            await admin.ok("server_start", {"server": "a1"})

            names = ["o1", "a1", "nope", "o2", "o1", "seen"]
            lines = by_server(await bulk(olga, {"action": "start", "servers": names}))
            assert set(lines) == {"o1", "a1", "nope", "o2", "seen"}  # o1 asked twice: once
            assert lines["o1"]["status"] in ("starting", "running")
            assert lines["o2"]["status"] in ("starting", "running")
            hidden, unknown = lines["a1"], lines["nope"]
            assert hidden == {
                "server": "a1",
                "error_type": "not_found",
                "error_message": "no server named 'a1'",
            }
            assert unknown["error_message"] == "no server named 'nope'"
            assert lines["seen"]["error_type"] == "permission_denied"  # seen, without power
            assert (await admin.status("a1"))["status"] == "running"  # untouched

            # all: every server olga may do the action on, the console-only one left out
            await olga.wait_status("o1", "running")
            await olga.wait_status("o2", "running")
            lines = by_server(await bulk(olga, {"action": "stop", "all": True}))
            assert lines["o1"]["status"] == lines["o2"]["status"] == "stopped"
            assert lines["shared"]["error_type"] == "conflict"  # shared with power, stopped
            assert set(lines) == {"o1", "o2", "shared"}
            assert (await admin.status("a1"))["status"] == "running"

            # one audit entry per server acted on, the server as its session
            stopped = await entries(daemon, "stop (now stopped; bulk)")
            assert sorted(e.session for e in stopped) == ["o1", "o2"]
            assert {e.user_name for e in stopped} == {"olga"}
            assert len({e.timestamp for e in stopped}) == 1  # one batch
            assert {e.session for e in await entries(daemon, "; bulk)")} == {"o1", "o2"}
            await admin.ok("server_force_kill", {"server": "a1"})


async def test_an_account_without_servers_gets_nothing(daemon: RunningDaemon) -> None:
    await add_account(daemon, "nina")
    with trio.fail_after(60):
        async with api_client(daemon) as admin, api_client(daemon, "nina") as nina:
            await admin.create("a1", "command", SLEEP)
            assert await bulk(nina, {"action": "start", "all": True}) == []
            lines = await bulk(nina, {"action": "kill", "servers": ["a1"]})
            assert lines == [
                {"server": "a1", "error_type": "not_found", "error_message": "no server named 'a1'"}
            ]
            assert (await admin.status("a1"))["status"] == "stopped"
            assert await bulk(nina, {"action": "stop", "servers": []}) == []


async def test_a_mix_of_states(daemon: RunningDaemon) -> None:
    names = [f"m{i}" for i in range(6)]
    with trio.fail_after(60):
        async with api_client(daemon) as admin:
            for name in names:
                await admin.create(name, "command", SLEEP)
            for name in names[:3]:
                await admin.ok("server_start", {"server": name})
            lines = by_server(
                await bulk(admin, {"action": "stop", "servers": names, "parallel": 2})
            )
            assert [lines[n].get("status") for n in names[:3]] == ["stopped"] * 3
            assert [lines[n]["error_type"] for n in names[3:]] == ["conflict"] * 3
            lines = by_server(await bulk(admin, {"action": "restart", "all": True}))
            assert {line["status"] for line in lines.values()} <= {"starting", "running"}
            lines = by_server(await bulk(admin, {"action": "force_kill", "all": True}))
            assert {line["status"] for line in lines.values()} == {"stopped"}


async def test_hostile_requests_are_refused_whole(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        async with api_client(daemon) as admin:
            await admin.create("h1", "command", SLEEP)
            for body in (
                {"action": "stop"},  # neither servers nor all
                {"action": "stop", "servers": ["h1"], "all": True},
                {"action": "explode", "servers": ["h1"]},
                {"action": "start", "servers": ["h1", "Bad/Name"]},
                {"action": "start", "servers": ["h1", "h1\n"]},
                {"action": "start", "servers": ["h1", "x" * 65]},
                {"action": "start", "servers": ["h1", ""]},
                {"action": "start", "servers": ["h1", 7]},
                {"action": "start", "servers": ["h1"], "parallel": 0},
                {"action": "start", "servers": [f"n{i}" for i in range(10_001)]},
                {"action": "start", "servers": ["h1"], "extra": 1},
            ):
                error = await admin.error("server_power_bulk", body, 400)
                assert error["error_type"] == "invalid", (body, error)
            assert (await admin.status("h1"))["status"] == "stopped"  # nothing was done

            # 10 000 names (duplicates among them): each unknown one answered once
            many = [f"n{i % 5000}" for i in range(10_000)]
            lines = await bulk(admin, {"action": "start", "servers": many})
            assert len(lines) == 5000
            assert {line["error_type"] for line in lines} == {"not_found"}

            # no token, a bad token
            no_token = await admin.client.post(
                "/api/server_power_bulk", json={"action": "start", "all": True}
            )
            assert_error(no_token, 403)
            bad = await admin.client.post(
                "/api/server_power_bulk",
                json={"action": "start", "all": True, "token": "x" * 40},
            )
            assert_error(bad, 403)
            assert (await admin.status("h1"))["status"] == "stopped"


async def test_a_foreign_host_or_origin_is_refused(daemon: RunningDaemon) -> None:
    port = port_of(daemon.endpoints.http)
    evil = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    with trio.fail_after(30):
        async with api_client(daemon) as admin:
            await admin.create("f1", "command", SLEEP)
            response = await admin.client.post(
                "/api/server_power_bulk",
                json={"action": "start", "all": True},
                headers={"Authorization": f"Bearer {admin.token}", **evil},
            )
            assert assert_error(response, 421)["error_type"] == "misdirected"
            cross = await admin.client.post(
                "/api/server_power_bulk",
                content=json.dumps({"action": "start", "all": True}),
                headers={
                    "Authorization": f"Bearer {admin.token}",
                    "Origin": "http://evil.example",
                    "Content-Type": "text/plain",
                },
            )
            assert cross.status_code == 415
            assert (await admin.status("f1"))["status"] == "stopped"


async def quick_and_slow(admin: Api) -> httpx.Request:
    """Two running servers, one that stops at once and one that ignores SIGTERM for its
    30 s stop_timeout (the test force-kills it once it has looked); the bulk stop of
    both, to send (streamed)."""
    await admin.create("quick", "command", SLEEP)
    slow = {"command": "sh -c 'trap \"\" TERM; sleep 1000'", "stop_timeout": 30}
    await admin.create("slow", "command", slow)
    for name in ("quick", "slow"):
        await admin.ok("server_start", {"server": name})
        await admin.wait_status(name, "running")
    return admin.client.build_request(
        "POST",
        "/api/server_power_bulk",
        json={"action": "stop", "servers": ["slow", "quick"]},
        headers={"Authorization": f"Bearer {admin.token}"},
    )


async def test_lines_stream_as_each_server_ends(daemon: RunningDaemon) -> None:
    """The first line arrives while a slow stop is still under way."""
    with trio.fail_after(60):
        async with api_client(daemon) as admin:
            request = await quick_and_slow(admin)
            response = await admin.client.send(request, stream=True)
            try:
                lines = response.aiter_lines()
                first = json.loads(await anext(lines))
                assert first == {"server": "quick", "status": "stopped"}
                assert (await admin.status("slow"))["status"] == "stopping"
                await admin.ok("server_force_kill", {"server": "slow"})  # ends the stop
                rest = [json.loads(line) async for line in lines]
            finally:
                await response.aclose()
            assert rest == [
                {"server": "slow", "status": "stopped"},
                {"done": True, "ok": 2, "failed": 0},
            ]


async def test_the_cycle_collector_waits_for_a_bulk_call_a_bounded_time(
    daemon: RunningDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector is held while the actions run, for PAUSE_LIMIT at most (a slow
    server's stop does not hold it longer), and runs again once the call ends."""
    monkeypatch.setattr(memory_trim, "PAUSE_LIMIT", 1.0)
    with trio.fail_after(60):
        async with api_client(daemon) as admin:
            request = await quick_and_slow(admin)
            assert gc.isenabled()
            started = trio.current_time()
            response = await admin.client.send(request, stream=True)
            try:
                lines = response.aiter_lines()
                assert json.loads(await anext(lines))["server"] == "quick"
                assert not gc.isenabled()  # held while the call runs
                while not gc.isenabled():
                    await trio.sleep(0.05)
                assert trio.current_time() - started >= 1.0
                assert (await admin.status("slow"))["status"] == "stopping"  # still running
                await admin.ok("server_force_kill", {"server": "slow"})  # ends the stop
                rest = [json.loads(line) async for line in lines]
            finally:
                await response.aclose()
            assert rest[-1] == {"done": True, "ok": 2, "failed": 0}
            assert gc.isenabled()
            lines_again = await bulk(admin, {"action": "start", "servers": ["quick"]})
            assert lines_again[0]["status"] in ("starting", "running")
            assert gc.isenabled()  # a call that ends before the limit gives it back too


async def test_a_client_that_goes_away_leaves_begun_actions_audited(
    daemon: RunningDaemon,
) -> None:
    with trio.fail_after(60):
        async with api_client(daemon) as admin:
            slow = {"command": "sh -c 'trap \"\" TERM; sleep 1000'", "stop_timeout": 2}
            await admin.create("s1", "command", slow)
            await admin.ok("server_start", {"server": "s1"})
            await admin.wait_status("s1", "running")
            async with (
                httpx.AsyncClient(base_url=daemon.endpoints.http) as other,
                trio.open_nursery() as nursery,
            ):

                async def call() -> None:
                    await other.post(
                        "/api/server_power_bulk",
                        json={"action": "stop", "servers": ["s1"]},
                        headers={"Authorization": f"Bearer {admin.token}"},
                    )

                nursery.start_soon(call)
                # The client goes away only once the daemon has begun the stop (2 s long).
                await admin.wait_status("s1", "stopping", "stopped")
                nursery.cancel_scope.cancel()
            await admin.wait_status("s1", "stopped")  # carried through after the cut
            while not await entries(daemon, "stop (now stopped; bulk)"):
                await trio.sleep(0.05)

"""Hostile use of bulk power against a real daemon (the log-file half is
test_round_attack_logfiles.py): every call tried by an account without rights and with
each single right, from a foreign Host and Origin, with hostile values and from the
command line; a session that ends during a bulk call; the audit of what a bulk call did
and refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio

from leosuite.store import audit as audit_table
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.cli import Cli
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon
from tests.helpers.http import Api, api_client, assert_error
from tests.helpers.security import handshake, port_of
from tests.helpers.servers import command_settings
from tests.helpers.ws import ws_client

SLEEP = {"command": "sleep 1000", "stop_timeout": 1}
DEMO = {"ready_delay": 0, "player_interval": 0, "stop_timeout": 1}
RIGHTS = ("console", "commands", "power", "files", "settings")


async def bulk_lines(api: Api, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = await api.client.post(
        "/api/server_power_bulk", json=body, headers={"Authorization": f"Bearer {api.token}"}
    )
    assert response.status_code == 200, response.text
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines[-1].get("done") is True, lines
    return lines[:-1]


async def audit_entries(daemon: RunningDaemon) -> list[audit_table.AuditEntry]:
    found: list[audit_table.AuditEntry] = await daemon.ctx.db.call(
        lambda conn: audit_table.page(conn, newest_first=False, limit=100_000)
    )
    return found


async def share(admin: Api, server: str, account: str, rights: list[str]) -> None:
    await admin.ok("server_share_set", {"server": server, "account": account, "rights": rights})


# ---------------------------------------------------------------- bulk power


async def test_bulk_with_each_single_right(daemon: RunningDaemon) -> None:
    """Only ``power`` lets a grantee act; no right, or any other single one, does not,
    and a server shared with nothing is answered as an unknown name."""
    for account in ("none", *RIGHTS):
        await add_account(daemon, f"u-{account}")
    with trio.fail_after(120):
        async with api_client(daemon) as admin:
            await admin.create("b1", "demo-game", DEMO)
            for right in RIGHTS:
                await share(admin, "b1", f"u-{right}", [right])
            for account in ("none", *RIGHTS):
                async with api_client(daemon, f"u-{account}") as user:
                    everything = await bulk_lines(user, {"action": "start", "all": True})
                    if account == "power":  # all: the one server it may start
                        assert [line["server"] for line in everything] == ["b1"]
                        await admin.ok("server_force_kill", {"server": "b1"})
                        await admin.wait_status("b1", "stopped")
                    else:
                        assert everything == []
                    lines = await bulk_lines(user, {"action": "start", "servers": ["b1"]})
                    if account == "power":
                        assert lines == [{"server": "b1", "status": lines[0]["status"]}]
                        await admin.ok("server_force_kill", {"server": "b1"})
                        await admin.wait_status("b1", "stopped")
                    elif account == "none":
                        assert lines == [
                            {
                                "server": "b1",
                                "error_type": "not_found",
                                "error_message": "no server named 'b1'",
                            }
                        ]
                    else:
                        assert [x["error_type"] for x in lines] == ["permission_denied"], lines
                        assert (await admin.status("b1"))["status"] == "stopped"
                    async with ws_client(daemon) as ws:
                        await ws.login(f"u-{account}", PASSWORD)
                        answer = await ws.call(
                            "server.power_bulk", {"action": "kill", "servers": ["b1"]}
                        )
                        assert answer["status_code"] == 0, answer
                        code = answer["content"]["servers"][0]["status_code"]
                        if account == "none":
                            assert code == 8, answer  # as a name that does not exist
                        elif account == "power":
                            assert code not in (0, 2, 8), answer  # a stopped server: conflict
                        else:
                            assert code == 2, answer


async def test_bulk_hostile_values(daemon: RunningDaemon) -> None:
    with trio.fail_after(120):
        async with api_client(daemon) as admin:
            await admin.create("h1", "command", SLEEP)
            # 100 000 names is refused whole (the body limit or the count), nothing done
            names = [f"n{i}" for i in range(100_000)]
            response = await admin.post("server_power_bulk", {"action": "start", "servers": names})
            assert response.status_code in (400, 413), response.text
            # the same server 1000 times: acted on and answered once
            lines = await bulk_lines(admin, {"action": "start", "servers": ["h1"] * 1000})
            assert [line["server"] for line in lines] == ["h1"]
            await admin.wait_status("h1", "running")
            for parallel in (2**63, 10**30, -1, 0, 1.5, "8", True, None):
                body = {"action": "stop", "servers": ["h1"], "parallel": parallel}
                response = await admin.post("server_power_bulk", body)
                if parallel in (2**63, 10**30, None):  # at most MAX_PARALLEL at once
                    assert response.status_code == 200, (parallel, response.text)
                else:
                    assert_error(response, 400)
            await admin.wait_status("h1", "stopped")
            for action in ("START", "destroy", "install", "", None, 1, ["start"]):
                error = await admin.error(
                    "server_power_bulk", {"action": action, "servers": ["h1"]}, 400
                )
                assert error["error_type"] == "invalid", action
            for servers in ("h1", {"h1": 1}, [None], [["h1"]], ["h1"] * 10_001):
                await admin.error("server_power_bulk", {"action": "start", "servers": servers}, 400)
            for flag in (1, "true", None):
                await admin.error("server_power_bulk", {"action": "start", "all": flag}, 400)
            assert (await admin.status("h1"))["status"] == "stopped"
            # a body that is not JSON, JSON of another shape, a huge one
            for raw in (b"{", b"[]", b"\xff\xfe", b'{"action": "start", "all": true' + b" " * 10):
                response = await admin.client.post(
                    "/api/server_power_bulk",
                    content=raw,
                    headers={
                        "Authorization": f"Bearer {admin.token}",
                        "Content-Type": "application/json",
                    },
                )
                assert_error(response, 400)


async def test_bulk_hidden_servers_are_not_leaked(daemon: RunningDaemon) -> None:
    """A caller learns nothing of a server it may not see: its line is the one of a name
    that does not exist, the count of lines is the same, and its audit is not the
    caller's to read."""
    await add_account(daemon, "mallory", "HOST")
    with trio.fail_after(90):
        async with api_client(daemon) as admin, api_client(daemon, "mallory") as mallory:
            for name in ("secret1", "secret2"):
                await admin.create(name, "command", SLEEP)
            await admin.ok("server_start", {"server": "secret1"})
            for action in ("start", "stop", "restart", "kill", "force_kill"):
                real = await bulk_lines(mallory, {"action": action, "servers": ["secret1"]})
                fake = await bulk_lines(mallory, {"action": action, "servers": ["nosuch1"]})
                shown = [json.dumps(x).replace("secret1", "?") for x in real]
                assert shown == [json.dumps(x).replace("nosuch1", "?") for x in fake]
                assert real[0]["error_type"] == fake[0]["error_type"] == "not_found"
            assert (await admin.status("secret1"))["status"] == "running"
            assert (await admin.status("secret2"))["status"] == "stopped"
            # all: nothing of the ADMIN's servers is touched or named
            for action in ("start", "stop", "force_kill"):
                assert await bulk_lines(mallory, {"action": action, "all": True}) == []
            assert (await admin.status("secret1"))["status"] == "running"
            await admin.ok("server_force_kill", {"server": "secret1"})


async def test_bulk_refused_actions_are_audited_with_the_caller(daemon: RunningDaemon) -> None:
    """Each server acted on has its entry, and so has each refusal on a server the caller
    sees; names the caller cannot see are counted in one entry, never one each (a request
    of 10 000 unknown names must not write 10 000 entries)."""
    await add_account(daemon, "greta", "HOST")
    with trio.fail_after(90):
        async with api_client(daemon) as admin, api_client(daemon, "greta") as greta:
            await admin.create("g1", "demo-game", DEMO)
            await admin.create("g2", "demo-game", DEMO)
            await admin.create("hidden", "command", SLEEP)
            await share(admin, "g1", "greta", ["power"])
            await share(admin, "g2", "greta", ["console"])
            before = len(await audit_entries(daemon))
            many = ["g1", "g2", "hidden", *(f"x{i}" for i in range(3000))]
            lines = await bulk_lines(greta, {"action": "start", "servers": many})
            assert len(lines) == 3003
            await admin.ok("server_force_kill", {"server": "g1"})
            new = [e for e in (await audit_entries(daemon))[before:] if e.user_name == "greta"]
            assert len(new) <= 10, [e.message for e in new]
            by_session = {e.session: e for e in new}
            assert "start (now" in by_session["g1"].message
            assert "bulk" in by_session["g1"].message
            assert "refused" in by_session["g2"].message
            assert "permission_denied" in by_session["g2"].message or "rights" in (
                by_session["g2"].message
            )
            assert "hidden" not in by_session
            counted = [e for e in new if "3001" in e.message]
            assert len(counted) == 1, [e.message for e in new]
            assert {e.user_id for e in new} == {by_session["g1"].user_id}
            assert all(e.user_ip == "127.0.0.1" for e in new)


async def _admin_api_put(daemon: RunningDaemon, account_id: int, body: dict[str, Any]) -> None:
    async with daemon.admin(auth=("admin", ADMIN_PASSWORD)) as client:
        response = await client.put(f"/accounts/{account_id}", json=body)
        assert response.status_code == 200, response.text


async def _until_state(daemon: RunningDaemon, server: str, state: str) -> None:
    while daemon.ctx.servers.status(server)["status"] != state:
        await trio.sleep(0.02)


async def test_a_session_ended_during_a_bulk_call_stops_it(daemon: RunningDaemon) -> None:
    """An ADMIN demoted (its tokens ended) while its bulk stop runs: the action under way
    is carried through, the ones not begun are refused as its next single call would be."""
    boss = await add_account(daemon, "boss", "ADMIN")
    with trio.fail_after(120):
        async with api_client(daemon) as admin, api_client(daemon, "boss") as boss_api:
            await admin.create("slow", "command", command_settings("unkillable", stop_timeout=60))
            for name in ("q1", "q2"):
                await admin.create(name, "command", SLEEP)
            for name in ("slow", "q1", "q2"):
                await admin.ok("server_start", {"server": name})
            await admin.wait_log("slow", b"ready")
            body = {"action": "stop", "servers": ["slow", "q1", "q2"], "parallel": 1}
            lines: list[dict[str, Any]] = []

            async def run_bulk() -> None:
                lines.extend(await bulk_lines(boss_api, body))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_bulk)
                await _until_state(daemon, "slow", "stopping")
                await _admin_api_put(daemon, boss, {"admin": False})
                await admin.ok("server_force_kill", {"server": "slow"})
            found = {line["server"]: line for line in lines}
            assert set(found) == {"slow", "q1", "q2"}
            for name in ("q1", "q2"):
                assert "error_type" in found[name], found
                assert (await admin.status(name))["status"] == "running"
                assert "session ended" in found[name]["error_message"]
            mine = [e.message for e in await audit_entries(daemon) if e.user_name == "boss"]
            assert "stop refused on 2 server(s): the session ended" in " ".join(mine), mine
            await admin.ok("server_force_kill", {"server": "q1"})
            await admin.ok("server_force_kill", {"server": "q2"})


async def test_a_websocket_bulk_call_stops_once_its_token_is_logged_out(
    daemon: RunningDaemon,
) -> None:
    with trio.fail_after(120):
        async with api_client(daemon) as admin, ws_client(daemon) as ws:
            await admin.create("slow", "command", command_settings("unkillable", stop_timeout=60))
            await admin.create("q1", "command", SLEEP)
            for name in ("slow", "q1"):
                await admin.ok("server_start", {"server": name})
            await admin.wait_log("slow", b"ready")
            token = await ws.login()
            body = {"action": "stop", "servers": ["slow", "q1"], "parallel": 1}
            answers: list[dict[str, Any]] = []

            async def run_bulk() -> None:
                answers.append(await ws.call("server.power_bulk", body))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_bulk)
                await _until_state(daemon, "slow", "stopping")
                logout = await admin.client.post("/api/auth/logout", json={"token": token})
                assert logout.status_code == 204, logout.text
                await admin.ok("server_force_kill", {"server": "slow"})
            (answer,) = answers
            assert answer["status_code"] == 0, answer
            slow, q1 = answer["content"]["servers"]
            assert (slow["server"], q1["server"]) == ("slow", "q1")
            assert "status" in slow, slow  # the action under way was carried through
            assert "session ended" in q1["status_string"], q1
            assert (await admin.status("q1"))["status"] == "running"
            await admin.ok("server_force_kill", {"server": "q1"})


async def test_bulk_over_the_websocket_from_a_foreign_origin_is_refused(
    daemon: RunningDaemon,
) -> None:
    port = port_of(daemon.endpoints.ws)
    with trio.fail_after(30):
        for host, origin in (
            (f"evil.example:{port}", None),
            (f"127.0.0.1:{port}", "http://evil.example"),
            (f"127.0.0.1:{port}", "null"),
        ):
            status, _ = await handshake(daemon.endpoints.ws, host=host, origin=origin)
            assert status in (403, 421), (host, origin, status)


async def test_bulk_from_the_command_line_with_hostile_arguments(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    cli = Cli(tmp_path / "home")
    with trio.fail_after(90):
        await cli.login(daemon.endpoints.http)
        async with api_client(daemon) as admin:
            await admin.create("c1", "command", SLEEP)
            huge = await cli.run("server", "start", "c1", "c1", "--parallel", str(10**30))
            assert huge.stdout.decode().splitlines()[0] == "c1: running", huge.stdout
            for bad in ("0", "-1", "1.5", "x", ""):
                refused = await cli.run("server", "stop", "c1", "--parallel", bad, expect=2)
                assert b"parallel" in refused.stderr
            whole = await cli.run("server", "stop", "c1", "../etc", expect=1)
            assert (await admin.status("c1"))["status"] == "running", whole.stdout
            await admin.ok("server_force_kill", {"server": "c1"})

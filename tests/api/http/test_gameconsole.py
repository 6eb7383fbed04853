"""``/service`` (GameConsole's protocol) over real HTTP against an in-process daemon with
real servers: off by default, every action of the envelope, the console keys, permissions,
and hostile input (the login: test_gameconsole_login.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from leosuite.api.http.app import create_http_app
from leosuite.api.http.gameconsole import ServerHandles
from leosuite.auth.service import hash_token
from leosuite.settings import Settings
from leosuite.store import accounts
from leosuite.store import audit as audit_table
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import RunningDaemon, make_settings, running_daemon
from tests.helpers.gameconsole import GameConsole
from tests.helpers.http import api_client, assert_error
from tests.helpers.server_files import Payload
from tests.helpers.servers import FAST_DEMO, command_settings

ON = {"gameconsole_service": True}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", http=ON)


async def audit_messages(daemon: RunningDaemon, server: str) -> list[str]:
    entries: list[audit_table.AuditEntry] = await daemon.ctx.db.call(
        lambda conn: audit_table.page(conn, newest_first=False, limit=1000, session=server)
    )
    return [entry.message for entry in entries]


# ---------------------------------------------------------------- off by default


async def test_off_by_default(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running_daemon(make_settings(tmp_path / "data")) as daemon:
            assert daemon.ctx.settings.http.gameconsole_service is False
            async with daemon.http() as client:
                unknown = await client.get("/no-such-path")
                assert_error(unknown, 404)
                for method, params in [
                    ("GET", {"service": "config"}),
                    ("POST", {"service": "password"}),
                    ("POST", None),
                    ("OPTIONS", None),
                ]:
                    answer = await client.request(
                        method,
                        "/service",
                        params=params,
                        json={} if method == "POST" else None,
                        headers={"Origin": "http://console.example.org:8080"},
                    )
                    assert answer.status_code == 404, (method, answer.text)
                    assert answer.json() == unknown.json()
                    assert "Access-Control-Allow-Origin" not in answer.headers
                document = (await client.get("/openapi.json")).json()
                assert "/service" not in document["paths"]


# ---------------------------------------------------------------- the envelope


def test_server_keys() -> None:
    handles = ServerHandles(limit=2)
    token, other = "ab" * 32, "cd" * 32
    key = handles.make(token, "world")
    assert key.startswith("world.")
    assert handles.make(token, "world") == key  # the same key every time
    assert handles.make(other, "world") != key
    assert handles.name_for(token, key) == "world"
    assert handles.name_for(other, key) is None
    assert handles.name_for(token, "world") == "world"
    assert handles.name_for(token, "world.\u00e9") is None
    assert handles.grant(key) == (token, "world")
    handles.make(other, "a")
    handles.make(other, "b")  # over the limit: the least recently used goes
    assert handles.grant(key) is None
    assert len(handles) == 2
    handles.forget_token(hash_token(other))
    assert len(handles) == 0
    assert handles._by_token == {}  # the index forgets evicted and ended handles alike
    kept = handles.make(token, "world")
    handles.forget(kept)
    assert handles._by_token == {}
    handles.forget_token(hash_token(token))  # nothing left: no error


async def test_every_action_on_a_real_server(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        async with api_client(daemon) as api, daemon.http() as client:
            await api.create("demo", "demo-game", FAST_DEMO)
            gc = GameConsole(client)
            await gc.login()

            assert await gc.ok("management", "servers") == {"servers": ["demo"]}
            overview = await gc.overview()
            assert len(overview) == 1
            handle, entry = next(iter(overview.items()))
            assert handle.startswith("demo.")
            assert entry == {
                "state": "stopped",
                "status": "stopped",
                "server-id": handle,
                "server-name": "demo",
                "smalldescription": "demo",
                "owner": "admin",
                "readIndex": 0,
                "bufSize": daemon.ctx.settings.servers.retention_bytes,
                "exitCode": 0,
            }
            assert await gc.overview() == overview  # the same key every time

            status = await gc.ok("server", "status", handle)
            assert status == {
                "state": "stopped",
                "server-id": handle,
                "server-name": "demo",
                "readIndex": 0,
                "bufSize": daemon.ctx.settings.servers.retention_bytes,
            }
            # a plain name works with the token too
            assert (await gc.ok("server", "status", "demo"))["server-id"] == "demo"

            started = await gc.ok("server", "start", handle)
            assert started["stage-changed"] == "now"
            assert started["state"] == "started"
            await gc.wait_log(handle, "Server ready")
            await api.wait_status("demo", "running")
            again = await gc.ok("server", "start", handle)
            assert "stage-changed" not in again
            assert again["state"] == "started"

            mark = (await gc.ok("server", "status", handle))["readIndex"]
            said = await gc.ok("server", "command", handle, command="say back\\slash")
            assert said["state"] == "started"
            text = await gc.wait_log(handle, "[Server] back", mark)
            # the origin's escaping: backslashes doubled, each newline as \n
            assert "[Server] back\\\\slash\\n" in text
            assert "\n" not in text

            stopped = await gc.ok("server", "stop", handle)  # SIGTERM, as the origin's destroy
            assert set(stopped) == {"state", "server-id", "readIndex", "bufSize"}
            await api.wait_status("demo", "stopped")
            moot = await gc.ok("server", "command", handle, command="say nobody hears")
            assert moot["state"] == "stopped"
            assert (await gc.ok("server", "stop", handle))["state"] == "stopped"

            await gc.ok("server", "start", handle)
            await api.wait_status("demo", "running")
            killed = await gc.ok("server", "forcestop", handle)
            assert killed["server-id"] == handle
            await api.wait_status("demo", "stopped")
        messages = await audit_messages(daemon, "demo")
        assert any(m.startswith("start (now") for m in messages), messages
        assert any(m.startswith("kill (now") for m in messages), messages
        assert any(m.startswith("force kill (now") for m in messages), messages
        assert "command: say back\\slash" in messages
        assert "command: say nobody hears" not in messages


async def test_log_without_token_needs_a_handle(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        async with api_client(daemon) as api, daemon.http() as client:
            await api.create(
                "bytes", "command", command_settings("invalid_utf8", "--sleep", restart="never")
            )
            gc = GameConsole(client)
            await gc.login()
            handle = await gc.handle("bytes")
            await gc.ok("server", "start", handle)
            text = await gc.wait_log(handle, "ok\\n")
            assert (
                "\ufffd\ufffd\x00\ufffdok\\n" in text
            )  # bytes that are not UTF-8, replaced as the origin did

            first = await gc.log(handle)
            assert first["oldReadIndex"] == 0
            assert first["readIndex"] >= first["nextReadIndex"] > 0
            assert first["state"] == "started"
            # a readIndex beyond the end is a console it no longer has: from the start
            beyond = await gc.log(handle, first["readIndex"] + 1000)
            assert beyond["oldReadIndex"] == 0
            # a long poll, as older clients sent it
            blocking = await gc.ok(
                "server", "log", handle, blocking=True, readIndex=first["nextReadIndex"] - 1
            )
            assert blocking["nextReadIndex"] == first["nextReadIndex"]

            anonymous = GameConsole(client)
            for server in ("bytes", handle.split(".")[0] + "." + "0" * 32, "nope.x"):
                assert_error(await anonymous.post(_log_body(server)), 403)
            # with a token, the handle of another token is no server
            other = GameConsole(client)
            await other.login()
            assert_error(await other.act("server", "status", handle), 404)

            # the handle ends with its token
            logout = await client.post(
                "/api/auth/logout", json={}, headers={"Authorization": f"Bearer {gc.token}"}
            )
            assert logout.status_code == 204
            assert_error(await anonymous.post(_log_body(handle)), 403)
            await api.ok("server_stop", {"server": "bytes"})


def _log_body(server: str) -> dict[str, Any]:
    return {"target": "server", "action": "log", "server": server, "readIndex": 0}


async def test_an_account_sees_and_acts_only_on_its_own(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        await add_account(daemon, "host1", "HOST")
        await add_account(daemon, "plain1")
        async with api_client(daemon) as admin, api_client(daemon, "host1") as host:
            await admin.create("adminsrv", "demo-game", FAST_DEMO)
            await host.create("hostsrv", "demo-game", FAST_DEMO)
            async with daemon.http() as client:
                admin_gc = GameConsole(client)
                await admin_gc.login()
                admin_handle = await admin_gc.handle("adminsrv")
                assert {e["smalldescription"] for e in (await admin_gc.overview()).values()} == {
                    "adminsrv",
                    "hostsrv",
                }

                gc = GameConsole(client)
                answer = await gc.try_login("host1", PASSWORD)
                gc.token = answer["session_token"]
                assert answer["servercreatepermission"] is True
                assert "admin" not in answer["permissions"]
                overview = await gc.overview()
                assert [e["smalldescription"] for e in overview.values()] == ["hostsrv"]
                assert next(iter(overview.values()))["owner"] == "host1"
                assert await gc.ok("management", "servers") == {"servers": ["hostsrv"]}
                for action in ("status", "start", "stop", "forcestop", "log"):
                    assert_error(await gc.act("server", action, "adminsrv"), 404)
                    assert_error(await gc.act("server", action, admin_handle), 404)
                assert_error(await gc.act("server", "command", "adminsrv", command="stop"), 404)
                # the admin's handle works without a token, as the admin, for the log only
                assert (await gc.log(admin_handle))["server-id"] == admin_handle
                assert_error(
                    await GameConsole(client).post(
                        {"target": "server", "action": "start", "server": admin_handle}
                    ),
                    403,
                )

                plain = GameConsole(client)
                answer = await plain.try_login("plain1", PASSWORD)
                plain.token = answer["session_token"]
                assert answer["servercreatepermission"] is False
                assert await plain.overview() == {}
            status = await admin.status("adminsrv")
            assert status["status"] == "stopped"


async def test_admin_only_types_need_admin(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        former = await add_account(daemon, "former", "ADMIN")
        async with api_client(daemon, "former") as api:
            await api.create("cmd", "command", command_settings("echo", restart="never"))
        # the account is no ADMIN any more (as a change to the store by another process)
        await daemon.ctx.db.call(lambda conn: accounts.set_flags(conn, former, "HOST"))
        async with daemon.http() as client:
            gc = GameConsole(client)
            answer = await gc.try_login("former", PASSWORD)
            gc.token = answer["session_token"]
            handle = await gc.handle("cmd")
            for action, extra in (("start", {}), ("command", {"command": "hello"})):
                body = assert_error(await gc.act("server", action, handle, **extra), 403)
                assert "ADMIN" in body["error_message"]
            assert (await gc.ok("server", "status", handle))["state"] == "stopped"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"target": 5, "action": "status"}, 400),
        ({"target": "server", "action": "status", "server": 5}, 400),
        ({"target": "server", "action": "log", "server": "x", "readIndex": -1}, 400),
        ({"target": "server", "action": "log", "server": "x", "readIndex": 2**60}, 400),
        ({"target": "server", "action": "log", "server": "x", "readIndex": "0"}, 400),
        ({"target": "server", "action": "log", "server": "x", "blocking": "yes"}, 400),
        ({"target": "server", "action": "status"}, 400),
        ({"target": "server", "action": "status", "server": ""}, 400),
        ({"target": "server", "action": "command", "server": "demo"}, 400),
        ({"target": "server", "action": "status", "server": "../etc"}, 404),
        ({"target": "server", "action": "status", "server": "x" * 5000}, 400),
        ({"target": "server", "action": "status", "server": "nosuch"}, 404),
        ({"target": "server", "action": "status", "server": "demo.abc"}, 404),
        ({"target": "server", "action": "explode", "server": "demo"}, 405),
        ({"target": "universe", "action": "status"}, 405),
        ({"action": "delete"}, 405),
        ({}, 405),
        ([], 400),
        ("status", 400),
    ],
)
async def test_hostile_envelopes(daemon: RunningDaemon, body: Any, status: int) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api, daemon.http() as client:
            await api.create("demo", "demo-game", FAST_DEMO)
            gc = GameConsole(client)
            await gc.login()
            if isinstance(body, dict):
                body = {**body, "authkey": gc.token}
            assert_error(await gc.post(body), status)


async def test_bad_tokens_and_requests(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as client:
            gc = GameConsole(client)
            for token in ("", "zz", "ab" * 100, "0" * 64, "\u00e9" * 10):
                gc.token = token
                assert_error(await gc.act("management", "status"), 403)
            assert_error(await gc.post({"target": "management", "action": "status"}), 403)
            assert_error(await gc.post({"authkey": 5, "action": "status"}), 400)
            assert_error(await client.get("/service"), 405)
            assert_error(await client.get("/service", params={"service": "password"}), 405)
            assert_error(await client.get("/service", params={"service": "bogus"}), 404)
            assert_error(
                await client.post(
                    "/service", content=b"{", headers={"Content-Type": "application/json"}
                ),
                400,
            )
            assert_error(
                await client.post(
                    "/service", content=b"{}", headers={"Content-Type": "text/plain"}
                ),
                415,
            )
            big = b'{"x": "' + b"a" * (daemon.ctx.settings.http.max_body_bytes + 10) + b'"}'
            sent = {"Content-Type": "application/json", "Content-Length": str(len(big))}
            request = client.build_request("POST", "/service", headers=sent)
            request.stream = Payload(big)  # answered before it is all sent
            assert_error(await client.send(request), 413)


async def test_the_document_lists_service_when_on(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as client:
            document = (await client.get("/openapi.json")).json()
    item = document["paths"]["/service"]
    assert set(item) == {"get", "post"}
    schemas = document["components"]["schemas"]
    for name in ("Envelope", "PasswordBody", "GameConsoleOverview", "GameConsoleLog"):
        assert name in schemas
    assert "pattern" not in schemas["Envelope"]["properties"]["server"]["anyOf"][0]
    rules = {rule.rule for rule in create_http_app(daemon.ctx).url_map.iter_rules()}
    assert "/service" in rules

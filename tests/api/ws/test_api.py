"""The seed 000 WebSocket API over real sockets: envelope, MALFORMED frames, the seed
calls (version, login, logout, system_overview, get_logs), validation errors and the
session ending elsewhere (logout, revocation, expiry, locked account)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from leosuite.auth import accounts as account_ops
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, login, make_settings, running_daemon
from tests.helpers.ws import ws_client

# -- the envelope ---------------------------------------------------------------------


@pytest.mark.parametrize("content", [{}, [], None, {"extra": [1, 2]}])
async def test_answer_echoes_uuid_and_type(daemon: RunningDaemon, content: Any) -> None:
    with trio.fail_after(10):
        async with ws_client(daemon) as client:
            frame = {"type": "get_leosac_version", "uuid": "my-uuid-1", "content": content}
            answer = await client.send_raw(json.dumps(frame))
    assert answer["uuid"] == "my-uuid-1"
    assert answer["type"] == "get_leosac_version"
    assert (answer["status_code"], answer["status_string"]) == (0, "SUCCESS")
    assert set(answer["content"]) == {"version", "version_short"}


async def test_concurrent_requests_each_get_their_own_answer(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with ws_client(daemon) as client:
            for i in range(20):
                await client.ws.send_message(
                    json.dumps({"type": "get_version", "uuid": f"c{i}", "content": None})
                )
            answers = [await client.receive() for _ in range(20)]
    assert sorted(a["uuid"] for a in answers) == sorted(f"c{i}" for i in range(20))
    assert all(a["status_code"] == 0 for a in answers)


MALFORMED: list[Any] = [
    pytest.param("this is not json {", "", "", id="not-json"),
    pytest.param(b'{"type": "get_version", "uuid": "b", "content": {}}', "", "", id="binary"),
    pytest.param('[{"type": "get_version", "uuid": "a", "content": {}}]', "", "", id="array"),
    pytest.param('{"type": "get_version", "content": {}}', "", "get_version", id="no-uuid"),
    pytest.param('{"type": "get_version", "uuid": 17, "content": {}}', "", "get_version", id="int"),
    pytest.param(
        '{"type": "get_version", "uuid": null, "content": {}}', "", "get_version", id="nul"
    ),
    pytest.param('{"type": ["x"], "uuid": {"a": 1}, "content": {}}', "", "", id="both-wrong"),
    pytest.param('{"type": "get_version", "uuid": "u"}', "u", "get_version", id="no-content"),
]


@pytest.mark.parametrize(("frame", "uuid", "kind"), MALFORMED)
async def test_malformed_frame_keeps_connection_open(
    daemon: RunningDaemon, frame: str | bytes, uuid: str, kind: str
) -> None:
    with trio.fail_after(10):
        async with ws_client(daemon) as client:
            answer = await client.send_raw(frame)
            assert answer["status_code"] == 4
            assert answer["status_string"]
            assert (answer["uuid"], answer["type"]) == (uuid, kind)
            version = await client.ok("get_version", {})
            assert "version" in version


async def test_unknown_type_is_invalid_call(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with ws_client(daemon) as client:
            answer = await client.call("launch_the_missiles", {})
            assert (answer["type"], answer["status_code"]) == ("launch_the_missiles", 5)
            # Unknown before login too: it is not PERMISSION_DENIED.
            answer = await client.call("server.nope", {})
            assert answer["status_code"] == 5


# -- login, logout --------------------------------------------------------------------


async def test_create_auth_token_success_and_failure(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with ws_client(daemon) as client:
            bad = await client.call(
                "create_auth_token", {"username": "admin", "password": "wrong-password"}
            )
            assert bad["status_code"] == 0
            assert bad["content"]["status"] == -1
            assert isinstance(bad["content"]["message"], str)
            assert bad["content"]["message"]
            unknown = await client.ok(
                "create_auth_token", {"username": "nobody", "password": "whatever-1"}
            )
            assert unknown["status"] == -1
            # Still not logged in.
            denied = await client.call("system_overview", {})
            assert denied["status_code"] == 2

            good = await client.ok(
                "create_auth_token", {"username": "admin", "password": ADMIN_PASSWORD}
            )
            assert set(good) == {"status", "user_id", "token"}
            assert good["status"] == 0
            assert isinstance(good["user_id"], int)
            assert isinstance(good["token"], str)
            assert good["token"]

            # The token is an HTTP API token too.
            async with daemon.http() as http:
                response = await http.post(
                    "/api/server_list",
                    json={},
                    headers={"Authorization": f"Bearer {good['token']}"},
                )
            assert response.status_code == 200, response.text

            twice = await client.ok(
                "create_auth_token", {"username": "admin", "password": ADMIN_PASSWORD}
            )
            assert twice["status"] == -1
            assert "already" in twice["message"]
            again = await client.ok("authenticate_with_token", {"token": good["token"]})
            assert again["status"] == -1


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ({"username": "admin"}, "password"),
        ({"password": "x"}, "username"),
        ({"username": 5, "password": "x"}, "username"),
        ({"username": "admin", "password": "x", "extra": 1}, "extra"),
    ],
)
async def test_create_auth_token_validation_is_model_exception(
    daemon: RunningDaemon, content: dict[str, Any], field: str
) -> None:
    with trio.fail_after(10):
        async with ws_client(daemon) as client:
            answer = await client.call("create_auth_token", content)
    assert answer["status_code"] == 11
    errors = answer["content"]["errors"]
    assert errors[0]["source"]["pointer"] == f"/content/{field}"
    assert errors[0]["detail"]


async def test_authenticate_with_http_token(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with daemon.http() as http:
            token = await login(http)
        async with ws_client(daemon) as client:
            bad = await client.ok("authenticate_with_token", {"token": "ab" * 32})
            assert bad["status"] == -1
            assert bad["message"]
            malformed = await client.ok("authenticate_with_token", {"token": "NOT HEX"})
            assert malformed["status"] == -1
            good = await client.ok("authenticate_with_token", {"token": token})
            assert good["status"] == 0
            assert good["username"] == "admin"
            assert isinstance(good["user_id"], int)
            overview = await client.ok("system_overview", {})
            assert overview["users"] >= 1


async def test_system_overview_before_login_is_permission_denied(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with ws_client(daemon) as client:
            for kind in ("system_overview", "get_logs", "logout", "server.list"):
                answer = await client.call(kind, {})
                assert answer["status_code"] == 2, (kind, answer)
                assert answer["type"] == kind
            await client.login()
            overview = await client.ok("system_overview", {})
    assert {
        "instance_name",
        "config_version",
        "uptime",
        "modules",
        "servers",
        "sessions",
        "users",
    } <= set(overview)
    assert overview["sessions"] == 1
    assert overview["servers"]["stopped"] == 0
    assert overview["uptime"] >= 0


async def test_logout_answers_null_and_ends_the_session(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with ws_client(daemon, login=True) as client:
            assert (await client.call("system_overview", {}))["status_code"] == 0
            answer = await client.call("logout", {})
            assert answer["status_code"] == 0
            assert answer["content"] is None
            assert (await client.call("system_overview", {}))["status_code"] == 2
            # Logging in again on the same connection works after a logout.
            await client.login()
            assert (await client.call("system_overview", {}))["status_code"] == 0


async def test_logout_destroys_the_token_for_http_too(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with ws_client(daemon) as client:
            token = await client.login()
            await client.ok("logout", None)
        async with daemon.http() as http:
            response = await http.post(
                "/api/server_list", json={}, headers={"Authorization": f"Bearer {token}"}
            )
    assert response.status_code == 403


# -- get_logs ---------------------------------------------------------------------------


async def test_get_logs_shape_paging_and_sort(daemon: RunningDaemon) -> None:
    with trio.fail_after(15):
        async with ws_client(daemon) as client:
            for _ in range(3):  # failed logins are audited
                await client.ok("create_auth_token", {"username": "admin", "password": "nope-1234"})
            await client.login()
            first = await client.ok("get_logs", {"p": 1, "ps": 2, "sort": "asc"})
            total = first["meta"]["total"]
            assert total >= 4
            assert first["meta"]["first"] == 1
            assert first["meta"]["last"] == (total + 1) // 2
            assert len(first["data"]) == 2
            for entry in first["data"]:
                assert set(entry) == {"id", "type", "attributes"}
                assert entry["type"] == "log-message"
                attributes = entry["attributes"]
                assert set(attributes) == {
                    "message",
                    "timestamp",
                    "level",
                    "topic",
                    "user",
                    "session",
                }
                assert isinstance(attributes["timestamp"], int)
                assert isinstance(attributes["message"], str)
            second = await client.ok("get_logs", {"p": 2, "ps": 2, "sort": "asc"})
            ids_asc = [e["id"] for e in first["data"] + second["data"]]
            assert ids_asc == sorted(ids_asc)
            assert len(set(ids_asc)) == 4
            newest = await client.ok("get_logs", {"p": 1, "ps": total, "sort": "desc"})
            ids_desc = [e["id"] for e in newest["data"]]
            assert ids_desc == sorted(ids_desc, reverse=True)
            assert len(ids_desc) == total
            assert ids_desc[-4:] == ids_asc[::-1]
            # The newest entry is the last login, by admin.
            assert newest["data"][0]["attributes"]["message"] == "login"
            beyond = await client.ok("get_logs", {"p": 1000, "ps": 2})
            assert beyond["data"] == []
            assert beyond["meta"]["total"] == total
            default = await client.ok("get_logs", None)
            assert len(default["data"]) == min(total, 20)


@pytest.mark.parametrize(
    ("content", "status", "field"),
    [
        ({"ps": 0}, 12, None),
        ({"ps": 100000}, 12, None),
        ({"p": -1}, 12, None),
        ({"sort": "sideways"}, 12, None),
        ({"p": "one"}, 11, "p"),
        ({"ps": 1.5}, 11, "ps"),
        ({"page": 1}, 11, "page"),
        ([1, 2], 11, None),
    ],
)
async def test_get_logs_bad_arguments(
    daemon: RunningDaemon, content: Any, status: int, field: str | None
) -> None:
    with trio.fail_after(10):
        async with ws_client(daemon, login=True) as client:
            answer = await client.call("get_logs", content)
            assert answer["status_code"] == status, answer
            if field is not None:
                pointer = answer["content"]["errors"][0]["source"]["pointer"]
                assert pointer == f"/content/{field}"
            assert (await client.call("get_logs", {}))["status_code"] == 0


# -- the session ends elsewhere -----------------------------------------------------------


async def _http_logout_while_subscribed(daemon: RunningDaemon, *, wait_for_push: bool) -> None:
    async with daemon.http() as http:
        token = await login(http)
        async with ws_client(daemon) as client:
            assert (await client.ok("authenticate_with_token", {"token": token}))["status"] == 0
            await client.ok("events.subscribe", {})
            response = await http.post(
                "/api/auth/logout", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 204
            if wait_for_push:
                # The push comes without another request (the bound is for a loaded machine).
                with trio.fail_after(10):
                    pushed = await client.next_push("session_closed")
            answer = await client.call("system_overview", {})
            assert answer["status_code"] == 7, answer
            if not wait_for_push:
                pushed = await client.next_push("session_closed")
            assert not [p for p in client.pushes if p["type"] == "session_closed"]  # just one
            assert set(pushed["content"]) == {"reason"}
            assert pushed["content"]["reason"]
            assert (await client.call("system_overview", {}))["status_code"] == 2
            # Logging in again on the connection works.
            await client.login()
            assert (await client.call("system_overview", {}))["status_code"] == 0


async def test_http_logout_of_the_same_token_aborts_the_next_call(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        await _http_logout_while_subscribed(daemon, wait_for_push=False)


async def test_http_logout_of_the_same_token_pushes_session_closed_at_once(
    daemon: RunningDaemon,
) -> None:
    with trio.fail_after(20):
        await _http_logout_while_subscribed(daemon, wait_for_push=True)


async def test_revoked_account_gets_session_closed_and_session_aborted(
    daemon: RunningDaemon,
) -> None:
    with trio.fail_after(15):
        async with ws_client(daemon) as client, ws_client(daemon) as bystander:
            login_answer = await client.ok(
                "create_auth_token", {"username": "admin", "password": ADMIN_PASSWORD}
            )
            await client.ok("stats.subscribe", {})
            assert (await client.ok("system_overview", {}))["sessions"] == 1
            await daemon.ctx.auth.revoke_account(login_answer["user_id"], "password changed")
            # The push comes at once, without another request.
            pushed = await client.next_push("session_closed")
            assert pushed["content"] == {"reason": "password changed"}
            assert pushed["uuid"]
            assert pushed["status_code"] == 0
            answer = await client.call("system_overview", {})
            assert answer["status_code"] == 7, answer
            assert (await client.call("system_overview", {}))["status_code"] == 2
            # Nobody else was touched.
            assert (await bystander.ok("get_version", {}))["version"]
            assert not [p for p in bystander.pushes if p["type"] == "session_closed"]


async def test_token_expiry_aborts_the_session(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    mock_clock.rate = 1.0
    settings = make_settings(tmp_path / "data", auth={"token_ttl": 10.0})
    async with running_daemon(settings) as daemon:
        with trio.fail_after(40):  # the mock clock jumps 11 s of it
            async with ws_client(daemon, login=True) as client:
                assert (await client.call("system_overview", {}))["status_code"] == 0
                mock_clock.jump(11)
                answer = await client.call("system_overview", {})
                assert answer["status_code"] == 7, answer
                pushed = await client.next_push("session_closed")
                assert pushed["content"]["reason"]
                assert (await client.call("system_overview", {}))["status_code"] == 2


async def test_locked_account_token(tmp_path: Path, mock_clock: trio.testing.MockClock) -> None:
    mock_clock.rate = 1.0
    async with running_daemon(make_settings(tmp_path / "data")) as daemon:
        with trio.fail_after(30):  # the mock clock jumps 10 s of it
            await add_account(daemon, "carol")
            async with ws_client(daemon) as client:
                token = await client.login("carol", PASSWORD)
                assert (await client.call("system_overview", {}))["status_code"] == 0
                # Locked from outside the daemon (the CLI's way): the token dies with it.
                await trio.to_thread.run_sync(
                    lambda: account_ops.lock_account(daemon.ctx.db, "carol", True)
                )
                mock_clock.jump(10)  # past the daemon's token cache recheck
                answer = await client.call("system_overview", {})
                assert answer["status_code"] == 7, answer
                assert (await client.next_push("session_closed"))["content"]["reason"]
                refused = await client.ok("authenticate_with_token", {"token": token})
                assert refused["status"] == -1
                again = await client.ok(
                    "create_auth_token", {"username": "carol", "password": PASSWORD}
                )
                assert again["status"] == -1
                assert "locked" in again["message"]


async def test_create_auth_token_rate_limited_per_address(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", ws={"login_attempts_per_minute": 3})
    async with running_daemon(settings) as daemon:
        with trio.fail_after(15):
            async with ws_client(daemon) as one, ws_client(daemon) as two:
                for _ in range(3):
                    answer = await one.ok(
                        "create_auth_token", {"username": "admin", "password": "wrong-1234"}
                    )
                    assert answer["status"] == -1
                limited = await two.call(
                    "create_auth_token", {"username": "admin", "password": ADMIN_PASSWORD}
                )
                assert limited["status_code"] == 3
                # Token logins are not limited this way.
                async with daemon.http() as http:
                    token = await login(http)
                assert (await two.ok("authenticate_with_token", {"token": token}))["status"] == 0

"""The seed 001 login flow over real HTTP: config, login_info, proof-of-work login,
logout, tokens (Bearer and body), and every way a login or a token can be refused."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from leosuite.auth import accounts as account_ops
from leosuite.auth.pow import leading_zero_bits, solve
from leosuite.store import audit
from tests.helpers.accounts import add_account
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, login
from tests.helpers.http import login_info

HEX64 = re.compile(r"[0-9a-f]{64}")


# -- helpers --------------------------------------------------------------------------


async def audit_entries(daemon: RunningDaemon, topic: str = "auth") -> list[audit.AuditEntry]:
    """Audit entries of ``topic``, oldest first."""
    entries = await daemon.ctx.db.call(lambda conn: audit.page(conn, newest_first=False))
    return [e for e in entries if e.topic == topic]


async def token_count(daemon: RunningDaemon) -> int:
    def count(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT count(*) FROM tokens").fetchone()[0])

    result: int = await daemon.ctx.db.call(count)
    return result


def proofs_for(info: dict[str, Any]) -> list[str]:
    return solve(info["random"], count=info["proof_of_works"], difficulty=info["difficulty"])


async def post_login(
    client: httpx.AsyncClient,
    info: dict[str, Any],
    *,
    username: str = "admin",
    password: str = ADMIN_PASSWORD,
    proofs: list[str] | None = None,
) -> httpx.Response:
    return await client.post(
        "/api/auth/login",
        json={
            "username": username,
            "password": password,
            "random": info["random"],
            "proof_of_works": proofs_for(info) if proofs is None else proofs,
        },
    )


def assert_error(response: httpx.Response, status: int, error_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"error_type", "error_message"}
    assert body["error_type"] == error_type
    assert isinstance(body["error_message"], str)
    assert body["error_message"]
    return body


async def logout(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"})


# -- the flow -------------------------------------------------------------------------


async def test_config_lists_this_daemon(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with daemon.http() as client:
            response = await client.get("/api/auth/config")
    assert response.status_code == 200
    assert response.json() == {
        "type": "password",
        "endpoints": [daemon.endpoints.http],
        "websocket": daemon.endpoints.ws + "/",
    }


async def test_login_info_shape(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with daemon.http() as client:
            first = await login_info(client)
            second = await login_info(client)
    assert set(first) == {
        "random",
        "expires_in",
        "proof_of_works",
        "difficulty",
        "algorithm",
        "password_policy",
    }
    assert re.fullmatch(r"[0-9a-f]{32}", first["random"])
    assert first["random"] != second["random"]
    assert first["expires_in"] == 120
    assert first["proof_of_works"] == 2
    assert first["difficulty"] == 4
    assert first["algorithm"] == "sha256"
    assert first["password_policy"]["min_length"] == 8


async def test_whole_login_flow(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            info = await login_info(client)
            response = await post_login(client, info)
            assert response.status_code == 200, response.text
            result = response.json()
            token = result["access_token"]
            assert HEX64.fullmatch(token)
            assert result["expires_in"] == 1200
            assert result["user"]["username"] == "admin"
            assert result["user"]["flags"] == ["ADMIN"]
            assert isinstance(result["user"]["id"], int)
            assert "admin" in result["permissions"]
            # The store keeps only a hash of the token.
            rows = await daemon.ctx.db.call(
                lambda conn: conn.execute("SELECT token_hash FROM tokens").fetchall()
            )
            assert rows == [(hashlib.sha256(token.encode()).hexdigest(),)]

            assert (await logout(client, token)).status_code == 204
            assert await token_count(daemon) == 0
            after = await logout(client, token)
            assert_error(after, 403, "forbidden")
        entries = await audit_entries(daemon)
    messages = [e.message for e in entries]
    assert messages == ["login", "logout"]
    assert all(e.user_name == "admin" and e.user_ip == "127.0.0.1" for e in entries)
    assert entries[0].user_id == result["user"]["id"]


async def test_token_in_body(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            token = await login(client)
            response = await client.post("/api/auth/logout", json={"token": token})
            assert response.status_code == 204, response.text
            assert await token_count(daemon) == 0
            again = await client.post("/api/auth/logout", json={"token": token})
            assert_error(again, 403, "forbidden")


async def test_bearer_wins_over_body_token(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            token = await login(client)
            response = await client.post(
                "/api/auth/logout",
                headers={"Authorization": "Bearer " + "0" * 64},
                json={"token": token},
            )
            assert_error(response, 403, "forbidden")
            assert await token_count(daemon) == 1


@pytest.mark.parametrize(
    "make_bad",
    [
        pytest.param(lambda t: "a" * 129, id="129-hex"),
        pytest.param(lambda t: t[:-1] + "g", id="non-hex"),
        pytest.param(lambda t: t.upper(), id="uppercase"),
        pytest.param(lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"), id="other-token"),
        pytest.param(lambda t: t + "0", id="65-hex"),
    ],
)
async def test_bad_token_is_403_and_changes_nothing(daemon: RunningDaemon, make_bad: Any) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            token = await login(client)
            bad = make_bad(token)
            by_header = await client.post(
                "/api/auth/logout", headers={"Authorization": f"Bearer {bad}"}
            )
            assert_error(by_header, 403, "forbidden")
            by_body = await client.post("/api/auth/logout", json={"token": bad})
            assert_error(by_body, 403, "forbidden")
            # The real token still works: nothing was logged out.
            assert await token_count(daemon) == 1
            assert (await logout(client, token)).status_code == 204


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic YWRtaW46eA=="}],
    ids=["none", "empty-bearer", "basic"],
)
async def test_missing_token_is_403(daemon: RunningDaemon, headers: dict[str, str]) -> None:
    with trio.fail_after(10):
        async with daemon.http() as client:
            response = await client.post("/api/auth/logout", headers=headers)
            assert_error(response, 403, "forbidden")


# -- proof of work --------------------------------------------------------------------


async def test_random_is_spent_by_a_failed_attempt(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            info = await login_info(client)
            wrong = await post_login(client, info, password="wrong-password")
            assert_error(wrong, 403, "forbidden")
            again = await post_login(client, info)
            body = assert_error(again, 403, "forbidden")
            assert "random" in body["error_message"]
            assert await token_count(daemon) == 0


async def test_random_is_spent_by_a_successful_login(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            info = await login_info(client)
            assert (await post_login(client, info)).status_code == 200
            again = await post_login(client, info)
            assert_error(again, 403, "forbidden")
            assert await token_count(daemon) == 1
        failures = [e for e in await audit_entries(daemon) if e.level == "warning"]
    assert len(failures) == 1
    assert "random" in failures[0].message


async def test_unknown_random_is_403(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            info = {"random": "0" * 32, "proof_of_works": 2, "difficulty": 4}
            assert_error(await post_login(client, info), 403, "forbidden")
            assert await token_count(daemon) == 0


def weak_proofs(random: str, count: int, below: int) -> list[str]:
    """``count`` distinct proofs that do NOT reach ``below`` leading zero bits."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        candidate = f"w{n}"
        if leading_zero_bits(hashlib.sha256((random + candidate).encode()).digest()) < below:
            found.append(candidate)
        n += 1
    return found


@pytest.mark.parametrize("kind", ["duplicate", "weak", "too-few", "too-many", "empty", "long"])
async def test_bad_proofs_are_403_and_spend_the_random(daemon: RunningDaemon, kind: str) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            info = await login_info(client)
            good = proofs_for(info)
            extra = solve(info["random"], count=3, difficulty=info["difficulty"])
            proofs = {
                "duplicate": [good[0], good[0]],
                "weak": [good[0], weak_proofs(info["random"], 1, info["difficulty"])[0]],
                "too-few": good[:1],
                "too-many": extra,
                "empty": ["", good[0]],
                "long": [good[0], "x" * 65],
            }[kind]
            body = assert_error(await post_login(client, info, proofs=proofs), 403, "forbidden")
            assert "proof" in body["error_message"]
            assert_error(await post_login(client, info, proofs=good), 403, "forbidden")
            assert await token_count(daemon) == 0
        entries = await audit_entries(daemon)
    assert len(entries) == 2
    assert all(e.level == "warning" and e.message.startswith("login failed") for e in entries)


async def test_difficulty_rises_with_failures_from_an_address(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as client:
            assert (await login_info(client))["difficulty"] == 4
            for _ in range(4):
                info = await login_info(client)
                bad = await post_login(client, info, password="wrong-password")
                assert_error(bad, 403, "forbidden")
            info = await login_info(client)
            assert info["difficulty"] == 6
            # The correct password still logs in, at the higher cost.
            ok = await post_login(client, info)
            assert ok.status_code == 200, ok.text
            # Capped at pow_max_difficulty (8).
            for _ in range(10):
                await post_login(client, await login_info(client), proofs=["a", "b"])
            assert (await login_info(client))["difficulty"] == 8


async def test_random_from_before_failures_needs_more_work(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as client:
            early = await login_info(client, "admin")
            for _ in range(2):
                info = await login_info(client, "admin")
                assert_error(await post_login(client, info, password="nope-nope"), 403, "forbidden")
            response = await post_login(client, early)
            body = assert_error(response, 403, "forbidden")
            assert "difficulty" in body["error_message"]
            assert await token_count(daemon) == 0
            fresh = await login_info(client, "admin")
            assert fresh["difficulty"] == 5
            assert (await post_login(client, fresh)).status_code == 200


async def test_unknown_user_and_wrong_password_look_the_same(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            unknown = await post_login(client, await login_info(client), username="nobody")
            wrong = await post_login(client, await login_info(client), password="wrong-pass")
            assert unknown.status_code == wrong.status_code == 403
            assert unknown.content == wrong.content
            assert await token_count(daemon) == 0
        entries = await audit_entries(daemon)
    assert [e.user_name for e in entries] == ["nobody", "admin"]
    assert entries[0].message == entries[1].message
    assert all(e.level == "warning" for e in entries)


async def test_locked_account_cannot_log_in(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        await add_account(daemon, "carol", password="carol-password")
        async with daemon.http() as client:
            token = await login(client, "carol", "carol-password")
            assert (await logout(client, token)).status_code == 204
            await trio.to_thread.run_sync(
                lambda: account_ops.lock_account(daemon.ctx.db, "carol", True)
            )
            info = await login_info(client, "carol")
            response = await post_login(client, info, username="carol", password="carol-password")
            assert_error(response, 403, "forbidden")
            assert await token_count(daemon) == 0
        entries = await audit_entries(daemon)
    assert entries[-1].level == "warning"
    assert entries[-1].user_name == "carol"
    assert "locked" in entries[-1].message


async def test_username_is_case_insensitive(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            response = await post_login(client, await login_info(client), username="ADMIN")
            assert response.status_code == 200, response.text
            assert response.json()["user"]["username"] == "admin"


@pytest.mark.parametrize(
    ("username", "status"),
    [
        ("with space", 403),
        ("ctl\x01char", 403),
        ("nul\x00", 403),
        ("", 403),
        ("é", 403),
        ("u" * 200, 400),
    ],
    ids=["space", "control", "nul", "empty", "non-ascii", "200-chars"],
)
async def test_login_with_invalid_usernames_is_refused_cleanly(
    daemon: RunningDaemon, username: str, status: int
) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            response = await post_login(client, await login_info(client), username=username)
            assert_error(response, status, "forbidden" if status == 403 else "invalid")
            assert await token_count(daemon) == 0
            # login_info with such a name is refused or served, never a 500.
            info = await client.get("/api/auth/login_info", params={"username": username})
            assert info.status_code in (200, 400), info.text


# -- token expiry under a MockClock ---------------------------------------------------


@pytest.fixture
def mock_clock() -> trio.testing.MockClock:
    # rate=1: real time still passes (sockets, threads); jump() skips ahead.
    return trio.testing.MockClock(rate=1.0)


def jump(clock: trio.testing.MockClock, scope: trio.CancelScope, seconds: float) -> None:
    clock.jump(seconds)
    scope.deadline += seconds


async def test_expired_random_is_403(
    mock_clock: trio.testing.MockClock, daemon: RunningDaemon
) -> None:
    with trio.fail_after(20) as scope:
        async with daemon.http() as client:
            info = await login_info(client)
        jump(mock_clock, scope, 121)
        async with daemon.http() as client:
            body = assert_error(await post_login(client, info), 403, "forbidden")
            assert "expired" in body["error_message"]
            assert await token_count(daemon) == 0
            # A fresh one works.
            assert (await post_login(client, await login_info(client))).status_code == 200


async def test_token_expires_unless_used(
    mock_clock: trio.testing.MockClock, daemon: RunningDaemon
) -> None:
    with trio.fail_after(30) as scope:
        async with daemon.http() as client:
            token = await login(client)
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(3):  # each use renews the 20 minutes
            jump(mock_clock, scope, 1000)
            async with daemon.admin() as admin:
                assert (await admin.get("/status", headers=headers)).status_code == 200
        jump(mock_clock, scope, 1201)
        async with daemon.admin() as admin:
            assert (await admin.get("/status", headers=headers)).status_code == 401
        async with daemon.http() as client:
            assert_error(await logout(client, token), 403, "forbidden")
        assert await token_count(daemon) == 0

"""The admin listener: ``GET /status`` behind ADMIN auth (HTTP Basic or Bearer),
at ``/`` and under ``/api/``, trailing slash optional; errors as ``{"status", "message"}``."""

from __future__ import annotations

import base64
import datetime

import pytest
import trio

from leosuite.auth import accounts as account_ops
from leosuite.store import audit
from tests.helpers.accounts import add_account
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, login
from tests.helpers.http import assert_admin_error, assert_unauthorized

PATHS = ["/status", "/status/", "/api/status", "/api/status/"]


def basic(username: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@pytest.mark.parametrize("path", PATHS)
async def test_status_with_basic_auth(daemon: RunningDaemon, path: str) -> None:
    with trio.fail_after(10):
        async with daemon.admin() as admin:
            response = await admin.get(path, headers=basic("admin", ADMIN_PASSWORD))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"started", "sessions", "maxSessions", "users", "ext_host", "ext_port"}
    assert body["users"] == 0  # members connected to the chat, not accounts
    assert body["sessions"] == 0
    started = datetime.datetime.fromisoformat(body["started"].replace("Z", "+00:00"))
    age = datetime.datetime.now(tz=datetime.UTC) - started
    assert datetime.timedelta(0) <= age < datetime.timedelta(minutes=1)


@pytest.mark.parametrize("path", PATHS)
async def test_status_with_bearer_token(daemon: RunningDaemon, path: str) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            token = await login(client)
        async with daemon.admin() as admin:
            response = await admin.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json()["users"] == 0


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="none"),
        pytest.param(basic("admin", "wrong-password"), id="wrong-password"),
        pytest.param(basic("nobody", ADMIN_PASSWORD), id="unknown-user"),
        pytest.param({"Authorization": "Basic !!!not-base64"}, id="bad-base64"),
        pytest.param(
            {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}, id="no-colon"
        ),
        pytest.param(
            {"Authorization": "Basic " + base64.b64encode(b"admin:\xff").decode()}, id="non-utf8"
        ),
        pytest.param({"Authorization": "Bearer " + "0" * 64}, id="unknown-token"),
        pytest.param({"Authorization": "Bearer " + "A" * 64}, id="uppercase-token"),
        pytest.param({"Authorization": "Bearer " + "a" * 129}, id="long-token"),
        pytest.param({"Authorization": "Digest abc"}, id="other-scheme"),
    ],
)
async def test_wrong_credentials_are_401(daemon: RunningDaemon, headers: dict[str, str]) -> None:
    with trio.fail_after(10):
        async with daemon.admin() as admin:
            for path in ("/status", "/api/status/"):
                assert_unauthorized(await admin.get(path, headers=headers))


async def test_failed_admin_auth_is_audited(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with daemon.admin() as admin:
            assert_unauthorized(await admin.get("/status", headers=basic("admin", "nope-nope")))
        entries = await daemon.ctx.db.call(lambda conn: audit.page(conn))
    failed = [e for e in entries if e.topic == "admin"]
    assert len(failed) == 1
    assert failed[0].level == "warning"
    assert failed[0].user_ip == "127.0.0.1"


async def test_non_admin_account_is_403(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        await add_account(daemon, "mod", "MOD", "HOST", password="moderator-pw")
        async with daemon.http() as client:
            token = await login(client, "mod", "moderator-pw")
        async with daemon.admin() as admin:
            by_basic = await admin.get("/status", headers=basic("mod", "moderator-pw"))
            assert_admin_error(by_basic, 403)
            assert "WWW-Authenticate" not in by_basic.headers
            by_bearer = await admin.get("/api/status", headers={"Authorization": f"Bearer {token}"})
            assert_admin_error(by_bearer, 403)


async def test_locked_admin_is_refused(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        await add_account(daemon, "root2", "ADMIN", password="second-admin")
        await trio.to_thread.run_sync(
            lambda: account_ops.lock_account(daemon.ctx.db, "root2", True)
        )
        async with daemon.admin() as admin:
            assert_unauthorized(await admin.get("/status", headers=basic("root2", "second-admin")))


async def test_unknown_path_and_wrong_method(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with daemon.admin() as admin:
            auth = basic("admin", ADMIN_PASSWORD)
            assert_admin_error(await admin.get("/nothing", headers=auth), 404)
            assert_admin_error(await admin.get("/api/nothing/", headers=auth), 404)
            wrong = await admin.post("/status", headers=auth)
            assert_admin_error(wrong, 405)
            assert "GET" in wrong.headers["Allow"]


async def test_repeated_failures_are_throttled_per_address(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with daemon.admin() as admin:
            for _ in range(10):
                assert_unauthorized(await admin.get("/status", headers=basic("admin", "x")))
            # Even the right password is refused while throttled.
            throttled = await admin.get("/status", headers=basic("admin", ADMIN_PASSWORD))
            assert_admin_error(throttled, 429)


async def test_status_counts_chat_sessions(daemon: RunningDaemon) -> None:
    from leosuite.community.models import Member

    core = daemon.ctx.chat.core
    member = Member("alice")
    core.connect(member)
    core.join(member, "lobby")
    with trio.fail_after(10):
        async with daemon.admin() as admin:
            response = await admin.get("/status", headers=basic("admin", ADMIN_PASSWORD))
    body = response.json()
    assert body["sessions"] == 1
    assert body["maxSessions"] == core.limits.session_count_limit

"""Admin API accounts (seed 002) over real HTTP: every path at ``/`` and ``/api/``,
CRUD, all-or-nothing validation, the last-ADMIN rules, and a password change, lock,
demotion or delete ending the account's tokens and connections at once."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio

from leosuite.community.models import Member
from leosuite.store import audit
from tests.helpers.accounts import add_account
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, login
from tests.helpers.http import assert_admin_error
from tests.helpers.ws import ws_client

AUTH = ("admin", ADMIN_PASSWORD)
PREFIXES = ["", "/api"]
SLASHES = ["", "/"]


@asynccontextmanager
async def admin_client(daemon: RunningDaemon) -> AsyncIterator[httpx.AsyncClient]:
    async with daemon.admin(auth=AUTH) as client:
        yield client


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/accounts/", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def audit_messages(daemon: RunningDaemon) -> list[str]:
    entries = await daemon.ctx.db.call(lambda conn: audit.page(conn, limit=1000))
    return [e.message for e in entries if e.topic == "admin"]


async def raw_request(
    daemon: RunningDaemon, method: str, target: str, *, length: int = 0
) -> tuple[int, Any]:
    """Send ``target`` byte for byte (httpx would normalize ``..``), announcing a body of
    ``length`` bytes but sending none; the status and the JSON answer."""
    host, port = daemon.endpoints.admin.removeprefix("http://").rsplit(":", 1)
    credentials = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(
            f"{method} {target} HTTP/1.1\r\nHost: [::1]\r\nAuthorization: Basic {credentials}\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


async def test_every_path_at_root_and_under_api(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with admin_client(daemon) as client:
            for prefix in PREFIXES:
                for slash in SLASHES:
                    listed = await client.get(f"{prefix}/accounts{slash}")
                    assert listed.status_code == 200, listed.text
                    assert listed.json()[0] == {
                        "id": 1,
                        "username": "admin",
                        "locked": False,
                        "flags": "ADMIN",
                    }
                    name = f"user{len(prefix)}{len(slash)}"
                    made = await client.post(
                        f"{prefix}/accounts{slash}", json={"username": name, "password": "x" * 8}
                    )
                    assert made.status_code == 201, made.text
                    number = made.json()["id"]
                    path = f"{prefix}/accounts/{number}{slash}"
                    assert (await client.get(path)).json()["username"] == name
                    changed = await client.put(path, json={"flags": "mod"})
                    assert changed.json()["flags"] == "MOD"
                    assert (await client.delete(path)).status_code == 200
                    assert_admin_error(await client.get(path), 404)
                    # A method the path does not serve is 405 with Allow.
                    wrong = await client.patch(path, json={})
                    assert_admin_error(wrong, 405)
                    assert set(wrong.headers["Allow"].split(", ")) >= {"GET", "PUT", "DELETE"}
        async with daemon.admin() as anonymous:
            assert_admin_error(await anonymous.get("/api/accounts/"), 401)
            assert_admin_error(await anonymous.post("/accounts", json={}), 401)


async def test_create_change_delete(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with admin_client(daemon) as client:
            response = await client.post(
                "/accounts/",
                json={"username": "Bob", "password": "bob-secret-1", "flags": " host, MOD "},
            )
            assert response.status_code == 201, response.text
            bob = response.json()
            assert bob == {"id": bob["id"], "username": "Bob", "locked": False, "flags": "HOST,MOD"}
            assert response.headers["Location"] == f"/accounts/{bob['id']}/"
            carol = await create(
                client, username="carol", password="carol-secret", locked=True, flags="ADMIN"
            )
            assert (carol["locked"], carol["flags"]) == (True, "ADMIN")
            assert [a["username"] for a in (await client.get("/accounts")).json()] == [
                "admin",
                "Bob",
                "carol",
            ]
            # The new account can log in with its password; carol is locked.
            async with daemon.admin(auth=("Bob", "bob-secret-1")) as bob_client:
                assert_admin_error(await bob_client.get("/accounts/"), 403)  # not an ADMIN
            async with daemon.admin(auth=("carol", "carol-secret")) as carol_client:
                assert_admin_error(await carol_client.get("/accounts/"), 401)

            path = f"/accounts/{bob['id']}/"
            changed = await client.put(
                path,
                json={
                    "username": "robert",
                    "password": "new-secret-9",
                    "locked": False,
                    "flags": "",
                },
            )
            assert changed.status_code == 200, changed.text
            assert changed.json() == {
                "id": bob["id"],
                "username": "robert",
                "locked": False,
                "flags": "",
            }
            assert (await client.put(path, json={})).json() == changed.json()
            # Renaming to another account's name (any case) is 409, to one's own case is fine.
            assert "taken" in assert_admin_error(
                await client.put(path, json={"username": "CAROL"}), 409
            )
            assert (await client.put(path, json={"username": "Robert"})).json()[
                "username"
            ] == "Robert"
            async with daemon.http() as http:
                await login(http, "Robert", "new-secret-9")
            unlocked = await client.put(f"/accounts/{carol['id']}", json={"locked": False})
            assert unlocked.json()["locked"] is False
            async with daemon.admin(auth=("carol", "carol-secret")) as carol_client:
                assert (await carol_client.get("/accounts/")).status_code == 200

            deleted = await client.delete(path)
            assert deleted.json()["username"] == "Robert"
            for method in ("GET", "PUT", "DELETE"):
                gone = await client.request(method, path, json={"locked": True})
                assert f"no account with id {bob['id']}" in assert_admin_error(gone, 404)
            assert [a["username"] for a in (await client.get("/accounts")).json()] == [
                "admin",
                "carol",
            ]
        messages = await audit_messages(daemon)
        assert any("'Bob'" in m and "created" in m and "HOST,MOD" in m for m in messages)
        assert any("password changed" in m and "renamed to 'robert'" in m for m in messages)
        assert any("'Robert'" in m and "deleted" in m for m in messages)
        assert not [m for m in messages if "secret" in m]


async def test_bad_bodies_are_400_naming_the_field_and_change_nothing(
    daemon: RunningDaemon,
) -> None:
    with trio.fail_after(30):
        async with admin_client(daemon) as client:
            bob = await create(client, username="bob", password="bob-secret-1", flags="HOST")
            path = f"/accounts/{bob['id']}/"
            cases: list[tuple[str, Any, str]] = [
                ("POST", {"username": "bad name", "password": "long-enough"}, "username"),
                ("POST", {"username": "x" * 33, "password": "long-enough"}, "username"),
                ("POST", {"username": "", "password": "long-enough"}, "username"),
                ("POST", {"username": "dave", "password": "short"}, "password"),
                ("POST", {"username": "dave", "password": "a\u0000" * 8}, "password"),
                ("POST", {"username": "dave", "password": "x" * 1025}, "password"),
                ("POST", {"username": "dave", "password": "long-enough", "flags": "ROOT"}, "flags"),
                (
                    "POST",
                    {"username": "dave", "password": "long-enough", "locked": "yes"},
                    "locked",
                ),
                ("POST", {"username": "dave", "password": "long-enough", "flags": None}, "flags"),
                ("POST", {"username": "dave", "password": "long-enough", "admin": True}, "admin"),
                ("POST", {"password": "long-enough"}, "username"),
                ("POST", {"username": "dave"}, "password"),
                ("POST", {"username": 5, "password": "long-enough"}, "username"),
                ("PUT", {"username": "dave", "flags": "HOST,BOGUS"}, "flags"),
                ("PUT", {"username": "dave", "password": "short"}, "password"),
                ("PUT", {"flags": "MOD", "username": "no/slash"}, "username"),
                ("PUT", {"locked": True, "password": 12345678}, "password"),
                ("PUT", {"locked": 1}, "locked"),
                ("PUT", {"id": 7}, "id"),
            ]
            for method, body, field in cases:
                url = "/accounts/" if method == "POST" else path
                response = await client.request(method, url, json=body)
                message = assert_admin_error(response, 400)
                assert field in message, (body, message)
            for raw in [b"not json", b"[]", b'"bob"', b"12", b"null", b"{", b"\xff\xfe", b"{}"]:
                for method, url in (("POST", "/accounts/"), ("PUT", path)):
                    if method == "PUT" and raw == b"{}":
                        continue  # an empty change is fine
                    response = await client.request(
                        method, url, content=raw, headers={"Content-Type": "application/json"}
                    )
                    assert_admin_error(response, 400)
            too_big = daemon.ctx.settings.http.max_body_bytes + 1
            for method, url in (("POST", "/accounts/"), ("PUT", path)):
                status, answer = await raw_request(daemon, method, url, length=too_big)
                assert (status, answer["status"]) == (413, "error")
            listed = (await client.get("/accounts/")).json()
            assert listed == [
                {"id": 1, "username": "admin", "locked": False, "flags": "ADMIN"},
                {"id": bob["id"], "username": "bob", "locked": False, "flags": "HOST"},
            ]
            # bob's password is unchanged too.
            async with daemon.http() as http:
                await login(http, "bob", "bob-secret-1")
            duplicate = await client.post(
                "/accounts/", json={"username": "ADMIN", "password": "long-enough"}
            )
            assert "taken" in assert_admin_error(duplicate, 409)


@pytest.mark.parametrize(
    "target",
    [
        "/accounts/..",
        "/accounts/../accounts/1",
        "/api/accounts/%2e%2e/",
        "/accounts/%00",
        "/accounts/1%00",
        "/accounts/" + "9" * 10_000,
        "/accounts/" + "x" * 10_000 + "/",
        "/accounts/99999999999999999999",
        "/accounts/-1",
        "/accounts/1.5",
        "/accounts/%C3%A9",
        "/accounts/%ff",
        "/accounts/1/extra",
    ],
)
async def test_bad_path_segments_are_clean_errors(daemon: RunningDaemon, target: str) -> None:
    with trio.fail_after(15):
        for method in ("GET", "PUT", "DELETE"):
            status, body = await raw_request(daemon, method, target)
            assert status in (400, 404, 405), (method, target, status)
            assert body["status"] == "error"
        # Nothing happened to the admin account.
        async with admin_client(daemon) as client:
            assert (await client.get("/accounts/1")).json()["locked"] is False


async def test_the_last_unlocked_admin_stays(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with admin_client(daemon) as client:
            for method, body in (
                ("DELETE", None),
                ("PUT", {"locked": True}),
                ("PUT", {"flags": "HOST,MOD", "admin": False}),
                ("PUT", {"admin": False}),
                ("PUT", {"username": "root", "flags": "MOD", "admin": False}),
            ):
                response = await client.request(method, "/accounts/1/", json=body)
                assert "last unlocked ADMIN" in assert_admin_error(response, 409)
            # A locked ADMIN does not count.
            await create(
                client, username="backup", password="backup-pass", flags="ADMIN", locked=True
            )
            assert_admin_error(await client.put("/accounts/1/", json={"locked": True}), 409)
            assert (await client.get("/accounts/1")).json() == {
                "id": 1,
                "username": "admin",
                "locked": False,
                "flags": "ADMIN",
            }
            # Renaming and adding flags keep it an unlocked ADMIN: fine.
            renamed = await client.put(
                "/accounts/1/", json={"username": "root", "flags": "ADMIN,HOST"}
            )
            assert renamed.json()["flags"] == "ADMIN,HOST"
            async with daemon.admin(auth=("root", ADMIN_PASSWORD)) as root:
                back = await root.put("/accounts/1/", json={"username": "admin"})
                assert back.status_code == 200, back.text
            # With a second unlocked ADMIN, the first may be demoted; then the second stays.
            await create(client, username="second", password="second-pass", flags="ADMIN")
            second_id = (await client.get("/accounts/")).json()[-1]["id"]
            demoted = await client.put("/accounts/1/", json={"flags": "MOD", "admin": False})
            assert demoted.status_code == 200, demoted.text
        async with daemon.admin(auth=("second", "second-pass")) as second:
            for method, body in (("DELETE", None), ("PUT", {"locked": True})):
                response = await second.request(method, f"/accounts/{second_id}", json=body)
                assert_admin_error(response, 409)
            # The demoted admin can be deleted now.
            assert (await second.delete("/accounts/1/")).status_code == 200
            assert [a["username"] for a in (await second.get("/accounts")).json()] == [
                "backup",
                "second",
            ]


async def _connections_of(daemon: RunningDaemon, username: str, password: str) -> Any:
    """Log ``username`` in over HTTP; return its token and a chat member of the account."""
    async with daemon.http() as http:
        token = await login(http, username, password)
    principal = await daemon.ctx.auth.authenticate(token)
    reasons: list[str] = []
    member = Member(
        username,
        ip="127.0.0.1",
        account_id=principal.account_id,
        disconnect=reasons.append,
    )
    core = daemon.ctx.chat.core
    core.connect(member)
    core.join(member, "general")
    return token, member, reasons


async def token_works(daemon: RunningDaemon, token: str) -> bool:
    async with daemon.http() as http:
        response = await http.post(
            "/api/server_list", json={}, headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code in (200, 403), response.text
    return response.status_code == 200


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"password": "another-secret"}, "password changed"),
        ({"locked": True}, "account locked"),
        ({"flags": "HOST"}, "account flags changed"),
        (None, "account deleted"),
    ],
)
async def test_change_ends_tokens_and_connections_at_once(
    daemon: RunningDaemon, change: dict[str, Any] | None, reason: str
) -> None:
    with trio.fail_after(30):
        await add_account(daemon, "bob", "HOST", "MOD", password="bob-secret-1")
        await add_account(daemon, "bystander", password="bystander-1")
        async with admin_client(daemon) as client:
            bob_id = next(
                a["id"] for a in (await client.get("/accounts/")).json() if a["username"] == "bob"
            )
            token, member, reasons = await _connections_of(daemon, "bob", "bob-secret-1")
            other_token, other, other_reasons = await _connections_of(
                daemon, "bystander", "bystander-1"
            )
            assert await token_works(daemon, token)
            async with ws_client(daemon) as ws:
                answer = await ws.ok("authenticate_with_token", {"token": token})
                assert answer["status"] == 0, answer
                if change is None:
                    response = await client.delete(f"/accounts/{bob_id}")
                else:
                    response = await client.put(f"/accounts/{bob_id}/", json=change)
                assert response.status_code == 200, response.text
                # Without another request: the push is on its way, the HTTP token is dead
                # (the bound is for a loaded machine).
                with trio.fail_after(10):
                    pushed = await ws.next_push("session_closed")
                assert reason in pushed["content"]["reason"]
            assert not await token_works(daemon, token)
            assert reasons
            assert reason in reasons[0]
            assert member.id not in daemon.ctx.chat.core.members
            # Nobody else was touched.
            assert await token_works(daemon, other_token)
            assert other.id in daemon.ctx.chat.core.members
            assert not other_reasons


async def test_unlock_rename_and_added_flags_keep_the_token(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        await add_account(daemon, "bob", password="bob-secret-1")
        async with daemon.http() as http:
            token = await login(http, "bob", "bob-secret-1")
        async with admin_client(daemon) as client:
            bob_id = (await client.get("/accounts/")).json()[-1]["id"]
            for change in ({"flags": "HOST"}, {"username": "bobby"}, {"locked": False}):
                assert (await client.put(f"/accounts/{bob_id}", json=change)).status_code == 200
            assert await token_works(daemon, token)

"""CSRF on the admin API: a page elsewhere makes the browser send the operator's saved
Basic credentials with a cross-site form (``text/plain``, form types, or a typeless
Blob), or a ``fetch`` whose ``Origin`` is not the admin listener's. Every body must be
``application/json`` (415) and a foreign ``Origin`` or ``Sec-Fetch-Site: cross-site``
is refused (403), while the operator's own JSON requests, right next to them, work."""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from tests.helpers.audit import audited
from tests.helpers.daemon import RunningDaemon
from tests.helpers.http import assert_admin_error
from tests.helpers.security import BASIC, port_of

AUTH = {"Authorization": BASIC}
MALLORY = {"username": "mallory", "password": "mallory-password", "flags": "ADMIN"}
#: What a cross-site ``<form>`` or a no-cors ``fetch`` can send without a preflight.
CROSS_SITE_TYPES = [
    "text/plain",
    "text/plain;charset=UTF-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    None,  # fetch(url, {body: new Blob([...])}) sends no Content-Type at all
]


async def usernames(client: httpx.AsyncClient) -> list[str]:
    return [a["username"] for a in (await client.get("/accounts/", headers=AUTH)).json()]


async def send(
    client: httpx.AsyncClient, method: str, path: str, body: bytes, content_type: str | None
) -> httpx.Response:
    request = client.build_request(method, path, content=body, headers=AUTH)
    request.headers.pop("Content-Type", None)
    if content_type is not None:
        request.headers["Content-Type"] = content_type
    return await client.send(request)


@pytest.mark.parametrize("content_type", CROSS_SITE_TYPES)
async def test_a_cross_site_form_cannot_create_an_admin(
    daemon: RunningDaemon, content_type: str | None
) -> None:
    body = json.dumps(MALLORY).encode()
    with trio.fail_after(20):
        async with daemon.admin() as client:
            response = await send(client, "POST", "/accounts/", body, content_type)
            assert "application/json" in assert_admin_error(response, 415)
            assert await usernames(client) == ["admin"]
            # The operator's tool sends JSON: served.
            created = await client.post("/accounts/", json=MALLORY, headers=AUTH)
            assert created.status_code == 201, created.text
            assert await usernames(client) == ["admin", "mallory"]
    assert await audited(daemon, "refused (415) POST /accounts/")


async def test_no_admin_route_reads_a_body_that_is_not_json(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with daemon.http() as http:  # a room, so there is a session and a member
            room = {"roomName": "den", "owner": "alice", "pass": "alice-password"}
            await http.post("/rooms", json={"action": "createRoom", "payload": room})
            join = {"roomName": "den", "user": "alice", "userpass": "alice-password"}
            await http.post("/rooms", json={"action": "joinRoom", "payload": join})
        async with daemon.admin() as client:
            (user,) = (await client.get("/users", headers=AUTH)).json()
            sid = user["session"]
            changes = [
                ("PUT", "/server", {"sessionCountLimit": 1}),
                ("PUT", "/api/server/", {"allowGuests": False}),
                ("POST", "/banlist/", {"ip": "10.0.0.0", "subnet": 8}),
                ("PUT", "/accounts/1/", {"password": "taken-over-password"}),
                ("PUT", f"/session/{sid}", {"closed": True, "title": "pwned"}),
                ("PUT", f"/session/{sid}/{user['id']}", {"op": False}),
            ]
            before = [
                (await client.get(path, headers=AUTH)).json()
                for path in ("/server", "/banlist", "/accounts", f"/sessions/{sid}")
            ]
            for method, path, change in changes:
                for content_type in ("text/plain", None):
                    body = json.dumps(change).encode()
                    response = await send(client, method, path, body, content_type)
                    assert_admin_error(response, 415)
            after = [
                (await client.get(path, headers=AUTH)).json()
                for path in ("/server", "/banlist", "/accounts", f"/sessions/{sid}")
            ]
            assert after == before
            # The same change as JSON is applied.
            done = await client.put("/server", json={"sessionCountLimit": 7}, headers=AUTH)
            assert done.json()["sessionCountLimit"] == 7


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://127.0.0.1:8080"},  # another local web app
        {"Origin": "null"},  # a sandboxed frame or a file:// page
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "OWN"},
    ],
)
async def test_a_foreign_origin_is_refused(daemon: RunningDaemon, headers: dict[str, str]) -> None:
    own = f"http://127.0.0.1:{port_of(daemon.endpoints.admin)}"
    headers = {k: own if v == "OWN" else v for k, v in headers.items()}
    with trio.fail_after(20):
        async with daemon.admin() as client:
            attack = await client.post("/accounts/", json=MALLORY, headers={**AUTH, **headers})
            assert "Origin" in assert_admin_error(attack, 403)
            assert_admin_error(await client.get("/accounts/", headers={**AUTH, **headers}), 403)
            assert await usernames(client) == ["admin"]
    assert await audited(daemon, "refused (403) POST /accounts/")


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, the CLI, scripts
        {"Origin": "OWN", "Sec-Fetch-Site": "same-origin"},  # a page of the listener itself
        {"Origin": "OWN_LOCALHOST"},
        {"Sec-Fetch-Site": "none"},  # typed into the address bar
    ],
)
async def test_the_listeners_own_origin_is_served(
    daemon: RunningDaemon, headers: dict[str, str]
) -> None:
    port = port_of(daemon.endpoints.admin)
    names = {"OWN": f"http://127.0.0.1:{port}", "OWN_LOCALHOST": f"http://localhost:{port}"}
    headers = {k: names.get(v, v) for k, v in headers.items()}
    with trio.fail_after(20):
        async with daemon.admin() as client:
            created = await client.post("/accounts/", json=MALLORY, headers={**AUTH, **headers})
            assert created.status_code == 201, created.text

"""Bodies on the HTTP API listener are ``application/json`` or nothing: what a
cross-site form can send (``text/plain``, form types, a typeless Blob) is refused with
415 in the endpoint's error shape and changes nothing; the same body as JSON works."""

from __future__ import annotations

import json

import pytest
import trio

from tests.helpers.daemon import RunningDaemon
from tests.helpers.http import api_client, assert_error
from tests.helpers.security import assert_rooms_error

CROSS_SITE_TYPES = ["text/plain", "application/x-www-form-urlencoded", None]


@pytest.mark.parametrize("content_type", CROSS_SITE_TYPES)
async def test_rooms_refuse_a_body_that_is_not_json(
    daemon: RunningDaemon, content_type: str | None
) -> None:
    room = {"roomName": "den", "owner": "alice", "pass": "alice-password"}
    body = json.dumps({"action": "createRoom", "payload": room}).encode()
    with trio.fail_after(20):
        async with daemon.http() as client:
            request = client.build_request("POST", "/rooms", content=body)
            request.headers.pop("Content-Type", None)
            if content_type is not None:
                request.headers["Content-Type"] = content_type
            response = await client.send(request)
            assert "application/json" in assert_rooms_error(response, 415, "unsupported_media_type")
            # Not created: the origin client's JSON request creates it now.
            created = await client.post(
                "/rooms", content=body, headers={"Content-Type": "application/json"}
            )
            assert created.json() == {"status": "ok", "name": "den"}


async def test_the_api_refuses_a_body_that_is_not_json(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with api_client(daemon) as api:
            auth = {"Authorization": f"Bearer {api.token}"}
            create = {"server": "s1", "type": "demo-game"}
            for path, body in (("server_create", create), ("auth/logout", {})):
                for content_type in CROSS_SITE_TYPES:
                    request = api.client.build_request(
                        "POST", f"/api/{path}", content=json.dumps(body).encode(), headers=auth
                    )
                    request.headers.pop("Content-Type", None)
                    if content_type is not None:
                        request.headers["Content-Type"] = content_type
                    response = await api.client.send(request)
                    assert assert_error(response, 415)["error_type"] == "unsupported_media_type"
            # Nothing happened: the token still works and no server exists.
            assert (await api.ok("server_list"))["servers"] == []
            # An empty POST without a type is still an empty object.
            empty = await api.client.post("/api/server_list", headers=auth)
            assert empty.json()["servers"] == []
            await api.ok("server_create", create)
            assert (await api.ok("server_list"))["servers"] == ["s1"]

"""Odd requests get an answer in the listener's error shape and no traceback: a
``Host`` that is no valid name (an empty label, a label over 63 characters) is a 400,
and a WebSocket upgrade sent to the HTTP listener is a 404 (WebSockets have their own
port), while a normal request on the same connection kind is served."""

from __future__ import annotations

import logging

import pytest
import trio

from tests.helpers.daemon import RunningDaemon
from tests.helpers.security import BASIC, RawHttp, netloc

BAD_HOSTS = ["localhost..", "a" * 64 + ".localhost", "." + "b" * 70]
UPGRADE = (
    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


async def answer(url: str, path: str, host: str, headers: str = "") -> tuple[int, object]:
    client = await RawHttp.connect(url)
    try:
        status, _, body = await client.get(path, host, headers)
    finally:
        await client.aclose()
    return status, body


async def test_malformed_host_names_are_a_400_in_each_shape(
    daemon: RunningDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    http, admin = daemon.endpoints.http, daemon.endpoints.admin
    with trio.fail_after(20):
        for host in BAD_HOSTS:
            status, body = await answer(http, "/api/health", host)
            assert status == 400
            assert isinstance(body, dict)
            assert (set(body), body["error_type"]) == ({"error_type", "error_message"}, "invalid")
            status, body = await answer(http, "/rooms", host)
            assert status == 400
            assert isinstance(body, dict)
            assert (body["status"], body["error_type"]) == ("error", "invalid")
            status, body = await answer(admin, "/status", host, f"Authorization: {BASIC}\r\n")
            assert status == 400
            assert isinstance(body, dict)
            assert set(body) == {"status", "message"}
        assert (await answer(http, "/api/health", netloc(http)))[0] == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_a_websocket_upgrade_to_the_http_listener_is_a_404(
    daemon: RunningDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    http = daemon.endpoints.http
    with trio.fail_after(20):
        for path in ("/", "/api/health", "/chat/login/x", "/nowhere"):
            status, body = await answer(http, path, netloc(http), UPGRADE)
            assert status == 404, body
            assert isinstance(body, dict)
            assert body["error_type"] == "not_found"
            assert set(body) == {"error_type", "error_message"}
        status, body = await answer(
            daemon.endpoints.admin, "/", netloc(daemon.endpoints.admin), UPGRADE
        )
        assert status == 404
        assert isinstance(body, dict)
        assert set(body) == {"status", "message"}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text

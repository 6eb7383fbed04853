"""The WebSocket listener: routing by path (unknown path refused at the handshake
with 404) and the seed 000 envelope on ``/``."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    open_websocket_url,
)

from leosuite import __version__
from tests.helpers.daemon import RunningDaemon
from tests.helpers.ws import client_socket_leak_tolerated


async def call(ws: WebSocketConnection, frame: Any) -> dict[str, Any]:
    await ws.send_message(frame if isinstance(frame, str | bytes) else json.dumps(frame))
    answer: dict[str, Any] = json.loads(await ws.get_message())
    return answer


def assert_envelope(answer: dict[str, Any]) -> None:
    assert set(answer) == {"uuid", "type", "status_code", "status_string", "content"}
    assert isinstance(answer["uuid"], str)
    assert isinstance(answer["type"], str)
    assert isinstance(answer["status_code"], int)


async def rejected(url: str) -> tuple[int, bytes]:
    """Status and body of a refused handshake."""
    with client_socket_leak_tolerated():
        try:
            async with open_websocket_url(url):
                pass
        except ConnectionRejected as exc:
            return exc.status_code, exc.body or b""
    raise AssertionError("the handshake was accepted")  # pragma: no cover


@pytest.mark.parametrize("path", ["/nope", "/chat", "/api", "//", "/%ff"])
async def test_unknown_path_is_refused_with_404(daemon: RunningDaemon, path: str) -> None:
    with trio.fail_after(10):
        status, body = await rejected(daemon.endpoints.ws + path)
    assert status == 404
    assert json.loads(body)["error_type"] == "not_found"


async def test_listener_survives_refusals(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        for _ in range(3):
            assert (await rejected(daemon.endpoints.ws + "/nope"))[0] == 404
        async with open_websocket_url(daemon.endpoints.ws + "/") as ws:
            answer = await call(ws, {"type": "get_version", "uuid": "u", "content": {}})
            assert answer["status_code"] == 0


@pytest.mark.parametrize("kind", ["get_leosac_version", "get_version"])
async def test_version_call(daemon: RunningDaemon, kind: str) -> None:
    with trio.fail_after(10):
        async with open_websocket_url(daemon.endpoints.ws + "/") as ws:
            answer = await call(ws, {"type": kind, "uuid": "abc-123", "content": {}})
    assert_envelope(answer)
    assert answer["uuid"] == "abc-123"
    assert answer["type"] == kind
    assert answer["status_code"] == 0
    assert answer["status_string"] == "SUCCESS"
    assert answer["content"]["version"] == __version__
    assert __version__.startswith(answer["content"]["version_short"])


async def test_query_string_on_root_path_is_accepted(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with open_websocket_url(daemon.endpoints.ws + "/?x=1") as ws:
            answer = await call(ws, {"type": "get_version", "uuid": "q", "content": None})
    assert answer["status_code"] == 0


BAD_FRAMES: list[Any] = [
    pytest.param("not json", "", "", id="not-json"),
    pytest.param("", "", "", id="empty"),
    pytest.param(b"\xff\xfe", "", "", id="binary-non-utf8"),
    pytest.param("[1, 2]", "", "", id="array"),
    pytest.param("42", "", "", id="number"),
    pytest.param('{"type": "get_version", "uuid": "u1"}', "u1", "get_version", id="no-content"),
    pytest.param('{"type": "get_version", "content": {}}', "", "get_version", id="no-uuid"),
    pytest.param('{"type": 5, "uuid": 7, "content": {}}', "", "", id="wrong-types"),
    pytest.param('{"uuid": "u2", "content": {}}', "u2", "", id="no-type"),
    pytest.param("[" * 100_000 + "]" * 100_000, "", "", id="deep"),
    pytest.param('{"uuid": "x", "type": NaN, "content": 1}', "", "", id="nan"),
]


@pytest.mark.parametrize(("frame", "uuid", "kind"), BAD_FRAMES)
async def test_malformed_frame_answers_malformed_and_stays_open(
    daemon: RunningDaemon, frame: str | bytes, uuid: str, kind: str
) -> None:
    with trio.fail_after(10):
        async with open_websocket_url(daemon.endpoints.ws + "/") as ws:
            answer = await call(ws, frame)
            assert_envelope(answer)
            assert answer["status_code"] == 4
            assert answer["uuid"] == uuid
            assert answer["type"] == kind
            # The connection stays open and still answers.
            again = await call(ws, {"type": "get_leosac_version", "uuid": "next", "content": {}})
            assert again["uuid"] == "next"
            assert again["status_code"] == 0


async def test_unknown_call_is_invalid_call(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with open_websocket_url(daemon.endpoints.ws + "/") as ws:
            answer = await call(ws, {"type": "no_such_call", "uuid": "z", "content": {}})
            assert_envelope(answer)
            assert (answer["uuid"], answer["type"], answer["status_code"]) == (
                "z",
                "no_such_call",
                5,
            )


async def test_message_over_the_limit_closes_with_1009(daemon: RunningDaemon) -> None:
    limit = daemon.ctx.settings.ws.max_message_bytes
    with trio.fail_after(10), client_socket_leak_tolerated():
        async with open_websocket_url(daemon.endpoints.ws + "/") as ws:
            await ws.send_message("x" * (limit + 1))
            with pytest.raises(ConnectionClosed):
                await ws.get_message()
            assert ws.closed is not None
            assert ws.closed.code == 1009
        # The listener still serves others.
        async with open_websocket_url(daemon.endpoints.ws + "/") as ws:
            answer = await call(ws, {"type": "get_version", "uuid": "after", "content": {}})
            assert answer["status_code"] == 0

"""Bad HTTP input gets the documented JSON error, the right status, and changes nothing.

Every answer is ``{"error_type", "error_message"}`` JSON, including what the
framework raises itself (unknown route, wrong method, body too large).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from leosuite.auth.pow import solve
from leosuite.store import audit
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, make_settings, start_daemon
from tests.helpers.http import JSON, Blob

LOGIN = "/api/auth/login"


def assert_error(response: httpx.Response, status: int, error_type: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"error_type", "error_message"}
    assert body["error_type"] == error_type
    message: str = body["error_message"]
    assert message
    return message


async def state(daemon: RunningDaemon) -> tuple[int, int, list[tuple[Any, ...]]]:
    """(tokens, auth audit entries, accounts): what a refused request must not change.

    (Entries of other topics may record the bad input itself.)
    """

    def read(conn: sqlite3.Connection) -> tuple[int, int, list[tuple[Any, ...]]]:
        tokens = conn.execute("SELECT count(*) FROM tokens").fetchone()[0]
        entries = conn.execute("SELECT count(*) FROM audit_log WHERE topic = 'auth'").fetchone()
        accounts = conn.execute("SELECT * FROM accounts ORDER BY id").fetchall()
        return tokens, entries[0], accounts

    result: tuple[int, int, list[tuple[Any, ...]]] = await daemon.ctx.db.call(read)
    return result


async def fresh_login_body(client: httpx.AsyncClient) -> dict[str, Any]:
    info = (await client.get("/api/auth/login_info")).json()
    return {
        "username": "admin",
        "password": ADMIN_PASSWORD,
        "random": info["random"],
        "proof_of_works": solve(
            info["random"], count=info["proof_of_works"], difficulty=info["difficulty"]
        ),
    }


async def assert_still_serving(daemon: RunningDaemon) -> None:
    """A new connection gets a real login: the daemon is healthy."""
    async with daemon.http() as client:
        body = await fresh_login_body(client)
        response = await client.post(LOGIN, json=body)
        assert response.status_code == 200, response.text


BAD_BODIES: list[Any] = [
    pytest.param(b'{"username": "admin", ', "not valid JSON", id="truncated"),
    pytest.param(b"{'username': 'admin'}", "not valid JSON", id="single-quotes"),
    pytest.param(b'{"username": NaN}', "not valid JSON", id="nan"),
    pytest.param(b"[]", "Expected `object`, got `array`", id="list"),
    pytest.param(b"42", "Expected `object`, got `int`", id="number"),
    pytest.param(b'"text"', "Expected `object`, got `str`", id="string"),
    pytest.param(b"null", "Expected `object`, got `null`", id="null"),
    pytest.param(
        b'{"username": "admin", "password": "x", "proof_of_works": []}', "`random`", id="missing"
    ),
    pytest.param(
        b'{"username": "a", "password": "x", "random": "r", "proof_of_works": [], "admin": true}',
        "admin: unknown field",
        id="extra",
    ),
    pytest.param(
        b'{"username": 7, "password": "x", "random": "r", "proof_of_works": []}',
        "username: Expected `str`, got `int`",
        id="wrong-type-username",
    ),
    pytest.param(
        b'{"username": "a", "password": "x", "random": "r", "proof_of_works": "abc"}',
        "proof_of_works: Expected `array`, got `str`",
        id="wrong-type-proofs",
    ),
    pytest.param(
        b'{"username": "a", "password": "x", "random": "r", "proof_of_works": [1]}',
        "proof_of_works[0]: Expected `str`, got `int`",
        id="wrong-type-proof-item",
    ),
    pytest.param(
        b'{"username": "\xff\xfe", "password": "x", "random": "r", "proof_of_works": []}',
        "UTF-8",
        id="non-utf8",
    ),
    pytest.param(b"\xef\xbb\xbf{}", "", id="bom"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "", id="deep-list"),
    pytest.param(b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "", id="deep-in-field"),
    pytest.param(
        b'{"username": "a", "password": "x", "random": "r", "proof_of_works": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}",
        "",
        id="deep-in-list-field",
    ),
    pytest.param(b'{"token": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001, "", id="deep-objects"),
]


@pytest.mark.parametrize(("body", "expected"), BAD_BODIES)
async def test_bad_login_body_is_400_and_changes_nothing(
    daemon: RunningDaemon, body: bytes, expected: str
) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            before = await state(daemon)
            response = await client.post(LOGIN, content=body, headers=JSON)
            message = assert_error(response, 400, "invalid")
            assert expected in message
            assert await state(daemon) == before
        await assert_still_serving(daemon)


@pytest.mark.parametrize(
    "body", [b"[]", b"1", b'{"token": 5}', b'{"tokn": "ab"}', b"{", b'{"token": "\xff"}']
)
async def test_bad_logout_body_is_400(daemon: RunningDaemon, body: bytes) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            response = await client.post("/api/auth/logout", content=body, headers=JSON)
            assert_error(response, 400, "invalid")


async def test_duplicate_field_does_not_sneak_a_second_value_through(
    daemon: RunningDaemon,
) -> None:
    # msgspec keeps the last of duplicate keys; the first (valid) one must not win.
    with trio.fail_after(20):
        async with daemon.http() as client:
            body = await fresh_login_body(client)
            raw = (
                b'{"username": "admin", "password": "'
                + ADMIN_PASSWORD.encode()
                + b'", "password": "wrong-password", "random": "'
                + body["random"].encode()
                + b'", "proof_of_works": ["'
                + b'", "'.join(p.encode() for p in body["proof_of_works"])
                + b'"]}'
            )
            response = await client.post(LOGIN, content=raw, headers=JSON)
            assert_error(response, 403, "forbidden")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_wrong_content_type_is_415(daemon: RunningDaemon, content_type: str | None) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            body = await fresh_login_body(client)
            before = await state(daemon)
            request = client.build_request("POST", LOGIN, content=json.dumps(body).encode())
            if content_type is None:
                request.headers.pop("Content-Type", None)
            else:
                request.headers["Content-Type"] = content_type
            response = await client.send(request)
            message = assert_error(response, 415, "unsupported_media_type")
            assert "application/json" in message
            assert await state(daemon) == before


async def test_json_content_type_with_charset_is_accepted(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            body = await fresh_login_body(client)
            response = await client.post(
                LOGIN,
                content=json.dumps(body).encode(),
                headers={"Content-Type": "application/json; charset=utf-8"},
            )
            assert response.status_code == 200, response.text


async def post_blob(client: httpx.AsyncClient, size: int, *, with_length: bool) -> httpx.Response:
    headers = dict(JSON)
    if with_length:
        headers["Content-Length"] = str(size)
    request = client.build_request("POST", LOGIN, headers=headers)
    request.stream = Blob(size)
    if not with_length:
        request.headers.pop("Content-Length", None)
        request.headers["Transfer-Encoding"] = "chunked"
    return await client.send(request)


@pytest.mark.parametrize("with_length", [True, False], ids=["content-length", "chunked"])
async def test_20_mb_body_is_413_and_the_daemon_keeps_serving(
    daemon: RunningDaemon, with_length: bool
) -> None:
    with trio.fail_after(30):
        before = await state(daemon)
        async with daemon.http() as client:
            response = await post_blob(client, 20 * 1024 * 1024, with_length=with_length)
            message = assert_error(response, 413, "too_large")
            assert "larger" in message or "too large" in message
            # The same client (its keep-alive connection, or a new one if the
            # server closed it) gets an answer.
            again = await client.get("/api/auth/config")
            assert again.status_code == 200
        assert await state(daemon) == before
        await assert_still_serving(daemon)


async def raw_request(stream: trio.SocketStream, head: bytes, body: bytes = b"") -> bytes:
    """Send one request and read one complete response (head + Content-Length body)."""
    await stream.send_all(head + body)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return data
        data += chunk
    header, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in header.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        rest += chunk
    return header + b"\r\n\r\n" + rest


@pytest.mark.parametrize("path", [LOGIN, "/api/nothing-here"])
async def test_keep_alive_connection_answers_after_early_error(
    daemon: RunningDaemon, path: str
) -> None:
    """An answer sent before the request body arrived must not hang the connection."""
    port = int(daemon.endpoints.http.rsplit(":", 1)[1])
    with trio.fail_after(15):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            size = 2 * 1024 * 1024  # over http.max_body_bytes (1 MiB)
            head = (
                f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                f"Content-Length: {size}\r\n\r\n"
            ).encode()
            # Send the head and only part of the body: the server answers early.
            first = await raw_request(stream, head, b" " * 1024)
            assert first.startswith(b"HTTP/1.1 4"), first[:200]
            assert b'"error_type"' in first
            # Then another request on the same connection: it is either answered
            # or the connection is closed. It must never hang.
            try:
                await stream.send_all(b" " * 4096)
                second = await raw_request(
                    stream, b"GET /api/auth/config HTTP/1.1\r\nHost: localhost\r\n\r\n"
                )
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                second = b""
            assert second == b"" or second.startswith(b"HTTP/1.1 "), second[:200]
        await assert_still_serving(daemon)


async def test_unknown_route_is_404_json(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with daemon.http() as client:
            for method, path in [
                ("GET", "/nope"),
                ("GET", "/api/nope"),
                ("POST", "/api/auth/nope"),
                ("GET", "/api/auth/login_info/extra"),
                ("DELETE", "/%ff%fe"),
            ]:
                response = await client.request(method, path)
                assert_error(response, 404, "not_found")


async def test_wrong_method_is_405_json_with_allow(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with daemon.http() as client:
            for method, path, allowed in [
                ("GET", LOGIN, "POST"),
                ("PUT", "/api/auth/logout", "POST"),
                ("POST", "/api/auth/config", "GET"),
                ("DELETE", "/api/auth/login_info", "GET"),
            ]:
                response = await client.request(method, path)
                assert_error(response, 405, "method_not_allowed")
                allow = {m.strip() for m in response.headers["Allow"].split(",")}
                assert allowed in allow


async def test_bad_input_is_not_a_500_anywhere(daemon: RunningDaemon) -> None:
    """A sweep of odd requests: never a 500, never HTML."""
    with trio.fail_after(20):
        async with daemon.http() as client:
            odd: list[tuple[str, str, dict[str, Any]]] = [
                ("GET", "/api/auth/login_info?username=" + "x" * 100, {}),
                ("GET", "/api/auth/login_info?username=%00%ff", {}),
                ("POST", LOGIN, {"content": b"", "headers": JSON}),
                ("POST", LOGIN, {"content": b"   ", "headers": JSON}),
                ("POST", LOGIN, {"content": b"1e999", "headers": JSON}),
                ("POST", LOGIN, {"json": {"username": "a" * 10_000}}),
                (
                    "POST",
                    LOGIN,
                    {
                        "json": {
                            "username": "admin",
                            "password": "p" * 5000,
                            "random": "0" * 32,
                            "proof_of_works": ["a"] * 1000,
                        }
                    },
                ),
                ("POST", "/api/auth/logout", {"headers": {"Authorization": "Bearer " + "é"}}),
            ]
            for method, path, kwargs in odd:
                if "Authorization" in kwargs.get("headers", {}):
                    kwargs["headers"] = {
                        "Authorization": kwargs["headers"]["Authorization"].encode()
                    }
                response = await client.request(method, path, **kwargs)
                assert response.status_code < 500, (path, response.text)
                assert response.headers["content-type"] == "application/json", path
                if response.status_code >= 400:
                    assert set(response.json()) == {"error_type", "error_message"}
        entries = await daemon.ctx.db.call(lambda conn: audit.page(conn))
    assert not any(e.level == "error" for e in entries)


async def test_stalled_body_does_not_hold_the_connection(tmp_path: Path) -> None:
    """A peer that stops sending mid-body gets a 408 JSON answer or is dropped, soon."""
    settings = make_settings(tmp_path / "data", http={"read_timeout": 0.5})
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            daemon = await start_daemon(nursery, settings)
            port = int(daemon.endpoints.http.rsplit(":", 1)[1])
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(
                    b"POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
                )
                with trio.fail_after(3):
                    answer = b""
                    while chunk := await stream.receive_some(65536):
                        answer += chunk
            if answer:  # quart's body timeout won the race against hypercorn's read timeout
                head, _, body = answer.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 408"), answer
                assert json.loads(body)["error_type"] == "timeout"
            await assert_still_serving(daemon)
            daemon.daemon.request_stop()

"""An answer sent before the whole request arrived (a body over ``http.max_body_bytes``)
reaches the client: the daemon ends its side and drains the rest of the body before it
closes, for at most a bounded time, instead of resetting the connection."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from leosuite._compat import hypercorn as hypercorn_compat
from tests.helpers.daemon import make_settings, running_daemon

#: Far more than the loopback socket buffers of both ends hold, so that a daemon that
#: closed with the body unread would reset the connection while the client still sends.
BODY = 64 << 20


def _request_head(http_url: str, length: int) -> bytes:
    host = http_url.removeprefix("http://")
    return (
        f"POST /rooms HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def _open(http_url: str) -> trio.SocketStream:
    host, port = http_url.removeprefix("http://").rsplit(":", 1)
    return await trio.open_tcp_stream(host, int(port))


async def _read_to_end(stream: trio.SocketStream) -> bytes:
    answer = b""
    while chunk := await stream.receive_some(65536):
        answer += chunk
    return answer


async def test_an_early_answer_survives_the_rest_of_a_big_body(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon:
            stream = await _open(daemon.endpoints.http)
            await stream.send_all(_request_head(daemon.endpoints.http, BODY))
            chunk = b"x" * (1 << 20)
            for _ in range(BODY // len(chunk)):  # every byte is accepted, none reset
                await stream.send_all(chunk)
            answer = await _read_to_end(stream)
            await stream.aclose()
            assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
            assert b'"too_large"' in answer
            # the answer says the connection ends, so no client sends its next request on it
            head = answer.split(b"\r\n\r\n", 1)[0].lower()
            assert b"\r\nconnection: close" in head, head
            # the daemon still serves (and the next connection is answered in full)
            stream = await _open(daemon.endpoints.http)
            await stream.send_all(_request_head(daemon.endpoints.http, 2) + b"{}")
            head = await stream.receive_some(65536)
            await stream.aclose()
            assert head.startswith(b"HTTP/1.1 400 "), head[:200]


async def test_a_request_read_to_its_end_keeps_the_connection(tmp_path: Path) -> None:
    """Only an answer given while the body is still on its way closes the connection: a
    refused request whose body was read in full leaves it open for the next request."""
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            stream = await _open(daemon.endpoints.http)
            answers = []
            for _ in range(2):
                await stream.send_all(_request_head(daemon.endpoints.http, 2) + b"{}")
                answer = b""
                while b'"status"' not in answer or not answer.endswith(b"}"):
                    chunk = await stream.receive_some(65536)
                    assert chunk, answer
                    answer += chunk
                answers.append(answer)
            await stream.aclose()
            for answer in answers:
                assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
                assert b"connection: close" not in answer.lower(), answer[:400]


async def test_a_client_that_never_stops_sending_is_cut_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hypercorn_compat, "LINGER", 0.5)
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            stream = await _open(daemon.endpoints.http)
            await stream.send_all(_request_head(daemon.endpoints.http, 1 << 40))
            await stream.send_all(b"x" * (2 << 20))
            answer = b""
            ended = cut_off = False
            # it trickles for ever: the daemon answers, ends its side, drains for
            # LINGER, then closes, and the next bytes sent are refused
            for _ in range(400):
                try:
                    await stream.send_all(b"x" * 1024)
                except trio.BrokenResourceError:
                    cut_off = True
                    break
                if not ended:
                    with trio.move_on_after(0.05):
                        chunk = await stream.receive_some(65536)
                        ended = not chunk
                        answer += chunk
                else:
                    await trio.sleep(0.05)
            await stream.aclose()
            assert ended
            assert cut_off
            assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]


async def test_an_idle_client_is_closed_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a client still sending is drained: after a whole request answered with
    ``Connection: close`` the socket is closed at once, not after LINGER."""
    monkeypatch.setattr(hypercorn_compat, "LINGER", 60.0)
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            stream = await _open(daemon.endpoints.http)
            host = daemon.endpoints.http.removeprefix("http://")
            await stream.send_all(
                f"GET /api/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
            )
            answer = await _read_to_end(stream)
            assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
            refused = False
            for _ in range(100):  # a closed socket answers the next bytes with a reset
                try:
                    await stream.send_all(b"x")
                except trio.BrokenResourceError:
                    refused = True
                    break
                await trio.sleep(0.05)
            await stream.aclose()
            assert refused

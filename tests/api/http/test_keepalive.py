"""Idle keep-alive connections are closed after http.keep_alive_timeout, and do not
hold up a graceful shutdown (hypercorn 0.18 + quart-trio patch in leosuite._compat.hypercorn)."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.helpers.daemon import make_settings, start_daemon


async def open_idle_connection(url: str) -> trio.SocketStream:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    await stream.send_all(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    answer = b""
    while b'{"status":"ok"}' not in answer:
        answer += await stream.receive_some(4096)
    return stream


async def test_idle_keep_alive_connection_is_closed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", http={"keep_alive_timeout": 0.5})
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            daemon = await start_daemon(nursery, settings)
            stream = await open_idle_connection(daemon.endpoints.http)
            started = trio.current_time()
            assert await stream.receive_some(100) == b""  # the daemon closed it
            assert trio.current_time() - started < 5
            await stream.aclose()
            daemon.daemon.request_stop()


async def test_idle_keep_alive_connection_does_not_delay_shutdown(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", http={"keep_alive_timeout": 60})
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            daemon = await start_daemon(nursery, settings)
            stream = await open_idle_connection(daemon.endpoints.http)
            started = trio.current_time()
            daemon.daemon.request_stop()
        # the nursery exits when the daemon has stopped
        assert trio.current_time() - started < 5
        assert await stream.receive_some(100) == b""
        await stream.aclose()

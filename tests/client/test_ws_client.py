"""``leosuite.client.ws`` against the in-process daemon, and ``leosuite server logs -f``
(which follows the console over the WebSocket API) as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from leosuite.client.ws import (
    ConsoleData,
    ConsoleEvent,
    ConsoleOverrun,
    ConsoleStream,
    WsCallError,
    WsClient,
    WsConnectionError,
    _Frame,
    open_ws_client,
)
from leosuite.errors import AuthError
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon

DEMO = {"ready_delay": 0.1, "player_interval": 0}
READY = b"Server ready"


@asynccontextmanager
async def admin_client(daemon: RunningDaemon, **kwargs: Any) -> AsyncIterator[WsClient]:
    async with open_ws_client(daemon.endpoints.ws, **kwargs) as client:
        await client.login("admin", ADMIN_PASSWORD)
        yield client


async def start_demo(client: WsClient, name: str = "demo") -> None:
    await client.call("server.create", {"server": name, "type": "demo-game", "settings": DEMO})
    await client.call("server.start", {"server": name})


async def read_until(console: ConsoleStream, needle: bytes) -> bytes:
    """Console bytes up to and including ``needle``; every chunk continues the last."""
    seen = b""
    expected = console.read_index
    async for event in console:
        assert isinstance(event, ConsoleData), event
        assert event.read_index == expected
        assert event.next_read_index == event.read_index + len(event.data)
        expected = event.next_read_index
        seen += event.data
        if needle in seen:
            return seen
    raise AssertionError(f"the console ended before {needle!r}")


# -- calls and login -------------------------------------------------------------------


async def test_call_returns_content_and_raises_on_a_status(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with open_ws_client(daemon.endpoints.ws) as client:
            version = await client.call("get_version")
            assert set(version) >= {"version", "version_short"}
            with pytest.raises(WsCallError) as unknown:
                await client.call("no.such.call", {})
            assert unknown.value.status_code == 5  # INVALID_CALL
            assert "no.such.call" in unknown.value.status_string
            with pytest.raises(WsCallError) as denied:
                await client.call("system_overview")
            assert denied.value.status_code == 2  # PERMISSION_DENIED


async def test_concurrent_calls_get_their_own_answers(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with admin_client(daemon) as client:
            results: dict[int, Any] = {}

            async def one(i: int) -> None:
                kind = "server.list" if i % 2 else "get_version"
                results[i] = (kind, await client.call(kind))

            async with trio.open_nursery() as nursery:
                for i in range(12):
                    nursery.start_soon(one, i)
            for kind, content in results.values():
                assert ("servers" in content) == (kind == "server.list")


async def test_login_and_token_authentication(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with open_ws_client(daemon.endpoints.ws) as first:
            with pytest.raises(AuthError):
                await first.login("admin", "wrong-password")
            answer = await first.login("admin", ADMIN_PASSWORD)
            assert first.token == answer["token"]
            assert first.user_id == answer["user_id"]
            overview = await first.call("system_overview")
            assert "servers" in overview
            async with open_ws_client(daemon.endpoints.ws) as second:
                with pytest.raises(AuthError):
                    await second.authenticate("not-a-token")
                assert (await second.authenticate(answer["token"]))["username"] == "admin"
                assert second.token == answer["token"]
                assert "servers" in await second.call("server.list")


async def test_unreachable_daemon_is_a_connection_error(daemon: RunningDaemon) -> None:
    with trio.socket.socket() as sock:  # a port nobody listens on
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with trio.fail_after(10), pytest.raises(WsConnectionError, match="cannot reach"):
        async with open_ws_client(f"ws://127.0.0.1:{port}/"):
            pass  # pragma: no cover


async def test_lost_connection_fails_pending_calls_and_streams(daemon: RunningDaemon) -> None:
    with trio.fail_after(15):
        async with admin_client(daemon) as client:
            await start_demo(client)
            async with client.subscribe_console("demo", from_=0) as console:
                await read_until(console, READY)
                # The daemon closes a connection that sends a frame over 1 MiB (1009).
                with pytest.raises(WsConnectionError, match="1009"):
                    await client.call("get_version", {"padding": "x" * (2 * 1024 * 1024)})
                with pytest.raises(WsConnectionError):
                    async for _ in console:
                        pass
            with pytest.raises(WsConnectionError):
                await client.call("get_version")
            assert [push async for push in client.pushes] == []


# -- console ----------------------------------------------------------------------------


async def test_console_backlog_then_live_output(daemon: RunningDaemon) -> None:
    with trio.fail_after(15):
        async with admin_client(daemon) as client:
            await start_demo(client)
            async with client.subscribe_console("demo", from_=0) as console:
                assert console.read_index == 0
                backlog = await read_until(console, READY)
                assert b"Starting demo-game server" in backlog
                await client.call("server.cmd", {"server": "demo", "command": "say over ws"})
                await read_until(console, b"[Server] over ws")
            # Left the block: unsubscribed, so subscribing again is allowed.
            status = await client.call("server.status", {"server": "demo"})
            async with client.subscribe_console("demo") as live:
                assert live.read_index == status["readIndex"]
                await client.call("server.cmd", {"server": "demo", "command": "say again"})
                assert (await read_until(live, b"again")).startswith(b"[")


async def test_console_of_unknown_server_and_bad_from(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with admin_client(daemon) as client:
            with pytest.raises(WsCallError) as missing:
                async with client.subscribe_console("nope"):
                    pass  # pragma: no cover
            assert missing.value.status_code == 8  # ENTITY_NOT_FOUND
            await start_demo(client)
            with pytest.raises(WsCallError) as bad:
                async with client.subscribe_console("demo", from_=10**9):
                    pass  # pragma: no cover
            assert bad.value.status_code == 12  # INVALID_ARGUMENT
            async with client.subscribe_console("demo", from_=0) as console:  # still usable
                await read_until(console, READY)


async def test_destroyed_server_ends_the_stream(daemon: RunningDaemon) -> None:
    with trio.fail_after(15):
        async with admin_client(daemon) as client:
            await start_demo(client)
            async with client.subscribe_console("demo", from_=0) as console:
                await read_until(console, READY)
                await client.call("server.destroy", {"server": "demo"})
                rest = [event async for event in console]
                assert all(isinstance(e, ConsoleData) for e in rest)
                assert console.closed


async def test_revoked_session_ends_the_stream_and_is_pushed(daemon: RunningDaemon) -> None:
    with trio.fail_after(15):
        async with admin_client(daemon) as client:
            await start_demo(client)
            assert client.user_id is not None
            async with client.subscribe_console("demo", from_=0) as console:
                await read_until(console, READY)
                await daemon.ctx.auth.revoke_account(client.user_id, "locked by a test")
                with pytest.raises(AuthError, match="locked by a test"):
                    async for _ in console:
                        pass
            push = await client.pushes.receive()
            assert push.type == "session_closed"
            assert push.content == {"reason": "locked by a test"}
            assert client.token is None


async def test_events_arrive_as_pushes(daemon: RunningDaemon) -> None:
    with trio.fail_after(15):
        async with admin_client(daemon) as client:
            await client.call("events.subscribe")
            await start_demo(client)
            states = set()
            while "running" not in states:
                push = await client.pushes.receive()
                assert push.type == "event"
                if push.content["kind"] == "state":
                    states.add(push.content["new"])


def frame(kind: str, **content: Any) -> _Frame:
    return _Frame(uuid="u", type=kind, content={"server": "s", **content})


def output(index: int, data: bytes) -> _Frame:
    return frame(
        "console_output",
        readIndex=index,
        nextReadIndex=index + len(data),
        data=data.decode(),
        encoding="utf-8",
    )


async def test_full_console_buffer_skips_and_says_so() -> None:
    """The reader never blocks: a stream whose buffer is full drops chunks and its next
    item is a ConsoleOverrun with the bytes skipped (merged with the daemon's own)."""
    stream = ConsoleStream("s", 0, buffer=2)
    stream._deliver(output(0, b"aaaa"))
    stream._deliver(output(4, b"bb"))
    stream._deliver(output(6, b"ccc"))  # full: dropped
    stream._deliver(frame("console_overrun", skipped=100, readIndex=109))  # dropped too
    stream._deliver(output(109, b"dd"))  # dropped
    got: list[ConsoleEvent] = [await stream.receive(), await stream.receive()]
    stream._deliver(output(111, b"e"))  # room again: the overrun first, then the data
    got += [await stream.receive(), await stream.receive()]
    b64 = frame("console_output", readIndex=112, nextReadIndex=114, data="/w==", encoding="base64")
    stream._deliver(b64)
    got.append(await stream.receive())
    assert got == [
        ConsoleData("s", 0, 4, b"aaaa"),
        ConsoleData("s", 4, 6, b"bb"),
        ConsoleOverrun("s", 3 + 100 + 2, 111),
        ConsoleData("s", 111, 112, b"e"),
        ConsoleData("s", 112, 114, b"\xff"),
    ]
    assert stream.read_index == 114
    stream._deliver(frame("console_closed", readIndex=114))
    with pytest.raises(trio.EndOfChannel):
        await stream.receive()


async def test_full_push_buffer_drops_and_counts(daemon: RunningDaemon) -> None:
    with trio.fail_after(15):
        async with admin_client(daemon, push_buffer=1) as client:
            await client.call("events.subscribe")
            await start_demo(client)  # several state and log events, never read
            await client.call("server.stop", {"server": "demo"})
            assert client.dropped_pushes > 0
            assert (await client.call("get_version"))["version"]  # answers still arrive
            assert client.pushes.statistics().current_buffer_used == 1


# -- leosuite server logs -f -------------------------------------------------------------


def cli_env(home: Path) -> dict[str, str]:
    return {"HOME": str(home), "PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1"}


async def cli_login(daemon: RunningDaemon, home: Path) -> None:
    argv = [sys.executable, "-m", "leosuite", "login", "--url", daemon.endpoints.http]
    done = await trio.run_process(
        [*argv, "-u", "admin", "--password-stdin"],
        stdin=(ADMIN_PASSWORD + "\n").encode(),
        capture_stdout=True,
        capture_stderr=True,
        env=cli_env(home),
        cwd=home,
        check=False,
    )
    assert done.returncode == 0, done.stderr


async def test_logs_follow_streams_over_the_websocket(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with trio.fail_after(30):
        await cli_login(daemon, home)
        async with admin_client(daemon) as client:
            await start_demo(client)
            argv = [sys.executable, "-m", "leosuite", "server", "logs", "-f", "demo"]
            argv += ["--data-dir", str(tmp_path / "data")]  # the daemon's endpoints.json
            async with trio.open_nursery() as nursery:
                proc: trio.Process = await nursery.start(
                    lambda task_status: trio.run_process(
                        argv,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        env=cli_env(home),
                        cwd=home,
                        check=False,
                        task_status=task_status,
                    )
                )
                assert proc.stdout is not None
                seen = b""
                while READY not in seen:
                    chunk = await proc.stdout.receive_some()
                    assert chunk, "logs -f ended early"
                    seen += chunk
                # The CLI is now subscribed: a new line arrives live.
                await client.call("server.cmd", {"server": "demo", "command": "say live"})
                while b"[Server] live\n" not in seen:
                    chunk = await proc.stdout.receive_some()
                    assert chunk, "logs -f ended early"
                    seen += chunk
                proc.terminate()
            assert seen.startswith(b"[")  # the backlog from index 0: raw console bytes
            assert b"Starting demo-game server" in seen


async def test_logs_follow_without_a_websocket_says_so(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with trio.fail_after(30):
        await cli_login(daemon, home)
        argv = [sys.executable, "-m", "leosuite", "server", "logs", "-f", "demo"]
        done = await trio.run_process(
            [*argv, "--ws-url", f"ws://127.0.0.1:{port}/"],
            capture_stdout=True,
            capture_stderr=True,
            env=cli_env(home),
            cwd=home,
            check=False,
        )
    assert done.returncode == 1
    message = done.stderr.decode()
    assert f"cannot reach leosuite's WebSocket API at ws://127.0.0.1:{port}/" in message
    assert "Traceback" not in message


def test_frame_decoder_matches_the_daemon_envelope() -> None:
    from leosuite.api.ws.protocol import StatusCode, envelope

    decoded = msgspec.json.decode(envelope("id", "t", StatusCode.MALFORMED, {"a": 1}), type=_Frame)
    assert decoded == _Frame(
        uuid="id", type="t", status_code=4, status_string="MALFORMED", content={"a": 1}
    )

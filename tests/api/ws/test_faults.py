"""Faults and abuse of the WebSocket API over real sockets: request bursts, oversized
frames, foreign Origins, connection caps, slow and vanishing console subscribers,
many idle connections and peers that do not answer pings."""

from __future__ import annotations

import json
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    open_websocket_url,
)

from leosuite.api.ws.conn import WsHub
from tests.helpers.audit import audited
from tests.helpers.daemon import RunningDaemon, make_settings, running_daemon
from tests.helpers.servers import command_settings
from tests.helpers.ws import RawClient, Rejected, client_socket_leak_tolerated, ws_client


def hub_of(daemon: RunningDaemon) -> WsHub:
    """The daemon's WebSocket hub."""
    hub = daemon.ctx.ws_hub
    assert isinstance(hub, WsHub)
    return hub


async def refused(url: str, headers: list[tuple[bytes, bytes]] | None = None) -> int:
    with client_socket_leak_tolerated():
        try:
            async with open_websocket_url(url, extra_headers=headers):
                pass
        except ConnectionRejected as exc:
            return exc.status_code
    raise AssertionError("the handshake was accepted")


async def served_promptly(daemon: RunningDaemon) -> float:
    """Seconds a fresh client needs for a get_version round trip."""
    start = trio.current_time()
    async with ws_client(daemon) as client:
        await client.ok("get_version", {})
    return trio.current_time() - start


async def send_then_receive(ws: WebSocketConnection, message: str) -> str | bytes:
    await ws.send_message(message)
    return await ws.get_message()


# -- bursts and big frames ----------------------------------------------------------------


async def test_burst_of_10000_requests_is_rate_limited(daemon: RunningDaemon) -> None:
    total = 10_000
    burst = daemon.ctx.settings.ws.request_burst
    latencies: list[float] = []
    with trio.fail_after(60):
        async with RawClient.open(daemon.endpoints.ws + "/") as client:
            async with ws_client(daemon) as other:
                frames = b"".join(
                    client.encode("get_version", None, uuid=f"b{i}") for i in range(total)
                )
                done = trio.Event()

                async def read_answers() -> None:
                    while client.count() < total:
                        assert await client.read_some()
                    done.set()

                async def keep_asking() -> None:
                    while not done.is_set():
                        start = trio.current_time()
                        await other.ok("get_version", {})
                        latencies.append(trio.current_time() - start)
                        await trio.sleep(0.05)  # within its own rate limit

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(read_answers)
                    nursery.start_soon(keep_asking)
                    await client.stream.send_all(frames)  # all at once
            answers = client.messages()
            # The bursting connection is open and usable once the bucket refills.
            while client.messages()[-1]["status_code"] == 3:
                await trio.sleep(0.05)
                await client.send("get_version", None, uuid="later")
                while client.messages()[-1]["uuid"] != "later":
                    assert await client.read_some()
            assert client.close_code() is None
    statuses = Counter(a["status_code"] for a in answers[:total])
    assert sorted(a["uuid"] for a in answers[:total]) == sorted(f"b{i}" for i in range(total))
    assert set(statuses) <= {0, 3}
    assert statuses[0] >= burst
    assert statuses[3] > total // 2
    assert latencies
    assert max(latencies) < 2.0


async def test_burst_from_a_client_that_does_not_read_is_closed_1008(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", ws={"send_timeout": 0.5, "queue_size": 8})
    async with running_daemon(settings) as daemon:
        with trio.fail_after(30):
            async with RawClient.open(daemon.endpoints.ws + "/", receive_buffer=4096) as raw:
                with trio.move_on_after(10):  # the daemon stops reading once answers pile up
                    try:
                        for i in range(10_000):
                            await raw.send("get_version", None, uuid=f"n{i}")
                    except trio.BrokenResourceError:
                        pass
                # Answers queued so far, then the close frame (or, if even that could
                # not be sent, the end of the stream).
                while hub_of(daemon).connections:
                    await trio.sleep(0.05)
                await raw.read_until_eof()
                answered = raw.messages()
                assert 0 < len(answered) < 10_000
                # 1008 when the close frame still fits; else the connection is just
                # dropped (1006): a peer that does not read cannot get a close frame.
                assert raw.close_code() in (1008, 1006)
            assert await served_promptly(daemon) < 2.0
            # Cut off, and said so once (not once per unread answer).
            cut_off = await audited(daemon, "cut off: it did not read its answers")
            assert len(cut_off) == 1


async def test_two_mib_frame_closes_with_1009(daemon: RunningDaemon) -> None:
    with trio.fail_after(15), client_socket_leak_tolerated():
        async with ws_client(daemon) as client:
            frame = {"type": "get_version", "uuid": "big", "content": {"x": "y" * (2 << 20)}}
            # The daemon may close before the whole frame is even sent.
            with pytest.raises(ConnectionClosed) as caught:
                await send_then_receive(client.ws, json.dumps(frame))
            assert caught.value.reason is not None
            assert caught.value.reason.code == 1009
        assert await served_promptly(daemon) < 2.0
        with trio.fail_after(5):  # the refusal is audited
            while not await audited(daemon, "(1009)"):
                await trio.sleep(0.05)


# -- Origin and connection caps --------------------------------------------------------


async def test_origin_check(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", ws={"allowed_origins": ["https://dash.example.org"]}
    )
    async with running_daemon(settings) as daemon:
        url = daemon.endpoints.ws + "/"
        host = url.split("//")[1].rstrip("/")
        with trio.fail_after(15):
            for origin in (b"http://evil.example", b"http://127.0.0.1:1", b"null", b"file://"):
                assert await refused(url, [(b"Origin", origin)]) == 403
            assert await audited(daemon, "foreign Origin")
            for headers in (
                None,
                [(b"Origin", f"http://{host}".encode())],
                [(b"Origin", b"https://dash.example.org")],
            ):
                async with open_websocket_url(url, extra_headers=headers) as ws:
                    await ws.send_message('{"type": "get_version", "uuid": "o", "content": {}}')
                    assert json.loads(await ws.get_message())["status_code"] == 0


async def raw_refusal(url: str, source: str) -> int:
    try:
        async with RawClient.open(url, source=source):
            pass
    except Rejected as exc:
        return exc.status
    raise AssertionError("the handshake was accepted")


async def test_connection_caps(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", ws={"max_connections_per_ip": 3, "max_connections": 5}
    )
    async with running_daemon(settings) as daemon:
        url = daemon.endpoints.ws + "/"
        with trio.fail_after(15):
            async with AsyncExitStack() as stack:
                clients = [await stack.enter_async_context(ws_client(daemon)) for _ in range(3)]
                assert await refused(url) == 429
                assert await raw_refusal(url, "127.0.0.1") == 429
                for client in clients:  # the open ones are unharmed
                    await client.ok("get_version", {})
                # Another address may still connect, up to the total cap.
                for _ in range(2):
                    await stack.enter_async_context(RawClient.open(url, source="127.0.0.2"))
                assert await raw_refusal(url, "127.0.0.3") == 503
                assert await raw_refusal(url, "127.0.0.1") == 503
            # Closed connections free their slots.
            while hub_of(daemon).connections:
                await trio.sleep(0.02)
            async with ws_client(daemon) as again:
                await again.ok("get_version", {})
            # One entry per address and reason: 127.0.0.1's second 429 is passed over.
            refusals = await audited(daemon, "connection refused")
            assert len(refusals) == 3


async def test_500_idle_connections(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", ws={"max_connections_per_ip": 600})
    async with running_daemon(settings) as daemon:
        with trio.fail_after(60):
            async with AsyncExitStack() as stack:
                for _ in range(500):
                    await stack.enter_async_context(RawClient.open(daemon.endpoints.ws + "/"))
                while len(hub_of(daemon).connections) < 500:  # the last one is being added
                    await trio.sleep(0.02)
                assert await served_promptly(daemon) < 2.0
                async with ws_client(daemon, login=True) as client:
                    assert (await client.ok("system_overview", {}))["sessions"] == 1
            while hub_of(daemon).connections:
                await trio.sleep(0.02)


# -- console subscribers that misbehave ---------------------------------------------------


async def test_console_subscriber_that_never_reads(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data",
        ws={"console_batch_bytes": 64 * 1024, "console_max_lag": 1 << 20},
    )
    total = 40_000_000
    async with running_daemon(settings) as daemon:
        with trio.fail_after(60):
            async with ws_client(daemon, login=True) as admin:
                await admin.ok(
                    "server.create",
                    {
                        "server": "f",
                        "type": "command",
                        "settings": command_settings("flood", total, "--sleep"),
                    },
                )
                url = daemon.endpoints.ws + "/"
                async with RawClient.open(url, receive_buffer=4096) as slow:
                    await slow.login()
                    await slow.send("console.subscribe", {"server": "f", "from": 0}, uuid="sub")
                    rss_before = psutil.Process().memory_info().rss
                    await admin.ok("server.start", {"server": "f"})
                    # While it floods, other clients keep getting prompt answers.
                    latencies = []
                    while (await admin.ok("server.status", {"server": "f"}))["readIndex"] < total:
                        start = trio.current_time()
                        await admin.ok("get_version", {})
                        latencies.append(trio.current_time() - start)
                        await trio.sleep(0.02)
                    assert max(latencies) < 1.0
                    assert await served_promptly(daemon) < 2.0
                    growth = psutil.Process().memory_info().rss - rss_before
                    # The 40 MB did not pile up in memory (the console ring holds 4 MiB).
                    assert growth < 20 << 20, growth

                    # Now it reads: it was skipped ahead, and told so.
                    while not any(m["type"] == "console_overrun" for m in slow.messages()):
                        assert await slow.read_some()
                    messages = slow.messages()
                    at = next(i for i, m in enumerate(messages) if m["type"] == "console_overrun")
                    content = messages[at]["content"]
                    assert content["server"] == "f"
                    assert content["skipped"] > 0
                    # Every byte before the overrun's readIndex that was not pushed was skipped.
                    pushed = sum(
                        len(m["content"]["data"])
                        for m in messages[:at]
                        if m["type"] == "console_output"
                    )
                    assert pushed + content["skipped"] == content["readIndex"]
                    while not any(m["type"] == "console_output" for m in messages[at + 1 :]):
                        assert await slow.read_some()
                        messages = slow.messages()
                    output = next(m for m in messages[at + 1 :] if m["type"] == "console_output")
                    assert output["content"]["readIndex"] == content["readIndex"]
                    received = sum(
                        len(m["content"]["data"])
                        for m in slow.messages()
                        if m["type"] == "console_output"
                    )
                    assert received < total // 2
                await admin.ok("server.kill", {"server": "f"})


async def test_console_subscriber_disconnects_mid_stream(daemon: RunningDaemon) -> None:
    with trio.fail_after(40):
        async with ws_client(daemon, login=True) as admin:
            for i in range(3):
                server = f"f{i}"
                flood = command_settings("flood", 20_000_000, "--sleep")
                await admin.ok(
                    "server.create", {"server": server, "type": "command", "settings": flood}
                )
                async with RawClient.open(daemon.endpoints.ws + "/") as gone:
                    await gone.login()
                    await gone.send("console.subscribe", {"server": server, "from": 0}, "s")
                    while not any(m["uuid"] == "s" for m in gone.messages()):
                        assert await gone.read_some()
                    await admin.ok("server.start", {"server": server})
                    while sum(m["type"] == "console_output" for m in gone.messages()) < 3:
                        assert await gone.read_some()
                    # Gone without a close handshake while the flood goes on.
            async with ws_client(daemon) as polite:
                await polite.login()
                await polite.ok("console.subscribe", {"server": "f0", "from": 0})
                await polite.next_push("console_output")
                # A normal close, with console pushes still coming.
            # Only the admin's connection is left; the daemon and the servers are fine.
            while len(hub_of(daemon).connections) > 1:
                await trio.sleep(0.02)
            assert (await admin.ok("system_overview", {}))["sessions"] == 1
            for i in range(3):
                status = await admin.ok("server.status", {"server": f"f{i}"})
                assert status["status"] == "running"
                await admin.ok("server.kill", {"server": f"f{i}"})
            assert await served_promptly(daemon) < 2.0


# -- ping --------------------------------------------------------------------------------


async def test_peer_that_does_not_answer_pings_is_closed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", ws={"ping_interval": 0.3})
    async with running_daemon(settings) as daemon:
        with trio.fail_after(15):
            async with RawClient.open(daemon.endpoints.ws + "/") as mute:
                await mute.read_until_eof()
                assert mute.pings() >= 1
                assert mute.close_code() == 1008
            while hub_of(daemon).connections:
                await trio.sleep(0.02)


async def test_peer_that_answers_pings_stays_open(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", ws={"ping_interval": 0.3})
    async with running_daemon(settings) as daemon:
        with trio.fail_after(15):
            async with RawClient.open(daemon.endpoints.ws + "/") as polite:
                await polite.answer_pings(4)  # about 1.2 s idle: four pings, each answered
                assert polite.close_code() is None
                await polite.send("get_version", None, uuid="still-here")
                while not polite.messages():
                    assert await polite.read_some()
                assert polite.messages()[0]["uuid"] == "still-here"


# -- races -------------------------------------------------------------------------------


async def test_concurrent_handshakes_respect_the_cap(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", ws={"max_connections_per_ip": 3})
    async with running_daemon(settings) as daemon:
        url = daemon.endpoints.ws + "/"
        outcomes: list[str] = []
        with trio.fail_after(15):
            async with AsyncExitStack() as stack:

                async def connect() -> None:
                    try:
                        await stack.enter_async_context(RawClient.open(url))
                    except Rejected as exc:
                        outcomes.append(str(exc.status))
                    else:
                        outcomes.append("open")

                async with trio.open_nursery() as nursery:
                    for _ in range(12):
                        nursery.start_soon(connect)
                assert sorted(outcomes) == ["429"] * 9 + ["open"] * 3
                assert len(hub_of(daemon).connections) == 3


async def test_concurrent_double_subscribe(daemon: RunningDaemon) -> None:
    with trio.fail_after(15):
        async with ws_client(daemon, login=True) as client:
            flood = command_settings("echo")
            await client.ok("server.create", {"server": "e", "type": "command", "settings": flood})
            for kind, content in [
                ("console.subscribe", {"server": "e"}),
                ("stats.subscribe", {}),
                ("events.subscribe", {}),
            ]:
                for uuid in ("one", "two"):
                    frame = {"type": kind, "uuid": uuid, "content": content}
                    await client.ws.send_message(json.dumps(frame))
                answers = [await client.answer("one"), await client.answer("two")]
                assert sorted(a["status_code"] for a in answers) == [0, 5], answers
                unsubscribe = kind.replace(".subscribe", ".unsubscribe")
                assert (await client.call(unsubscribe, content))["status_code"] == 0
                assert (await client.call(unsubscribe, content))["status_code"] == 5

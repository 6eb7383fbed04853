"""One address cannot flood the WebSocket listener or the audit log: handshakes
refused over a cap are audited once per burst with the address; guests joining and
leaving in a loop are audited once per burst; raw connections that never send a
handshake count against the per-address cap from accept, the extra ones are answered
429 and closed within seconds, and the held ones when ``ws.handshake_timeout`` passes,
while another address is served."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import trio

from leosuite.store import audit
from tests.helpers.chat import chat
from tests.helpers.daemon import RunningDaemon, make_settings, running_daemon
from tests.helpers.ws import RawClient, Rejected, client_socket_leak_tolerated


async def entries(daemon: RunningDaemon, needle: str) -> list[audit.AuditEntry]:
    rows: list[audit.AuditEntry] = await daemon.ctx.db.call(
        lambda conn: audit.page(conn, limit=1000)
    )
    return [e for e in rows if needle in e.message or needle == e.topic]


async def refusal(url: str, source: str = "127.0.0.1") -> int:
    try:
        async with RawClient.open(url, source=source):
            pass
    except Rejected as exc:
        return exc.status
    raise AssertionError("the handshake was accepted")


async def test_refused_handshakes_are_audited_once_per_burst_with_the_address(
    tmp_path: Path,
) -> None:
    settings = make_settings(
        tmp_path / "data",
        ws={"max_connections_per_ip": 2},
        community={"guest_logins_per_minute": 1000},
    )
    with trio.fail_after(30), client_socket_leak_tolerated():
        async with running_daemon(settings) as daemon:
            for path, needle in (("/", "connection refused"), ("/chat/login/g", "chat connection")):
                url = daemon.endpoints.ws + path
                async with AsyncExitStack() as stack:
                    for i in range(2):
                        held = url if path == "/" else f"{url}{i}"
                        await stack.enter_async_context(RawClient.open(held))
                    for _ in range(30):
                        assert await refusal(url) == 429
                    async with RawClient.open(
                        url if path == "/" else f"{url}x", source="127.0.0.2"
                    ):
                        pass  # another address is not refused
                rows = [e for e in await entries(daemon, needle) if "refused" in e.message]
                assert len(rows) == 1, [e.message for e in rows]
                assert rows[0].user_ip == "127.0.0.1"
                assert rows[0].level == "warning"


async def test_guests_joining_in_a_loop_do_not_flood_the_audit_log(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", community={"guest_logins_per_minute": 1000})
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            for i in range(25):
                async with chat(daemon, f"guest{i}") as guest:
                    await guest.join("#lobby")
            core = daemon.ctx.chat.core
            while core.members:  # the last one is still leaving
                await trio.sleep(0.02)
            assert len(await entries(daemon, "Join")) == 1
            assert len(await entries(daemon, "Leave")) == 1


async def test_half_open_connections_count_from_accept(tmp_path: Path) -> None:
    # 2 * 3 connections per address are held before any handshake; the timeout leaves a
    # loaded machine seconds to see the others refused while those are still held.
    per_ip, timeout = 3, 8.0
    settings = make_settings(
        tmp_path / "data", ws={"max_connections_per_ip": per_ip, "handshake_timeout": timeout}
    )
    with trio.fail_after(40):
        async with running_daemon(settings) as daemon:
            port = int(daemon.endpoints.ws.rsplit(":", 1)[1])
            # Each connection's timeout runs from its accept, somewhere between these two
            # times (opening twenty can take a while on a loaded machine).
            first_open = trio.current_time()
            streams = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(20)]
            start = trio.current_time()
            closed: list[tuple[float, bytes]] = []

            async def watch(stream: trio.SocketStream) -> None:
                received = b""
                try:
                    while data := await stream.receive_some(1024):
                        received += data
                except trio.BrokenResourceError:
                    pass
                closed.append((trio.current_time() - start, received))

            try:
                async with trio.open_nursery() as nursery:
                    for stream in streams:
                        nursery.start_soon(watch, stream)
                    # The 14 over the cap are answered 429 and closed within seconds ...
                    with trio.fail_after(timeout - 1):
                        while len(closed) < 20 - 2 * per_ip:
                            await trio.sleep(0.02)
                    assert all(answer.startswith(b"HTTP/1.1 429 ") for _, answer in closed)
                    # ... another address is served meanwhile ...
                    async with RawClient.open(daemon.endpoints.ws + "/", source="127.0.0.2") as ok:
                        await ok.send("get_version", {})
                    # ... and the held ones are closed when the handshake timeout passes.
                    assert len(closed) == 20 - 2 * per_ip
            finally:
                for stream in streams:
                    await stream.aclose()
            held = sorted(at for at, _ in closed)[-2 * per_ip :]
            assert min(held) > timeout - 0.5 - (start - first_open), held
            assert max(held) < timeout + 1.5, held
            rows = await entries(daemon, "over 6 open connections")
            assert len(rows) == 1
            assert rows[0].user_ip == "127.0.0.1"

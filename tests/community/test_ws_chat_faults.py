"""Faults and abuse of the WebSocket chat over real sockets: oversized messages, a
flood of joins, a member that never reads, a channel of 1 000 members."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import trio
import trio.testing
from trio_websocket import ConnectionClosed, open_websocket_url
from wsproto.events import TextMessage

from leosuite.community.models import ChatEvent, Member
from tests.helpers.chat import Chat, chat, chat_daemon, chat_url, check_frame, core_of
from tests.helpers.daemon import RunningDaemon
from tests.helpers.ws import RawClient, client_socket_leak_tolerated

MiB = 1024 * 1024


class Inbox:
    """A member held by the core directly: everything delivered is kept."""

    def __init__(self, events: list[ChatEvent]) -> None:
        self.events = events

    def __call__(self, event: ChatEvent) -> bool:
        self.events.append(event)
        return True


async def test_big_messages_error_or_close_1009(daemon: RunningDaemon) -> None:
    async def body() -> None:
        async with chat(daemon, "alice") as alice, chat(daemon, "bob") as bob:
            await alice.join("#x")
            await bob.join("#x")
            # under ws.max_message_bytes (1 MiB), over community.message_max_bytes (16 KiB)
            await bob.send(0, dest="x", message="y" * (900 * 1024))
            assert "at most 16384 bytes" in await bob.error()
            await bob.send(0, dest="x", message="still here")
            await alice.expect(0, message="still here")
            with contextlib.suppress(ConnectionClosed):  # 2 MiB: over the frame cap: 1009
                await bob.send(0, dest="x", message="z" * (2 * MiB))
            assert await bob.closed() == 1009
            assert (await alice.expect(5, user="bob"))["channel"] == "x"
            await alice.expect(3, user="bob")
            assert not core_of(daemon).nick_taken("bob")
            assert [m.name for m in core_of(daemon).chat_members()] == ["alice"]

    with trio.fail_after(20), client_socket_leak_tolerated():
        await body()


async def _flood_joins(daemon: RunningDaemon, count: int) -> tuple[RawClient, Member]:
    """One connection sends ``count`` joins of distinct channels as fast as it can
    (reading everything meanwhile); returns once the daemon has handled them all."""
    async with RawClient.open(chat_url(daemon, "flooder")) as client:
        while not client.messages():  # its own login broadcast
            assert await client.read_some()
        (member,) = core_of(daemon).chat_members()
        frames = [
            client.proto.send(TextMessage(data=json.dumps({"type": 4, "channel": f"#c{i}"})))
            for i in range(count)
        ]
        async with trio.open_nursery() as nursery:

            async def read() -> None:
                while await client.read_some():
                    pass

            nursery.start_soon(read)
            for start in range(0, count, 1000):
                await client.stream.send_all(b"".join(frames[start : start + 1000]))
            await trio.testing.wait_all_tasks_blocked(0.1)  # everything read and handled
            nursery.cancel_scope.cancel()
        return client, member


async def test_a_flood_of_joins_is_rate_limited_and_capped(daemon: RunningDaemon) -> None:
    """20 000 joins from one connection under the default limits (100 000 work the
    same and take ~15 s here: ~150 us a frame, mostly trio-websocket and wsproto)."""
    with trio.fail_after(60):
        client, member = await _flood_joins(daemon, 20_000)
        core = core_of(daemon)
        assert len(member.sessions) == core.limits.channels_per_member == 50
        assert len(core.sessions) == 50  # refused joins leave no empty sessions behind
        errors = [m["message"] for m in client.messages() if m["type"] == -1]
        assert 1 <= sum("slow down" in e for e in errors) <= 2  # one per 10 s, not per frame
        assert any("at most 50 channels" in e for e in errors)
        async with chat(daemon, "other") as other:  # the daemon is fine
            await other.join("#fresh")
            await other.send(6, channel="fresh")
            assert (await other.expect(6))["users"] == ["other"]


async def test_the_channel_cap_holds_when_every_join_is_handled(tmp_path: Path) -> None:
    with trio.fail_after(30):
        ws = {"request_rate": 1e6, "request_burst": 1_000_000}
        async with chat_daemon(tmp_path, ws=ws, community={"channels_per_member": 20}) as daemon:
            client, member = await _flood_joins(daemon, 3000)
            assert len(member.sessions) == 20
            answers = client.messages()
            assert sum(m["type"] == 4 for m in answers) == 20
            assert sum(m["type"] == -1 for m in answers) == 2980
            assert all("at most 20 channels" in m["message"] for m in answers if m["type"] == -1)
            assert len(core_of(daemon).sessions) == 20


async def test_a_member_that_never_reads_is_dropped_and_others_keep_chatting(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        ws = {"request_rate": 1e6, "request_burst": 1_000_000}
        community = {"chat_queue_size": 8}
        async with (
            chat_daemon(tmp_path, ws=ws, community=community) as daemon,
            chat(daemon, "alice") as alice,
            chat(daemon, "bob") as bob,
            open_websocket_url(chat_url(daemon, "slow")) as slow_ws,
        ):
            core = core_of(daemon)
            slow = Chat(slow_ws, "slow")
            await slow.join("#x")  # then it never reads again
            await alice.join("#x")
            await bob.join("#x")
            got = {"alice": 0, "bob": 0}

            async def reader(client: Chat) -> None:
                while True:
                    frame = await client.receive()
                    if frame["type"] == 0 and frame["user"] == "alice":
                        got[client.nick] += 1
                    else:
                        client.seen.append(frame)

            line = "m" * 8000
            sent = 0
            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader, alice)
                nursery.start_soon(reader, bob)
                while core.nick_taken("slow"):
                    assert sent < 2000, "the member that never reads was never dropped"
                    await alice.send(0, dest="x", message=line)
                    sent += 1
                    await trio.testing.wait_all_tasks_blocked()
                for _ in range(10):  # the others go on chatting
                    await alice.send(0, dest="x", message=line)
                    sent += 1
                while got["bob"] < sent or got["alice"] < sent:
                    await trio.testing.wait_all_tasks_blocked()
                nursery.cancel_scope.cancel()
            # what was held for it: its queue (8) plus the kernel's socket buffers
            assert sent * len(line) < 16 * MiB
            print(f"dropped after {sent} lines of {len(line)} bytes")
            left = await bob.expect(5, user="slow")
            assert "too slow" in left["reason"]
            await bob.expect(3, user="slow")
            await alice.expect(3, user="slow")
            assert [m.name for m in core.chat_members()] == ["alice", "bob"]
            assert len(core.find("x").members) == 2  # type: ignore[union-attr]

    with trio.fail_after(30), client_socket_leak_tolerated():
        await body()


async def test_a_channel_of_1000_members(tmp_path: Path) -> None:
    """1 000 members in one channel: 100 real WebSocket connections and 900 members
    held by the core directly (1 000 WebSocket logins in this one process would take
    minutes: every login and join is announced to everyone, ~1 M frames)."""
    sockets, in_core, lines = 100, 900, 20
    with trio.fail_after(60):
        community = {"default_max_users": 1000, "guest_logins_per_minute": sockets + 10}
        ws = {"max_connections_per_ip": sockets + 10}
        async with (
            chat_daemon(tmp_path, ws=ws, community=community) as daemon,
            trio.open_nursery() as nursery,
        ):
            core = core_of(daemon)
            inboxes: list[list[ChatEvent]] = []
            for i in range(in_core):
                inbox: list[ChatEvent] = []
                member = Member(f"r{i}", kind="room", deliver=Inbox(inbox))
                core.connect(member)
                core.join(member, "big")
                inboxes.append(inbox)
            raw: list[RawClient] = []

            async def member_on_socket(i: int, *, task_status: trio.TaskStatus[None]) -> None:
                async with RawClient.open(chat_url(daemon, f"m{i}")) as client:
                    raw.append(client)
                    join = json.dumps({"type": 4, "channel": "#big"})
                    await client.stream.send_all(client.proto.send(TextMessage(data=join)))
                    task_status.started()
                    while await client.read_some():
                        pass

            for i in range(sockets - 1):
                await nursery.start(member_on_socket, i)
            async with chat(daemon, "sender") as sender:
                await sender.join("#big")
                session = core.find("big")
                assert session is not None
                assert len(session.members) == 1000
                async with chat(daemon, "late") as late:
                    await late.send(4, channel="big")
                    assert "full" in await late.error()
                started = time.monotonic()
                for i in range(lines):
                    await sender.send(0, dest="big", message=f"line {i}")
                for i in range(lines):
                    await sender.expect(0, message=f"line {i}")
                await trio.testing.wait_all_tasks_blocked(0.05)
                elapsed = time.monotonic() - started
                for client in raw:
                    said = [m for m in client.messages() if m["type"] == 0]
                    assert [m["message"] for m in said] == [f"line {i}" for i in range(lines)]
                    check_frame(json.dumps(said[0]))
                for inbox in inboxes:
                    assert sum(e.kind == "message" for e in inbox) == lines
                event = core.history(session)[-1]
                assert isinstance(event.frames["chat"], str)  # encoded once for everyone
                print(f"{lines} lines to 1000 members in {elapsed:.2f} s")
            nursery.cancel_scope.cancel()

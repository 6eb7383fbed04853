"""Direct writes (leosuite.api.ws.fanout): a trio-websocket server on 127.0.0.1 whose
connection writes frames straight to its socket, and raw clients (wsproto over a bare
socket with a small receive buffer) that stop reading, ping, and close."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing
from trio_websocket import (
    WebSocketConnection,
    WebSocketRequest,
    open_websocket_url,
    serve_websocket,
)
from wsproto.events import CloseConnection, Ping, Pong, TextMessage

from leosuite.api.ws import fanout
from leosuite.api.ws.fanout import HandoffLock, Outbox, corked, flush_cork, text_frame
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.ws import RawClient

Handler = Callable[[WebSocketConnection], Awaitable[None]]


class Counted:
    sent = 0


def _message(n: int, size: int) -> bytes:
    return text_frame(json.dumps({"n": n, "pad": "x" * size}))


@asynccontextmanager
async def _server(handler: Handler) -> AsyncIterator[str]:
    """A trio-websocket server on port 0 running ``handler`` per connection; its URL."""

    async def accept(request: WebSocketRequest) -> None:
        await handler(await request.accept())

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, accept, "127.0.0.1", 0, None)
        yield f"ws://127.0.0.1:{server.port}/"
        nursery.cancel_scope.cancel()


async def test_a_handoff_lock_is_released_by_another_task_in_fifo_order() -> None:
    lock = HandoffLock()
    lock.acquire_nowait()  # taken here, released by a task below
    order: list[int] = []

    async def waiter(i: int) -> None:
        async with lock:
            order.append(i)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for i in range(3):
                nursery.start_soon(waiter, i)
                await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(_release, lock)
        assert order == [0, 1, 2]
        assert not lock.locked()
        try:
            lock.release()
        except RuntimeError:
            pass
        else:
            raise AssertionError("released a lock nobody holds")


async def _release(lock: HandoffLock) -> None:
    lock.release()


async def test_a_reader_that_stops_is_parked_then_gets_every_frame_whole_and_in_order() -> None:
    """Frames go out directly until the socket fills; the rest (the frame cut short
    first) waits in the bounded queue; one more is refused; once the peer reads, the
    writer sends what waited, in order, each frame whole."""
    full, done = trio.Event(), trio.Event()
    seen: dict[str, int] = {}

    async def handler(ws: WebSocketConnection) -> None:
        counted = Counted()
        outbox = Outbox(ws, 8, counted)
        assert outbox.direct
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outbox.run)
            n = 0
            while outbox.put_nowait(_message(n, 3_000)):
                n += 1
                assert n < 100_000, "the queue never filled"
            seen.update(refused=n, queued=len(outbox), direct=counted.sent, torn=outbox.torn)
            full.set()
            await outbox.put_and_wait(_message(n + 1, 10))  # after the peer has read
            seen["sent"] = counted.sent
            done.set()
            nursery.cancel_scope.cancel()
        await outbox.finish()
        await ws.aclose()

    with trio.fail_after(20):
        async with _server(handler) as url, RawClient.open(url, receive_buffer=4096) as client:
            await full.wait()
            assert seen["queued"] == 8
            assert seen["direct"] > 0  # the first frames went out without the writer
            while client.count() < seen["refused"] + 1:
                assert await client.read_some()
            await done.wait()
            numbers = [m["n"] for m in client.messages()]
            assert numbers == [*range(seen["refused"]), seen["refused"] + 1]
            assert all(len(m["pad"]) == 3_000 for m in client.messages()[:-1])
            assert seen["sent"] == seen["refused"] + 1


async def test_pings_and_the_close_fall_between_whole_frames() -> None:
    """While frames wait for a slow reader, the peer's pings are answered between
    whole frames, and the close frame comes after the last frame and nothing after it."""
    frames, size = 60, 20_000
    queued = trio.Event()

    async def handler(ws: WebSocketConnection) -> None:
        outbox = Outbox(ws, frames, Counted())
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outbox.run)
            for n in range(frames - 1):
                assert outbox.put_nowait(_message(n, size))
            queued.set()
            await outbox.put_and_wait(_message(frames - 1, size))
            nursery.cancel_scope.cancel()
        await outbox.finish()
        await ws.aclose(4000, "done")

    with trio.fail_after(20):
        async with _server(handler) as url, RawClient.open(url, receive_buffer=4096) as client:
            await queued.wait()
            pings = 0
            while True:
                if pings < 20:
                    pings += 1
                    await client.stream.send_all(client.proto.send(Ping(payload=bytes([pings]))))
                if not await client.read_some() or client.close_code() is not None:
                    break
            kinds = [type(e) for e in client.events if isinstance(e, TextMessage | Pong)]
            assert [m["n"] for m in client.messages()] == list(range(frames))
            assert kinds.count(Pong) == pings  # each answered, between the frames:
            assert kinds.index(Pong) < len(kinds) - 1 - kinds[::-1].index(TextMessage)
            closes = [i for i, e in enumerate(client.events) if isinstance(e, CloseConnection)]
            assert len(closes) == 1
            assert client.close_code() == 4000
            assert not any(isinstance(e, TextMessage) for e in client.events[closes[0] :])


async def test_a_peer_gone_mid_fanout_ends_its_connection_and_spares_the_others() -> None:
    """One of several connections resets while frames wait for it: its writer ends the
    connection (1006), the frames of the others keep coming, whole and in order."""
    lines, size, peers = 40, 50_000, 3
    outboxes: list[Outbox] = []
    ended: list[int | None] = []
    all_in, gone = trio.Event(), trio.Event()

    async def handler(ws: WebSocketConnection) -> None:
        outbox = Outbox(ws, lines + 1, Counted())
        outboxes.append(outbox)
        if len(outboxes) == peers:
            all_in.set()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(outbox.run)
                await trio.sleep_forever()
        except* Exception:
            ended.append(ws.closed.code if ws.closed else None)
        finally:
            await outbox.finish()

    async def fan_out() -> None:
        for n in range(lines):
            for outbox in list(outboxes):
                outbox.put_nowait(_message(n, size))
            if n == lines // 4:
                await gone.wait()  # the peer resets while its frames wait
            await trio.sleep(0)

    with trio.fail_after(30):
        async with (
            _server(handler) as url,
            RawClient.open(url) as first,
            RawClient.open(url) as second,
            RawClient.open(url, receive_buffer=4096) as leaver,
        ):
            await all_in.wait()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(fan_out)
                await trio.testing.wait_all_tasks_blocked()
                leaver.stream.socket.setsockopt(
                    trio.socket.SOL_SOCKET, trio.socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0"
                )
                await leaver.stream.aclose()  # a reset: unread data was waiting
                gone.set()
                for client in (first, second):
                    while client.count() < lines:
                        assert await client.read_some()
            for client in (first, second):
                assert [m["n"] for m in client.messages()] == list(range(lines))
            with trio.fail_after(5):
                while not ended:
                    await trio.sleep(0.01)
            assert ended == [1006]


@asynccontextmanager
async def _outboxes(
    count: int, limit: int, *, receive_buffer: int | None = None
) -> AsyncIterator[tuple[list[Outbox], list[RawClient]]]:
    """``count`` raw clients of a server whose connections each run an outbox's writer."""
    outboxes: list[Outbox] = []
    ready = trio.Event()

    async def handler(ws: WebSocketConnection) -> None:
        outbox = Outbox(ws, limit, Counted())
        assert outbox.direct
        outboxes.append(outbox)
        if len(outboxes) == count:
            ready.set()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(outbox.run)
                await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await outbox.finish()

    async with _server(handler) as url, contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(RawClient.open(url, receive_buffer=receive_buffer))
            for _ in range(count)
        ]
        await ready.wait()
        await trio.testing.wait_all_tasks_blocked()  # the writers wait for frames
        yield outboxes, clients


def _count_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The descriptor of every ``os.write`` the outboxes make, in order."""
    fds: list[int] = []
    real = os.write

    def write(fd: int, data: bytes | memoryview) -> int:
        fds.append(fd)
        return real(fd, data)

    monkeypatch.setattr(fanout.os, "write", write)
    return fds


async def _read(client: RawClient, count: int) -> list[int]:
    while client.count() < count:
        assert await client.read_some()
    return [m["n"] for m in client.messages()]


async def test_a_corked_block_writes_each_connection_once_at_its_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Five frames to each of two idle connections inside a block: none is written
    until the block ends, then each connection's five go out in one write, in order."""
    with trio.fail_after(20):
        async with _outboxes(2, 8) as (outboxes, clients):
            writes = _count_writes(monkeypatch)
            with corked():
                for n in range(5):
                    for outbox in outboxes:
                        assert outbox.put_nowait(_message(n, 100))
                assert [len(o) for o in outboxes] == [5, 5]
                assert [o.counters.sent for o in outboxes] == [0, 0]
                await trio.testing.wait_all_tasks_blocked()  # the writers stay asleep
                assert writes == []
            assert [len(o) for o in outboxes] == [0, 0]
            assert [o.counters.sent for o in outboxes] == [5, 5]
            assert len(writes) == 2
            assert len(set(writes)) == 2
            for client in clients:
                assert await _read(client, 5) == list(range(5))


async def test_another_tasks_frame_during_a_block_goes_behind_and_out_before_its_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the corking task's frames wait for its block: a frame from another task
    meanwhile queues behind them and all three go out, in order, before the block
    ends; a task outside any block writes directly as before."""
    with trio.fail_after(20):
        async with _outboxes(2, 8) as ((outbox, other), (client, other_client)):
            writes = _count_writes(monkeypatch)

            async def elsewhere() -> None:
                assert outbox.put_nowait(_message(2, 100))
                assert other.put_nowait(_message(0, 100))

            with corked():
                assert outbox.put_nowait(_message(0, 100))
                assert outbox.put_nowait(_message(1, 100))
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(elsewhere)
                await trio.testing.wait_all_tasks_blocked()
                assert len(outbox) == 0
                assert outbox.counters.sent == 3
                assert other.counters.sent == 1  # written directly by the other task
            assert len(writes) == 2  # the three in one write, the other's direct write
            assert await _read(client, 3) == [0, 1, 2]
            assert await _read(other_client, 1) == [0]


async def test_blocks_of_two_tasks_at_once_each_wait_for_their_own_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A block held open across an await does not uncork another task's block: the
    second task's frames still go out in one write at its own end; its frame to a
    connection the first block holds goes behind that block's, all in one write."""
    with trio.fail_after(20):
        async with _outboxes(2, 8) as ((held, free), (held_client, free_client)):
            writes = _count_writes(monkeypatch)
            first_open, second_done = trio.Event(), trio.Event()

            async def first() -> None:
                with corked():
                    assert held.put_nowait(_message(0, 100))
                    assert held.put_nowait(_message(1, 100))
                    first_open.set()
                    await second_done.wait()  # open across an await
                    assert held.counters.sent == 3  # the writer took all three already

            async def second() -> None:
                await first_open.wait()
                with corked():
                    for n in range(3):
                        assert free.put_nowait(_message(n, 100))
                    assert held.put_nowait(_message(2, 100))  # behind the first block's
                    await trio.testing.wait_all_tasks_blocked()
                    assert free.counters.sent == 0  # waits for this block's end
                    assert len(writes) == 1  # held's three, in one write
                assert free.counters.sent == 3
                second_done.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(first)
                nursery.start_soon(second)
            assert len(writes) == 2
            assert len(set(writes)) == 2
            assert await _read(held_client, 3) == [0, 1, 2]
            assert await _read(free_client, 3) == [0, 1, 2]


async def test_frames_from_another_task_never_find_the_queue_full_of_a_blocks_frames() -> None:
    """A block holds six frames for a reading connection whose queue takes eight; another
    task then gives it six more at once: the block's and the first go out at once, so
    none of the six is refused (the member is not taken for slow), all twelve in order."""
    with trio.fail_after(20):
        async with _outboxes(1, 8) as ((outbox,), (client,)):
            held, done = trio.Event(), trio.Event()

            async def block() -> None:
                with corked():
                    for n in range(6):
                        assert outbox.put_nowait(_message(n, 100))
                    held.set()
                    await done.wait()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(block)
                await held.wait()
                assert len(outbox) == 6
                accepted = [outbox.put_nowait(_message(n, 100)) for n in range(6, 12)]
                done.set()
            assert accepted == [True] * 6
            assert await _read(client, 12) == list(range(12))


async def test_messages_that_arrived_together_are_echoed_in_one_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Twelve messages in one TCP segment are handled as one burst: trio-websocket's
    reader hands over one or two at a time, and the burst lets it parse the rest before
    it ends, so all twelve go back in one write."""
    count = 12

    async def handler(ws: WebSocketConnection) -> None:
        await fanout.echo(ws)

    with trio.fail_after(20):
        async with _server(handler) as url, RawClient.open(url) as client:
            writes = _count_writes(monkeypatch)
            frames = [
                client.proto.send(TextMessage(data=json.dumps({"n": n}))) for n in range(count)
            ]
            await client.stream.send_all(b"".join(frames))
            assert await _read(client, count) == list(range(count))
            assert len(writes) == 1


async def test_a_corked_burst_the_socket_cannot_take_is_finished_by_the_writer() -> None:
    """A block's frames to a peer that does not read: its one write is cut short, the
    writer sends the rest once the peer reads, every frame whole and in order; the
    queue's bound still holds inside the block."""
    count, size = 30, 20_000
    with trio.fail_after(30):
        async with _outboxes(1, count, receive_buffer=4096) as ((outbox,), (client,)):
            with corked():
                for n in range(count):
                    assert outbox.put_nowait(_message(n, size))
                assert not outbox.put_nowait(_message(count, size))  # the bound
            assert outbox.counters.sent < count  # the write was cut short
            assert len(outbox) == count - outbox.counters.sent  # the rest waits
            assert await _read(client, count) == list(range(count))
            assert all(len(m["pad"]) == size for m in client.messages())
            await trio.testing.wait_all_tasks_blocked()
            assert len(outbox) == 0
            assert outbox.counters.sent == count


async def test_waiting_for_room_in_a_block_lets_the_writer_send_what_it_corked() -> None:
    """A block that fills a connection's queue with its own frames and then waits for
    room (an answer to its sender), or for a frame to be written, does not wait for
    itself: the writer sends them."""
    with trio.fail_after(10):
        async with _outboxes(1, 4) as ((outbox,), (client,)):
            with corked():
                for n in range(4):
                    assert outbox.put_nowait(_message(n, 100))
                await outbox.put(_message(4, 100))
            assert await _read(client, 5) == list(range(5))
            await trio.testing.wait_all_tasks_blocked()  # idle again
            with corked():
                await outbox.put_and_wait(_message(5, 100))  # not corked: it is waited for
            assert await _read(client, 6) == list(range(6))


async def test_a_block_never_refuses_a_frame_the_idle_socket_would_take() -> None:
    """A block's own frames filling the queue are written out first: a member that
    reads is not refused (and so not dropped as slow) because of a burst."""
    with trio.fail_after(10):
        async with _outboxes(1, 4) as ((outbox,), (client,)):
            with corked():
                assert all(outbox.put_nowait(_message(n, 100)) for n in range(10))
            assert await _read(client, 10) == list(range(10))


async def test_a_flushed_block_writes_what_it_holds_before_a_step_that_waits() -> None:
    """A burst whose second step waits (a password to check): what the first step
    sent goes out before the wait, and what follows is corked again."""
    go = trio.Event()
    with trio.fail_after(10):
        async with _outboxes(2, 8) as (outboxes, (first, second)):

            async def burst() -> None:
                with corked():
                    for outbox in outboxes:
                        assert outbox.put_nowait(_message(0, 100))
                    flush_cork()
                    await go.wait()
                    for outbox in outboxes:
                        assert outbox.put_nowait(_message(1, 100))
                    assert [len(o) for o in outboxes] == [1, 1]  # corked again

            async with trio.open_nursery() as nursery:
                nursery.start_soon(burst)
                assert await _read(first, 1) == [0]  # while the burst still waits
                assert await _read(second, 1) == [0]
                go.set()
            assert await _read(first, 2) == [0, 1]
            assert await _read(second, 2) == [0, 1]


async def test_the_echo_path_echoes_text_binary_and_big_messages(tmp_path: Path) -> None:
    """The conformance tests' echo goes through the same write path: text, binary and
    messages far bigger than the socket buffers come back whole, pings are answered."""
    big = "é" * 400_000
    settings = make_settings(tmp_path / "data", ws={"echo_path": True})
    with trio.fail_after(30):
        async with (
            running_daemon(settings) as daemon,
            open_websocket_url(daemon.endpoints.ws + "/echo") as ws,
        ):
            for message in ("hello", b"\x00\xff" * 10, big, b"x" * 300_000):
                await ws.send_message(message)
                await ws.ping(b"p")
                assert await ws.get_message() == message

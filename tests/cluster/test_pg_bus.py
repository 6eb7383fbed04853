"""The bus on a real PostgreSQL server: events reach the other node and not their
own, the size limit, hostile notifications on the channel, and a listening
connection that the server ends is opened again and tells its subscribers to
re-read (the latency is bench/cluster_events.py's to measure)."""

from __future__ import annotations

import psycopg
import pytest
import trio

from leosuite.cluster.bus import (
    BUFFER_OF_KIND,
    CHANNEL,
    MAX_PAYLOAD,
    SUBSCRIBER_BUFFER,
    ClusterEvent,
    LocalBus,
)
from leosuite.cluster.pg_bus import PgBus

#: Generous: these wait for a result, they do not time it.
DEADLINE = 10


async def _next(events: trio.MemoryReceiveChannel[ClusterEvent]) -> ClusterEvent:
    with trio.fail_after(DEADLINE):
        return await events.receive()


async def test_an_event_reaches_the_other_node_and_not_its_own(postgres_url: str) -> None:
    a, b = PgBus(postgres_url, "a"), PgBus(postgres_url, "b")
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        assert a.connected
        assert b.connected
        with a.subscribe("ban") as on_a, b.subscribe("ban") as on_b, b.subscribe("token") as tok:
            await a.publish("ban", {"id": 7, "address": "192.0.2.1"})
            await a.publish("token", {"hash": "x"})
            await b.publish("ban", {"id": 8})
            assert await _next(on_b) == ClusterEvent(
                kind="ban", node="a", data={"id": 7, "address": "192.0.2.1"}
            )
            assert await _next(tok) == ClusterEvent(kind="token", node="a", data={"hash": "x"})
            # a hears b's event and never its own.
            assert await _next(on_a) == ClusterEvent(kind="ban", node="b", data={"id": 8})
            await a.publish("ban", {"id": 9})
            await b.publish("ban", {"id": 10})
            assert (await _next(on_a)).data == {"id": 10}
            assert (await _next(on_b)).data == {"id": 9}
        nursery.cancel_scope.cancel()
    assert a.published == 3
    assert b.received == 3


async def test_events_from_one_node_arrive_in_order(postgres_url: str) -> None:
    a, b = PgBus(postgres_url, "a"), PgBus(postgres_url, "b")
    async with trio.open_nursery() as nursery:
        await nursery.start(b.run)
        with b.subscribe("chat") as events:
            for n in range(100):
                await a.publish("chat", {"n": n})
            assert [(await _next(events)).data["n"] for _ in range(100)] == list(range(100))
        await a.aclose()
        nursery.cancel_scope.cancel()


async def test_a_burst_of_chat_events_beyond_the_buffer_loses_none(postgres_url: str) -> None:
    """Chat messages must all arrive: a burst larger than another kind's buffer, read
    only after it was all sent, is kept whole for the chat's subscriber; a slow
    subscriber of another kind gets a resync in place of what did not fit, and the bus
    never waits for either."""
    b = PgBus(postgres_url, "b")
    count = 3 * SUBSCRIBER_BUFFER
    assert count <= BUFFER_OF_KIND["chat"]
    async with trio.open_nursery() as nursery:
        await nursery.start(b.run)
        with b.subscribe("chat") as chat, b.subscribe("ban") as bans:
            # One transaction: its notifications reach the listener all at once.
            sender = LocalBus("a")
            with psycopg.connect(postgres_url) as conn:
                for n in range(count):
                    for kind in ("chat", "ban"):
                        payload = sender.encode(kind, {"n": n}).decode()
                        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
            got = [(await _next(chat)).data.get("n") for _ in range(count)]
            assert got == list(range(count))
            seen = []
            while not (event := await _next(bans)).resync:
                seen.append(event.data["n"])
            assert seen == list(range(len(seen)))
            assert len(seen) < count
        assert b.dropped > 0
        nursery.cancel_scope.cancel()


async def test_the_largest_event_passes_and_a_larger_one_is_refused(postgres_url: str) -> None:
    a, b = PgBus(postgres_url, "a"), PgBus(postgres_url, "b")
    overhead = len(a.encode("chat", {"x": ""}))
    largest = {"x": "ü" * ((MAX_PAYLOAD - overhead) // 2)}
    async with trio.open_nursery() as nursery:
        await nursery.start(b.run)
        with b.subscribe("chat") as events:
            await a.publish("chat", largest)
            with pytest.raises(ValueError, match="exceeds"):
                await a.publish("chat", {"x": "y" * MAX_PAYLOAD})
            assert (await _next(events)).data == largest
        await a.aclose()
        nursery.cancel_scope.cancel()
    assert a.published == 1


async def test_hostile_notifications_on_the_channel_are_ignored(postgres_url: str) -> None:
    b = PgBus(postgres_url, "b")
    async with trio.open_nursery() as nursery:
        await nursery.start(b.run)
        with b.subscribe("ban") as events:
            hostile = [
                "not json",
                "",
                '{"kind": "ban"}',
                '{"kind": 1, "node": "x", "data": {}}',
                '{"kind": "ban", "node": "x", "data": []}',
                "[" * 5000,
                '{"kind": "ban", "node": "", "data": {"resync": "yes"}}',
            ]
            with psycopg.connect(postgres_url, autocommit=True) as conn:
                for payload in hostile:
                    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                conn.execute("SELECT pg_notify('other_channel', 'x')")
                conn.execute(
                    "SELECT pg_notify(%s, %s)",
                    (CHANNEL, '{"kind": "ban", "node": "x", "data": {"ok": true}}'),
                )
            # The string "yes" is no resync; the valid one after the garbage arrives.
            got = await _next(events)
            assert got.data == {"resync": "yes"}
            assert not got.resync
            assert await _next(events) == ClusterEvent(kind="ban", node="x", data={"ok": True})
        assert b.connected
        assert b.reconnects == 0
        nursery.cancel_scope.cancel()


async def test_a_listening_connection_ended_by_the_server_comes_back_with_a_resync(
    postgres_url: str,
) -> None:
    a, b = PgBus(postgres_url, "a"), PgBus(postgres_url, "b")
    async with trio.open_nursery() as nursery:
        await nursery.start(b.run)
        with b.subscribe("ban") as events:
            pid = b.listen_pid
            assert pid is not None
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            resync = await _next(events)
            assert resync == ClusterEvent(kind="ban", node="", data={"resync": True})
            assert b.reconnects == 1
            assert b.connected
            assert b.listen_pid not in (None, pid)
            await a.publish("ban", {"after": True})
            assert (await _next(events)).data == {"after": True}
        await a.aclose()
        nursery.cancel_scope.cancel()


async def test_a_publishing_connection_ended_by_the_server_is_opened_again(
    postgres_url: str,
) -> None:
    a, b = PgBus(postgres_url, "a"), PgBus(postgres_url, "b")
    async with trio.open_nursery() as nursery:
        await nursery.start(b.run)
        with b.subscribe("ban") as events:
            await a.publish("ban", {"n": 1})
            assert (await _next(events)).data == {"n": 1}
            pid = a.publisher_pid
            assert pid is not None
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            await a.publish("ban", {"n": 2})
            assert (await _next(events)).data == {"n": 2}
            assert a.publish_failures == 0
        await a.aclose()
        nursery.cancel_scope.cancel()


async def test_a_store_that_cannot_be_reached_does_not_hold_up_the_start() -> None:
    b = PgBus("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2", "b")
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            await nursery.start(b.run)
            assert not b.connected
            await b.publish("ban", {"n": 1})  # logged and dropped, never raised
            assert b.publish_failures == 1
            nursery.cancel_scope.cancel()


async def test_an_idle_listening_connection_is_checked_and_keeps_listening(
    postgres_url: str,
) -> None:
    a, b = PgBus(postgres_url, "a"), PgBus(postgres_url, "b", ping_interval=0.01)
    async with trio.open_nursery() as nursery:
        await nursery.start(b.run)
        with b.subscribe("ban") as events, trio.fail_after(DEADLINE):
            while b.pings < 3:
                await trio.sleep(0.01)
            for n in range(20):  # some arrive while a check runs
                await a.publish("ban", {"n": n})
            assert [(await _next(events)).data["n"] for _ in range(20)] == list(range(20))
        assert b.reconnects == 0
        await a.aclose()
        nursery.cancel_scope.cancel()

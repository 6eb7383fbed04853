"""The chat relay over a real PostgreSQL bus: chat cores of nodes "a" and "b" in this
process, each with its own listening and publishing connection, as two daemons have.
Every message from each member reaches every member in order per sender, a message
at the size limit crosses in parts, and hostile notifications sent straight to the
channel (not JSON, not a relay message, a channel nobody is in) are dropped while
delivery goes on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import psycopg
import trio

from leosuite.cluster.bus import CHANNEL
from leosuite.cluster.chat_relay import ChatRelay, run_chat_relay
from leosuite.cluster.pg_bus import PgBus
from leosuite.community.core import ChatCore
from leosuite.community.models import ChatLimits, Member
from tests.helpers.chat_relay import Inbox

#: Generous: these wait for a result, they do not time it.
DEADLINE = 20


class PgNode:
    def __init__(self, url: str, name: str) -> None:
        self.bus = PgBus(url, name)
        self.core = ChatCore(ChatLimits(), lambda: 1000.0)
        self.relay: ChatRelay | None = None

    def connect(self, nick: str) -> tuple[Member, Inbox]:
        inbox = Inbox()
        member = Member(nick, ip="10.0.0.1", deliver=inbox.deliver, disconnect=inbox.disconnect)
        self.core.connect(member)
        return member, inbox


@asynccontextmanager
async def pg_nodes(url: str, *names: str) -> AsyncIterator[list[PgNode]]:
    nodes = [PgNode(url, name) for name in names]
    async with trio.open_nursery() as nursery:
        for node in nodes:
            await nursery.start(node.bus.run)
            node.relay = await nursery.start(run_chat_relay, node.core, node.bus, lambda: 1000.0)
        yield nodes
        nursery.cancel_scope.cancel()
    for node in nodes:
        await node.bus.aclose()


async def until(condition: Callable[[], bool]) -> None:
    with trio.fail_after(DEADLINE):
        while not condition():
            await trio.sleep(0.02)


async def test_members_on_two_nodes_get_every_message_in_order(postgres_url: str) -> None:
    async with pg_nodes(postgres_url, "a", "b") as (a, b):
        alice, alice_in = a.connect("alice")
        bob, bob_in = b.connect("bob")
        a.core.join(alice, "dev")
        b.core.join(bob, "dev")
        await until(lambda: b.core.peers.names(b.core.find("dev")) == ["alice"])  # type: ignore[arg-type]
        await until(lambda: a.core.peers.names(a.core.find("dev")) == ["bob"])  # type: ignore[arg-type]
        a_dev, b_dev = a.core.find("dev"), b.core.find("dev")
        assert a_dev is not None
        assert b_dev is not None
        big = "é" * (a.core.limits.message_max_bytes // 2)  # at the size limit, in bytes
        for i in range(100):
            a.core.say(alice, a_dev, f"a{i}")
            b.core.say(bob, b_dev, f"b{i}")
            if i == 50:
                a.core.say(alice, a_dev, big)
            await trio.lowlevel.checkpoint()
        want_a = [f"a{i}" for i in range(51)] + [big] + [f"a{i}" for i in range(51, 100)]
        want_b = [f"b{i}" for i in range(100)]
        for inbox in (alice_in, bob_in):
            await until(lambda inbox=inbox: len(inbox.of("message")) == 201)  # type: ignore[misc]
            got = inbox.of("message")
            assert [t for u, t in got if u == "alice"] == want_a
            assert [t for u, t in got if u == "bob"] == want_b
        # Bob leaves on b: alice sees it on a.
        b.core.leave(bob, b_dev)
        await until(lambda: alice_in.of("leave") == [("bob", "left")])
        assert a.core.peers.names(a_dev) == []


async def test_hostile_notifications_are_dropped_and_delivery_goes_on(postgres_url: str) -> None:
    async with pg_nodes(postgres_url, "a", "b") as (a, b):
        alice, alice_in = a.connect("alice")
        bob, _ = b.connect("bob")
        a.core.join(alice, "dev")
        b.core.join(bob, "dev")
        await until(lambda: a.core.peers.names(a.core.find("dev")) == ["bob"])  # type: ignore[arg-type]
        hostile = [
            "not json",
            '{"kind": "chat", "node": "x"}',
            '{"kind": "chat", "node": "x", "data": {"op": "say"}}',
            '{"kind": "chat", "node": "x", "data": {"op": "say", "e": "1", "s": 1, "n": "eve",'
            ' "c": "nowhere", "t": "hi"}}',
            '{"kind": "chat", "node": "x", "data": {"op": "part", "e": "1", "s": 1, "i": 1,'
            ' "k": 2, "b": "%%%%"}}',
            '{"kind": "chat", "node": "x", "data": [1, 2]}',
        ]

        def notify() -> None:
            with psycopg.connect(postgres_url, autocommit=True) as conn:
                for payload in hostile:
                    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))

        await trio.to_thread.run_sync(notify)
        b_dev = b.core.find("dev")
        assert b_dev is not None
        b.core.say(bob, b_dev, "still here")
        await until(lambda: alice_in.of("message") == [("bob", "still here")])
        assert a.relay is not None
        assert a.relay.dropped >= 2
        assert a.core.find("nowhere") is None

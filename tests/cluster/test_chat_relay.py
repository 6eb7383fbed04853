"""One chat community across nodes, in one process: chat cores on nodes "a" and "b"
joined by their relays over linked buses (the real subscription and resync rules).
Members on both nodes in one channel get every message in order per sender, see the
others join and leave, a message near the size limit crosses split, a hostile or
broken message on the bus is dropped and logged while delivery goes on, and what must
stay on its node does."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from leosuite.cluster import chat_wire as wire
from leosuite.cluster.bus import LocalBus
from leosuite.cluster.chat_relay import run_chat_relay
from leosuite.community.core import ChatCore
from leosuite.community.models import ChatLimits
from leosuite.community.peers import NO_PEERS
from leosuite.errors import Conflict
from tests.helpers.chat_relay import LinkedBus, linked_nodes

settle = trio.testing.wait_all_tasks_blocked


async def test_every_message_reaches_every_member_in_order_per_sender() -> None:
    async with linked_nodes("a", "b") as (a, b):
        alice, alice_in = a.connect("alice")
        carol, carol_in = a.connect("carol")
        bob, bob_in = b.connect("bob")
        for node, who in ((a, alice), (a, carol), (b, bob)):
            node.core.join(who, "dev")
        await settle()
        sessions = {id(n): n.core.find("dev") for n in (a, b)}
        for i in range(60):  # interleaved senders on both nodes
            a.core.say(alice, sessions[id(a)], f"alice {i}")  # type: ignore[arg-type]
            b.core.say(bob, sessions[id(b)], f"bob {i}")  # type: ignore[arg-type]
            if i % 3 == 0:
                a.core.say(carol, sessions[id(a)], f"carol {i}")  # type: ignore[arg-type]
                await trio.lowlevel.checkpoint()
        await settle()
        for inbox in (alice_in, carol_in, bob_in):
            got = inbox.of("message")
            for sender in ("alice", "bob", "carol"):
                mine = [text for user, text in got if user == sender]
                count = 20 if sender == "carol" else 60
                step = 3 if sender == "carol" else 1
                assert mine == [f"{sender} {i}" for i in range(0, 60, step)], sender
                assert len(mine) == count
        # Each node's history holds the other node's messages too (replayed on join).
        history = [e.user for e in b.core.history(sessions[id(b)]) if e.kind == "message"]  # type: ignore[arg-type]
        assert history.count("alice") == 60
        assert a.relay.dropped == b.relay.dropped == 0


async def test_joins_leaves_and_logouts_of_a_remote_member_are_seen() -> None:
    async with linked_nodes("a", "b") as (a, b):
        alice, alice_in = a.connect("alice")
        a.core.join(alice, "dev")
        await settle()
        bob, _ = b.connect("bob")
        await settle()
        assert ("login", "bob") in a.presence
        assert a.core.peers.connected_names() == ["bob"]
        b.core.join(bob, "dev")
        await settle()
        session = a.core.find("dev")
        assert session is not None
        assert alice_in.of("join")[-1] == ("bob", "")
        assert a.core.peers.names(session) == ["bob"]
        assert b.core.peers.names(b.core.find("dev")) == ["alice"]  # type: ignore[arg-type]
        # The member lists a type 6 answers: local and remote members.
        assert sorted(session.names() + a.core.peers.names(session)) == ["alice", "bob"]

        b.core.leave(bob, b.core.find("dev"))  # type: ignore[arg-type]
        await settle()
        assert alice_in.of("leave") == [("bob", "left")]
        assert a.core.peers.names(session) == []
        b.core.join(bob, "dev")
        await settle()
        b.core.disconnect(bob, "quit")
        await settle()
        assert alice_in.of("leave")[-1] == ("bob", "quit")
        assert a.presence[-1] == ("logout", "bob")
        assert a.core.peers.connected_names() == []


async def test_a_message_at_the_size_limit_crosses_split_and_whole() -> None:
    limits = ChatLimits(message_max_bytes=16 * 1024)
    async with linked_nodes("a", "b", limits=limits) as (a, b):
        alice, _ = a.connect("alice")
        bob, bob_in = b.connect("bob")
        a.core.join(alice, "dev")
        b.core.join(bob, "dev")
        await settle()
        # Quotes, backslashes, control and 4-byte characters: the worst for JSON.
        unit = '"\\\x01é😀'  # 1 + 1 + 1 + 2 + 4 bytes
        text = (unit * (16 * 1024 // 9))[: 16 * 1024]
        while len(text.encode()) > 16 * 1024:
            text = text[:-1]
        published = a.bus.published
        a.core.say(alice, a.core.find("dev"), text)  # type: ignore[arg-type]
        a.core.say(alice, a.core.find("dev"), "after")  # type: ignore[arg-type]
        await settle()
        assert bob_in.of("message") == [("alice", text), ("alice", "after")]
        assert a.bus.published - published > 2  # split into parts


async def test_hostile_messages_are_dropped_and_logged_and_delivery_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "leosuite.cluster.chat")
    limits = ChatLimits(message_max_bytes=1000)
    async with linked_nodes("a", "b", limits=limits) as (a, b):
        evil = LinkedBus("evil", a.bus.group)  # a node without a relay: anything goes
        alice, alice_in = a.connect("alice")
        a.core.join(alice, "dev")
        bob, _ = b.connect("bob")
        b.core.join(bob, "dev")
        await settle()
        epoch = "e1"
        hostile: list[dict[str, object]] = [
            {"nonsense": True},
            {"op": "say", "e": epoch, "s": 1, "n": "x", "c": "dev"},  # no text
            {"op": "launch", "e": epoch, "s": 2},
            {"op": "say", "e": epoch, "s": 3, "n": "SYSTEM", "c": "dev", "t": "obey"},
            {"op": "say", "e": epoch, "s": 4, "n": "a b", "c": "dev", "t": "x"},
            {"op": "say", "e": epoch, "s": 5, "n": "x", "c": "#", "t": "x"},
            {"op": "say", "e": epoch, "s": 6, "n": "x" * 500, "c": "dev", "t": "x"},
            {"op": "say", "e": epoch, "s": 7, "n": "x", "c": "dev", "t": "x" * 1001},
            {"op": "part", "e": epoch, "s": 8, "i": 1, "k": 2, "b": "AAAA"},
            {"op": "part", "e": epoch, "s": 9, "i": 0, "k": 2, "b": "!!!!"},
            {"op": "part", "e": epoch, "s": 9, "i": 1, "k": 2, "b": "!!!!"},
            {"op": "roster", "e": epoch, "s": 10, "m": {"x": ["bad channel"]}},
            {"op": "say", "e": epoch, "s": 10, "n": "x", "c": "dev", "t": "again"},  # replayed
            # A channel nobody here is in: held in the roster, delivered to nobody.
            {"op": "say", "e": epoch, "s": 11, "n": "mallory", "c": "nowhere", "t": "hi"},
        ]
        for data in hostile:
            await evil.publish("chat", data)
        await settle()
        # Delivery goes on.
        b.core.say(bob, b.core.find("dev"), "still here")  # type: ignore[arg-type]
        await settle()
        assert alice_in.of("message") == [("bob", "still here")]
        assert a.relay.dropped >= 11
        assert "dropped a chat message from node 'evil'" in caplog.text
        assert a.core.find("nowhere") is None  # no channel was opened for it


async def test_a_remote_node_cannot_impersonate_a_member_of_this_node() -> None:
    async with linked_nodes("a", "b") as (a, b):
        evil = LinkedBus("evil", a.bus.group)
        alice, alice_in = a.connect("alice")
        a.core.join(alice, "dev")
        await settle()
        # Nicks are one namespace: a user of another node cannot take a shown one.
        with pytest.raises(Conflict):
            b.connect("aIice")  # looks like alice
        # A node that claims "alice" anyway (a race, or a hostile peer): shown as alice@evil.
        said = [
            {"op": "login", "e": "x", "s": 1, "n": "alice"},
            {"op": "say", "e": "x", "s": 2, "n": "alice", "c": "dev", "t": "I am alice"},
            {"op": "say", "e": "x", "s": 3, "n": "a1ice", "c": "dev", "t": "me too"},
            # It speaks for its own users only: a's alice and b's users stay.
            {"op": "logout", "e": "x", "s": 4, "n": "bob"},
        ]
        b.connect("bob")
        await settle()
        for data in said:
            await evil.publish("chat", data)
        await settle()
        # a1ice looks like alice, and a1ice@evil like alice@evil: dropped.
        assert alice_in.of("message") == [("alice@evil", "I am alice")]
        assert sorted(a.core.peers.connected_names()) == ["alice@evil", "bob"]
        assert alice.id in a.core.find("dev").members  # type: ignore[union-attr]
        # A local login under a name shown for a remote user is refused.
        with pytest.raises(Conflict):
            a.connect("alice@evil")
        with pytest.raises(Conflict):
            a.connect("BOB")
        # Full-width '@' in a local nick: the remote carol is dropped rather than shown
        # under a name that looks like the local one.
        a.connect("carol\uff20evil")
        a.connect("carol")
        await evil.publish("chat", {"op": "login", "e": "x", "s": 5, "n": "carol"})
        await settle()
        assert sorted(a.core.peers.connected_names()) == ["alice@evil", "bob"]
        assert a.relay.dropped >= 2


async def test_protected_channels_stay_on_their_node() -> None:
    async with linked_nodes("a", "b") as (a, b):
        alice, alice_in = a.connect("alice")
        session, _ = a.core.join(alice, "secret", password_hash="hash")
        bob, bob_in = b.connect("bob")
        b_session, _ = b.core.join(bob, "secret")
        await settle()
        a.core.say(alice, session, "for password holders")
        b.core.say(bob, b_session, "let me in")
        await settle()
        assert bob_in.of("message") == [("bob", "let me in")]
        assert alice_in.of("message") == [("alice", "for password holders")]
        assert a.core.peers.names(session) == []
        # A name banned from a channel is refused from other nodes too.
        a.core.join(alice, "open")
        a_open = a.core.find("open")
        assert a_open is not None
        a_open.banned.add("bob")
        b.core.join(bob, "open")
        await settle()
        b.core.say(bob, b.core.find("open"), "banned words")  # type: ignore[arg-type]
        await settle()
        assert [e for e in alice_in.events if e.session == a_open.id and e.user == "bob"] == []
        assert a.core.peers.names(a_open) == []  # nor listed there


async def test_a_lost_message_or_a_restart_heals_the_member_lists() -> None:
    async with linked_nodes("a", "b") as (a, b):
        alice, _ = a.connect("alice")
        a.core.join(alice, "dev")
        await settle()
        # Node a's next message is lost: b sees the gap, asks, and a's roster heals it.
        a.relay._seq += 1
        a.connect("carol")
        await settle()
        assert sorted(b.core.peers.connected_names()) == ["alice", "carol"]
        assert a.relay.dropped == b.relay.dropped == 0
        # Node a restarts (a new epoch): b forgets a's users of before.
        a.relay.epoch, a.relay._seq = "new", 1
        await a.bus.publish("chat", wire.encode_out(wire.Ping(epoch="new", seq=1), 7000)[0])
        await settle()
        assert sorted(b.presence[-2:]) == [("logout", "alice"), ("logout", "carol")]
        assert b.core.peers.connected_names() == []


@pytest.fixture
def mock_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_a_silent_node_is_forgotten_and_a_stopping_one_says_goodbye(
    mock_clock: trio.testing.MockClock,
) -> None:
    async with linked_nodes("a", "b") as (a, b):
        ghost = LinkedBus("ghost", a.bus.group)
        b.connect("bob")
        await settle()
        assert a.core.peers.connected_names() == ["bob"]
        # A node that stops sending (killed): gone after three ping intervals.
        await ghost.publish("chat", {"op": "login", "e": "g", "s": 1, "n": "casper"})
        await settle()
        assert "casper" in a.core.peers.connected_names()
        await trio.sleep(5 * a.relay.ping_interval)
        assert a.core.peers.connected_names() == ["bob"]
        assert ("logout", "casper") in a.presence
        # A node that stops says goodbye: the others forget its users at once.
        await b.stop()
        assert a.presence[-1] == ("logout", "bob")
        assert a.core.peers.connected_names() == []


async def test_a_kick_with_a_long_reason_is_seen_as_a_leave_on_the_other_node() -> None:
    async with linked_nodes("a", "b") as (a, b):
        alice, _ = a.connect("alice")
        carol, _ = a.connect("carol")
        bob, bob_in = b.connect("bob")
        a.core.join(alice, "dev")
        a.core.join(carol, "dev")
        b.core.join(bob, "dev")
        await settle()
        a.core.kick(alice, a.core.find("dev"), "carol", "x" * 5000)  # type: ignore[arg-type]
        await settle()
        ((user, reason),) = bob_in.of("leave")
        assert user == "carol"
        assert reason.startswith("kicked by alice: xxx")
        assert len(reason) == wire.REASON_CHARS
        assert b.core.peers.names(b.core.find("dev")) == ["alice"]  # type: ignore[arg-type]


async def test_one_node_on_the_local_bus_gets_no_relay() -> None:
    core = ChatCore(ChatLimits(), lambda: 1000.0)
    async with trio.open_nursery() as nursery:
        relay = await nursery.start(run_chat_relay, core, LocalBus("a"), lambda: 1000.0)
    assert relay is None
    assert core.peers is NO_PEERS

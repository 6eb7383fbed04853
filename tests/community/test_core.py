from __future__ import annotations

import tracemalloc

import pytest

from leosuite.community.chat_protocol import event_frame
from leosuite.community.core import ChatCore
from leosuite.community.models import (
    AuditRecord,
    ChatEvent,
    ChatLimits,
    Member,
    normalize_channel,
    validate_nick,
)
from leosuite.errors import Conflict, InvalidInput, NotFound, PermissionDenied, TooLarge


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Box:
    """A member's inbox: a bounded queue, like a connection's outbound queue."""

    def __init__(self, capacity: int = 1000) -> None:
        self.events: list[ChatEvent] = []
        self.capacity = capacity
        self.closed: str | None = None

    def deliver(self, event: ChatEvent) -> bool:
        if len(self.events) >= self.capacity:
            return False
        self.events.append(event)
        return True

    def disconnect(self, reason: str) -> None:
        self.closed = reason

    def kinds(self) -> list[tuple[str, str]]:
        return [(e.kind, e.user) for e in self.events]


def make(limits: ChatLimits | None = None) -> tuple[ChatCore, list[AuditRecord], Clock]:
    records: list[AuditRecord] = []
    clock = Clock()
    return ChatCore(limits or ChatLimits(), clock, on_audit=records.append), records, clock


def member(core: ChatCore, name: str, box: Box | None = None, **kw: object) -> tuple[Member, Box]:
    box = box or Box()
    m = Member(name, deliver=box.deliver, disconnect=box.disconnect, ip="10.0.0.1", **kw)  # type: ignore[arg-type]
    core.connect(m)
    return m, box


def test_nick_and_channel_rules() -> None:
    assert validate_nick("alice_1") == "alice_1"
    for bad in ["", "a" * 33, "with space", "a/b", "#x", "tab\t", "SYSTEM"]:
        with pytest.raises(InvalidInput):
            validate_nick(bad)
    assert normalize_channel("##django") == "django"
    for bad in ["#", "", "a b", "x" * 65, "ctl\x01"]:
        with pytest.raises(InvalidInput):
            normalize_channel(bad)


def test_join_say_leave_fan_out_and_history() -> None:
    core, records, _ = make()
    alice, abox = member(core, "alice")
    bob, bbox = member(core, "bob")
    session, created = core.join(alice, "#games")
    assert created
    assert session.name == "games"
    assert core.join(bob, "games") == (session, False)
    assert abox.kinds() == [("join", "alice"), ("join", "bob")]
    assert bbox.kinds() == [("join", "bob")]  # the joiner sees its own join
    event = core.say(alice, session, "hello")
    assert event.id == 1
    assert [e.text for e in bbox.events if e.kind == "message"] == ["hello"]
    assert [e.id for e in core.history(session)] == [1]
    core.leave(bob, session)
    assert bbox.events[-1].kind == "leave"  # the leaver is told too
    assert abox.events[-1].kind == "leave"
    assert {r.topic for r in records} >= {"Join", "Leave", "Status"}
    core.leave(alice, session)
    assert core.find("games") is None  # not persistent, no room: gone with its last member


def test_a_disconnected_member_cannot_join() -> None:
    """A member the core has forgotten (logged out, kicked, its connection gone) joins
    nothing: it would stay in the channel with no one to take it out."""
    core, _, _ = make()
    alice, _ = member(core, "alice")
    core.join(alice, "#games")
    core.disconnect(alice, "logged out")
    with pytest.raises(Conflict, match="no longer connected"):
        core.join(alice, "#games")
    with pytest.raises(Conflict, match="no longer connected"):
        core.join(alice, "#other")
    assert core.find("games") is None
    assert core.find("other") is None


def test_nick_unique_and_guests() -> None:
    core, _, _ = make(ChatLimits(allow_guests=False))
    with pytest.raises(PermissionDenied):
        member(core, "guest")
    member(core, "carol", account_id=3)
    with pytest.raises(Conflict):
        member(core, "CAROL", account_id=4)


def test_messages_need_membership_and_size_and_no_mute() -> None:
    core, records, _ = make(ChatLimits(message_max_bytes=10))
    alice, _ = member(core, "alice")
    bob, _ = member(core, "bob")
    session, _ = core.join(alice, "x")
    with pytest.raises(Conflict):
        core.say(bob, session, "hi")
    core.join(bob, "x")
    with pytest.raises(TooLarge):
        core.say(bob, session, "y" * 11)
    core.set_flag(alice, session, "bob", "mute")
    with pytest.raises(PermissionDenied):
        core.say(bob, session, "hi")
    with pytest.raises(PermissionDenied):  # bob is no operator
        core.set_flag(bob, session, "alice", "mute")
    assert {"RuleBreak", "BadData", "Mute"} <= {r.topic for r in records}


def test_direct_message_reaches_only_the_two() -> None:
    core, _, _ = make()
    a, abox = member(core, "a")
    b, bbox = member(core, "b")
    c, cbox = member(core, "c")
    session, _ = core.join(a, "room")
    core.join(b, "room")
    core.join(c, "room")
    core.say(a, session, "psst", to="b")
    assert [e.text for e in bbox.events if e.kind == "message"] == ["psst"]
    assert [e.text for e in abox.events if e.kind == "message"] == ["psst"]
    assert [e for e in cbox.events if e.kind == "message"] == []
    with pytest.raises(NotFound):
        core.say(a, session, "x", to="nobody")


def test_kick_ban_op() -> None:
    core, records, _ = make()
    a, _ = member(core, "a")
    b, bbox = member(core, "b")
    session, _ = core.join(a, "r")
    core.join(b, "r")
    core.kick(a, session, "b", "spam")
    assert b.id not in session.members
    assert bbox.events[-1].kind == "leave"
    assert "kicked by a" in bbox.events[-1].reason
    core.join(b, "r")
    core.ban(a, session, "b")
    with pytest.raises(PermissionDenied):
        core.join(b, "r")
    core.unban(a, session, "B")
    core.join(b, "r")
    core.set_flag(a, session, "b", "op")
    assert core.is_op(b, session)
    assert {"Kick", "Ban", "Unban", "Op"} <= {r.topic for r in records}


def test_slow_member_is_disconnected_and_others_told() -> None:
    core, _, _ = make()
    a, abox = member(core, "a")
    slow, sbox = member(core, "slow", Box(capacity=2))
    session, _ = core.join(a, "r")
    core.join(slow, "r")
    for i in range(3):
        core.say(a, session, f"m{i}")
    assert sbox.closed is not None
    assert "slow" in sbox.closed
    assert slow.id not in session.members
    assert ("leave", "slow") in abox.kinds()
    assert not core.nick_taken("slow")


def test_limits() -> None:
    core, _, clock = make(ChatLimits(session_count_limit=1, session_size_limit=8000))
    a, _ = member(core, "a")
    session, _ = core.join(a, "one")
    with pytest.raises(Conflict):
        core.join(a, "two")
    for i in range(20):
        core.say(a, session, f"message {i}")
    assert session.size <= 8000
    kept = core.history(session)
    assert kept[-1].text == "message 19"
    assert 0 < len(kept) < 20
    session.max_user_count = 1
    b, _ = member(core, "b")
    with pytest.raises(Conflict):
        core.join(b, "one")
    core.update_limits(ChatLimits(idle_time_limit=60))
    clock.t += 61
    assert core.idle_sessions() == [session]


def test_close_tells_members_and_forgets() -> None:
    core, _, _ = make()
    a, abox = member(core, "a")
    session, _ = core.join(a, "r")
    core.close(session, "maintenance")
    assert abox.events[-1].kind == "closed"
    assert core.find("r") is None
    assert a.sessions == {}


def test_disconnect_leaves_everything() -> None:
    core, _, _ = make()
    a, abox = member(core, "a")
    b, bbox = member(core, "b")
    core.join(a, "r1")
    core.join(a, "r2")
    core.join(b, "r1")
    core.disconnect(a, "quit")
    assert abox.closed == "quit"
    assert ("leave", "a") in bbox.kinds()
    assert core.find("r2") is None
    assert not core.nick_taken("a")


def test_operators_and_mutes_are_identities_not_names() -> None:
    core, _, _ = make()
    carl, _ = member(core, "carl")
    erin, _ = member(core, "erin", account_id=7)
    session, _ = core.join(carl, "lobby")  # the founding guest: op, as this connection
    core.join(erin, "lobby")
    core.set_flag(carl, session, "erin", "op")
    assert session.ops == {f"guest:{carl.id}", "account:7"}
    core.set_flag(erin, session, "carl", "mute")
    assert session.is_muted(carl)
    core.disconnect(carl, "quit")  # a guest's rights end with its connection
    assert session.ops == {"account:7"}
    assert not session.muted
    again, _ = member(core, "carl")  # another guest under the same name: nobody
    core.join(again, "lobby")
    assert not core.is_op(again, session)
    with pytest.raises(PermissionDenied):
        core.kick(again, session, "erin")
    core.disconnect(erin, "quit")  # an account's rights wait for it
    back, _ = member(core, "erin", account_id=7)
    core.join(back, "lobby")
    assert core.is_op(back, session)


def test_a_registering_guest_keeps_its_rights_as_the_account() -> None:
    core, _, _ = make()
    dora, _ = member(core, "dora")
    session, _ = core.join(dora, "den")
    core.become_account(dora, 9)
    assert session.ops == {"account:9"}
    assert core.is_op(dora, session)


def test_look_alike_nicks_cannot_be_connected_at_once() -> None:
    core, _, _ = make()
    bob, _ = member(core, "bob")
    for nick in ("BOB", "b0b", "b\u043eb"):
        with pytest.raises(Conflict):
            member(core, nick)
    core.disconnect(bob, "quit")
    member(core, "b0b")
    assert core.nick_taken("bob")
    assert [m.name for m in core.chat_members()] == ["b0b"]


def test_a_session_size_limit_bounds_the_memory_its_history_takes() -> None:
    """``session_size_limit`` counts what a stored message costs in memory (the event,
    its cached frames), not only its text: 20 000 short lines in a 1 MiB session keep
    the history's memory near 1 MiB."""
    limit = 1 << 20
    core, _, _ = make(ChatLimits(session_size_limit=limit))
    a, box = member(core, "a")
    session, _ = core.join(a, "kept")
    session.preserve_chat = True
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(20_000):
            event = core.say(a, session, f"line {i} of a long soak")
            event_frame(event)
            event_frame(event, history=True)
            box.events.clear()  # read: only the history holds the event now
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert session.size <= limit
    assert held < 1.5 * limit, f"{held} bytes held for a {limit}-byte session"

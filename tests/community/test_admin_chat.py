"""An administrator's seat in a session's chat: what is recorded, offsets, the cap,
the timeout, and the end of the chat with its session (no I/O)."""

from __future__ import annotations

import pytest

from leosuite.community import admin_chat
from leosuite.community.admin_chat import AdminChats
from leosuite.community.core import ChatCore
from leosuite.community.models import ChatLimits, Member, Session
from leosuite.errors import Conflict, NotFound


class Clock:
    def __init__(self) -> None:
        self.t = 50.0

    def __call__(self) -> float:
        return self.t


def setup() -> tuple[ChatCore, AdminChats, Clock, Member, Session]:
    clock = Clock()
    core = ChatCore(ChatLimits(), clock)
    member = Member("alice")
    core.connect(member)
    session, _ = core.join(member, "general")
    return core, AdminChats(core, clock), clock, member, session


def test_records_lines_said_to_everyone_only() -> None:
    core, chats, _clock, alice, session = setup()
    bob = Member("bob")
    core.connect(bob)
    core.join(bob, "general")
    core.say(alice, session, "before the admin came")
    chat = chats.connect(session, 300)
    chats.say(session, "hello from the admins", "alert")
    core.say(alice, session, "hi admin")
    core.say(alice, session, "psst", to="bob")  # a direct message: never recorded
    core.system(session, "a server notice")
    core.system(session, "to bob only", to=bob)
    assert chat.read(0) == (
        0,
        [
            {"m": "hello from the admins"},
            {"i": alice.id, "n": "alice", "m": "hi admin"},
            {"i": 0, "n": "SYSTEM", "m": "a server notice"},
        ],
    )
    assert chat.read(2) == (2, [{"i": 0, "n": "SYSTEM", "m": "a server notice"}])
    assert chat.read(3) == (3, [])
    assert chat.read(10**9) == (3, [])  # past the end: nothing, the end's offset


def test_the_cap_drops_the_oldest_and_moves_the_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin_chat, "MAX_LINES", 3)
    core, chats, clock, alice, session = setup()
    chat = chats.connect(session, 300)
    for n in range(5):
        core.say(alice, session, f"line {n}")
    offset, lines = chat.read(0)
    assert offset == 2
    assert [line["m"] for line in lines] == ["line 2", "line 3", "line 4"]
    assert chat.read(4) == (4, [{"i": alice.id, "n": "alice", "m": "line 4"}])
    assert chat.describe(clock()) == {
        "offset": 2,
        "count": 3,
        "timeout": 300000,
        "remaining": 300000,
    }


def test_timeout_restarted_by_use_then_ends() -> None:
    _core, chats, clock, _alice, session = setup()
    chats.connect(session, 30)
    with pytest.raises(Conflict, match="connected already"):
        chats.connect(session, 30)
    clock.t += 20
    chats.connected(session)  # a read restarts the timer
    clock.t += 20
    assert chats.describe(session) == {
        "offset": 0,
        "count": 0,
        "timeout": 30000,
        "remaining": 10000,
    }
    clock.t += 10
    assert chats.describe(session) is None
    with pytest.raises(NotFound):
        chats.connected(session)
    assert not session.watchers  # the timed-out chat stopped listening


def test_ends_with_its_session_and_refuses_rooms() -> None:
    core, chats, _clock, _alice, session = setup()
    chats.connect(session, 300)
    core.close(session, "gone")
    chats.housekeeping()
    assert not session.watchers
    room, _ = core.join(Member("roomie", kind="room"), "aroom")
    room.room = object()
    with pytest.raises(Conflict, match="encrypted"):
        chats.connect(room, 300)

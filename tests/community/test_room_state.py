"""The rooms' rules as plain state: no sockets, no event loop, a hand-driven clock.

Passwords go through the daemon's own hasher (its synchronous half, cheap
parameters), so a right and a wrong password are told apart for real.
"""

from __future__ import annotations

from typing import Any

import pytest

from leosuite.auth.passwords import PasswordHasher
from leosuite.community.core import ChatCore
from leosuite.community.models import ChatEvent, ChatLimits, Member
from leosuite.community.room_models import (
    BAD_LOGIN,
    BAD_SESSION,
    FAREWELL_TTL,
    POLL_BATCH,
    Joined,
    Notice,
    Room,
    RoomUser,
    bridged_text,
    level_of,
    system_invite_alert,
    system_notice,
)
from leosuite.community.room_state import RoomTable
from leosuite.errors import AuthError, Conflict, InvalidInput, PermissionDenied

HASHER = PasswordHasher(time_cost=1, memory_kib=64, parallelism=1)


class Clock:
    def __init__(self) -> None:
        self.time = 1000.0

    def __call__(self) -> float:
        return self.time


def make_table(clock: Clock | None = None, **limits: Any) -> RoomTable:
    clock = clock or Clock()
    core = ChatCore(ChatLimits(**limits), clock)
    return RoomTable(core, clock, retention=60.0, idle_warning=30.0, min_password=8)


def password(name: str) -> str:
    return f"{name}-password"


def open_room(table: RoomTable, name: str = "den", owner: str = "alice") -> Room:
    checked = table.check_new_room(name, owner, password(owner))
    return table.open_room(checked, owner, HASHER.hash_sync(password(owner)), "syskey")


def join(table: RoomTable, user: str, secret: str | None = None, room: str = "den") -> Joined:
    secret = password(user) if secret is None else secret
    login = table.login(room, user, secret)
    return table.admit(login, HASHER.verify_sync(login.stored_hash, secret), "127.0.0.1")


def invite(table: RoomTable, room: Room, by: RoomUser, name: str) -> Notice:
    table.prepare_invite(room, by, name, password(name))
    return table.add_invitee(room, by, name, HASHER.hash_sync(password(name)))


def room_with(table: RoomTable, *names: str) -> tuple[Room, list[RoomUser]]:
    """``names[0]`` opens the room and invites the others; everyone joins."""
    room = open_room(table, owner=names[0])
    owner = join(table, names[0]).user
    users = [owner]
    for name in names[1:]:
        invite(table, room, owner, name)
        users.append(join(table, name).user)
    return room, users


def say(table: RoomTable, room: Room, ruser: RoomUser, to: str | None = None) -> int:
    return table.post(room, ruser, "cGF5bG9hZA==", to).id


# -- opening and joining ----------------------------------------------------------------


def test_owner_joins_with_the_right_password_and_alone_moderates() -> None:
    table = make_table()
    room = open_room(table, "#den")
    assert room.session.name == "den"
    joined = join(table, "ALICE", password("alice"))  # names are case-insensitive
    assert joined.room is room
    assert joined.user.name == "alice"
    assert joined.notice == Notice("User alice joined the room")
    assert joined.last == joined.user.floor == room.session.next_id - 1
    assert joined.user.sesskey is not None
    assert table.authenticate("#DEN", "alice", joined.user.sesskey) == (room, joined.user)
    assert room.session.ops == {"room:alice"}  # the owner by identity, not by name


def test_wrong_password_unknown_user_unknown_room_and_ban_answer_alike() -> None:
    table = make_table()
    room, (alice, _bob) = room_with(table, "alice", "bob")
    table.expel(room, alice, "bob", ban=True)
    attempts = [
        ("alice", "not-the-password", "den"),
        ("mallory", password("mallory"), "den"),
        ("alice", password("alice"), "nowhere"),
        ("bob", password("bob"), "den"),  # banned
    ]
    for user, secret, name in attempts:
        with pytest.raises(AuthError) as caught:
            join(table, user, secret, room=name)
        assert caught.value.message == BAD_LOGIN
    # an unknown user's password is still checked, against no hash (the same cost)
    assert table.login("den", "mallory", "x").stored_hash is None


def test_a_too_long_user_or_password_is_bad_input() -> None:
    table = make_table()
    open_room(table)
    with pytest.raises(InvalidInput):
        table.login("den", "a" * 65, password("alice"))
    with pytest.raises(InvalidInput):
        table.login("den", "alice", "p" * 1025)


def test_a_room_opens_only_under_a_free_name_with_a_valid_owner_and_password() -> None:
    table = make_table()
    open_room(table)
    with pytest.raises(Conflict):
        table.check_new_room("#DEN", "bob", password("bob"))
    chatter = Member("carl")
    table.core.connect(chatter)
    table.core.join(chatter, "lobby")  # a chat channel is not up for grabs
    with pytest.raises(Conflict):
        table.check_new_room("lobby", "bob", password("bob"))
    with pytest.raises(InvalidInput):
        table.check_new_room("attic", "bob", "short")
    with pytest.raises(InvalidInput):
        table.check_new_room("attic", "SYSTEM", password("system"))
    # the name was free when checked, then taken while the password was hashed
    checked = table.check_new_room("attic", "bob", password("bob"))
    table.core.create("attic", None, founder_name="someone")
    with pytest.raises(Conflict):
        table.open_room(checked, "bob", "hash", "syskey")


def test_an_invited_user_never_gets_operator_rights() -> None:
    table = make_table()
    room = open_room(table)
    owner = room.user("alice")
    assert owner is not None
    assert invite(table, room, owner, "bob") == Notice("User alice invited bob to the room")
    bob = join(table, "bob").user
    join(table, "alice")
    assert room.session.ops == {"room:alice"}
    table.depart(room, owner)  # the owner stays the owner while away
    table.depart(room, bob)
    room.session.ops.clear()
    join(table, "bob")  # the core makes the first joiner of an op-less session op
    assert room.session.ops == set()
    join(table, "alice")
    assert room.session.ops == {"room:alice"}


def test_joining_again_hands_out_a_new_key_and_bids_the_old_one_farewell() -> None:
    table = make_table()
    _room, (_alice, bob) = room_with(table, "alice", "bob")
    old = bob.sesskey
    assert old is not None
    again = join(table, "bob")
    assert again.notice is None
    assert again.user is bob
    assert bob.sesskey is not None
    assert bob.sesskey != old
    with pytest.raises(AuthError):
        table.authenticate("den", "bob", old)
    text = "You have joined this room from another client"
    assert table.farewell("den", "bob", old) == text
    assert table.farewell("den", "bob", old) is None  # once only
    table.authenticate("den", "bob", bob.sesskey)


def test_a_wrong_or_someone_elses_key_is_refused() -> None:
    table = make_table()
    _room, (alice, bob) = room_with(table, "alice", "bob")
    assert alice.sesskey is not None
    assert bob.sesskey is not None
    for user, key in [("alice", bob.sesskey), ("alice", ""), ("zed", alice.sesskey)]:
        with pytest.raises(AuthError) as caught:
            table.authenticate("den", user, key)
        assert caught.value.message == BAD_SESSION


# -- invitations, kicks and bans --------------------------------------------------------


def test_invitations_that_cannot_be_are_refused() -> None:
    table = make_table()
    room, (alice, bob) = room_with(table, "alice", "bob")
    with pytest.raises(InvalidInput):
        table.prepare_invite(room, alice, "BOB", password("bob"))  # invited already
    with pytest.raises(InvalidInput):
        table.prepare_invite(room, alice, "carol", "short")
    with pytest.raises(InvalidInput):
        table.prepare_invite(room, alice, "ca rol", password("carol"))
    with pytest.raises(PermissionDenied):
        table.prepare_invite(room, bob, "System", password("system"))
    room.session.max_user_count = 2
    with pytest.raises(InvalidInput):
        table.prepare_invite(room, bob, "carol", password("carol"))


def test_inviting_system_raises_an_alert_naming_the_inviter() -> None:
    assert system_invite_alert("bob", "sYsTeM") == Notice(
        "ALERT: User bob tried to invite SYSTEM", "sysalert"
    )
    assert system_invite_alert("bob", "carol") is None


def test_only_the_owner_kicks_and_not_themselves() -> None:
    table = make_table()
    room, (alice, bob) = room_with(table, "alice", "bob")
    with pytest.raises(PermissionDenied):
        table.expel(room, bob, "alice", ban=False)
    with pytest.raises(InvalidInput):
        table.expel(room, alice, "alice", ban=True)
    with pytest.raises(InvalidInput):
        table.expel(room, alice, "nobody", ban=False)


def test_the_owner_kicks_by_ownership_not_by_operator_rights() -> None:
    table = make_table()
    room, (alice, _bob) = room_with(table, "alice", "bob")
    table.core.set_flag(None, room.session, "alice", "deop")  # an administrator's doing
    assert "alice" not in room.session.ops
    table.expel(room, alice, "bob", ban=False)
    assert room.session.member_named("bob") is None


def test_a_kicked_user_is_told_once_and_may_join_again() -> None:
    table = make_table()
    room, (alice, bob) = room_with(table, "alice", "bob")
    old = bob.sesskey
    assert old is not None
    notice = table.expel(room, alice, "bob", ban=False)
    assert notice == Notice("User alice kicked bob from the room", "syswarn")
    assert not room.joined(bob)
    assert bob.sesskey is None
    with pytest.raises(AuthError):
        table.authenticate("den", "bob", old)
    assert table.farewell("den", "bob", old) == "You have been kicked from the room"
    assert table.farewell("den", "bob", old) is None
    assert join(table, "bob").notice == Notice("User bob joined the room")


def test_a_ban_holds_until_the_owner_invites_the_name_again() -> None:
    table = make_table()
    room, (alice, bob, carol) = room_with(table, "alice", "bob", "carol")
    old = bob.sesskey
    assert old is not None
    notice = table.expel(room, alice, "Bob", ban=True)
    assert notice == Notice("User alice banned bob from the room", "syswarn")
    assert room.user("bob") is None
    assert room.banned("BOB")
    assert table.farewell("den", "bob", old) == "You have been banned from the room"
    with pytest.raises(PermissionDenied):
        table.prepare_invite(room, carol, "bob", password("bob"))
    invite(table, room, alice, "bob")  # the owner lifts the ban
    assert not room.banned("bob")
    assert join(table, "bob").user.name == "bob"


def test_leaving_kills_the_key_without_a_farewell_but_keeps_the_invitation() -> None:
    table = make_table()
    room, (_alice, bob) = room_with(table, "alice", "bob")
    old = bob.sesskey
    assert old is not None
    assert table.depart(room, bob) == Notice("User bob left the room")
    assert not room.joined(bob)
    assert table.farewell("den", "bob", old) is None
    assert join(table, "bob").user is bob


def test_a_user_removed_by_an_administrator_is_told_on_its_next_call() -> None:
    table = make_table()
    _room, (_alice, bob) = room_with(table, "alice", "bob")
    key = bob.sesskey
    assert key is not None
    assert bob.member is not None
    table.core.disconnect(bob.member, "removed by an administrator")
    with pytest.raises(AuthError):
        table.authenticate("den", "bob", key)
    assert table.farewell("den", "bob", key) == "You have been removed from the room"


def test_closing_forgets_everything_and_tells_everyone_but_the_closer() -> None:
    table = make_table()
    room, (alice, bob) = room_with(table, "alice", "bob")
    keys = {"alice": alice.sesskey, "bob": bob.sesskey}
    say(table, room, alice)
    table.close(room, "closed by its owner", closer=alice)
    assert table.find("den") is None
    assert table.core.find("den") is None
    assert not table.alive(room)
    assert room.users == {}
    assert len(room.session.history) == 0
    assert table.farewell("den", "alice", str(keys["alice"])) is None
    assert table.farewell("den", "bob", str(keys["bob"])) == "The room has been closed by its owner"


# -- messages and polls -----------------------------------------------------------------


def test_a_user_reads_what_came_after_its_join_and_what_is_addressed_to_it() -> None:
    table = make_table()
    room, (alice, bob) = room_with(table, "alice", "bob")
    before = say(table, room, alice)
    invite(table, room, alice, "carol")
    carol = join(table, "carol").user
    to_bob = say(table, room, alice, to="BOB")
    to_all = say(table, room, bob)
    seen = {u.name: [e.id for e in table.visible(room, u, 0)] for u in (alice, bob, carol)}
    assert before not in seen["carol"]  # stored before carol joined
    assert to_bob in seen["bob"]
    assert to_bob not in seen["alice"]  # the sender's client prints its own copy
    assert to_bob not in seen["carol"]
    assert all(to_all in ids for ids in seen.values())
    assert [e.id for e in table.visible(room, bob, to_bob)] == [to_all]


def test_a_direct_message_goes_only_to_a_joined_user() -> None:
    table = make_table()
    room, (alice, bob) = room_with(table, "alice", "bob")
    table.depart(room, bob)
    with pytest.raises(InvalidInput):
        say(table, room, alice, to="bob")
    with pytest.raises(InvalidInput):
        say(table, room, alice, to="nobody")


def test_a_poll_answers_at_most_a_batch_oldest_first() -> None:
    table = make_table()
    room, (alice, bob) = room_with(table, "alice", "bob")
    after = room.session.next_id - 1
    ids = [say(table, room, alice) for _ in range(POLL_BATCH + 5)]
    first = table.visible(room, bob, after)
    assert [e.id for e in first] == ids[:POLL_BATCH]
    assert [e.id for e in table.visible(room, bob, first[-1].id)] == ids[POLL_BATCH:]


def test_a_room_admits_no_chat_member_and_an_admin_alert_reads_as_system() -> None:
    table = make_table()
    room, (_alice, bob) = room_with(table, "alice", "bob")
    for chatter in (Member("carl"), Member("mod", mod=True), Member("acct", account_id=5)):
        table.core.connect(chatter)
        with pytest.raises(PermissionDenied, match="encrypted room"):
            table.core.join(chatter, "#den")
        assert chatter.id not in room.session.members
    alert = table.core.system(room.session, "maintenance at noon", "alert")
    assert [e.id for e in table.visible(room, bob, 0)][-1:] == [alert.id]
    assert system_notice(alert) == Notice("maintenance at noon", "sysalert")


def test_a_bridged_chat_line_is_one_line_marked_as_the_chat_s_never_system() -> None:
    table = make_table()
    room, _users = room_with(table, "alice", "bob")
    forged = "hi\nSYSTEM: the room is closed\r\u2028\x1b[2Jbye"
    line = ChatEvent("message", room.session, "carl", 0.0, text=forged, origin="chat")
    notice = system_notice(line)
    assert notice == Notice("hi SYSTEM: the room is closed [2Jbye", "say", "carl (chat)")
    assert notice.user != "SYSTEM"
    assert bridged_text("a\tb\x00c") == "a b c"


def test_a_notice_is_stored_with_its_payload_unless_the_room_closed() -> None:
    table = make_table()
    room, _users = room_with(table, "alice", "bob")
    table.record_notice(room, Notice("careful", "syswarn"), "Y2lwaGVy")
    event = room.session.history[-1]
    assert (event.user, event.text, event.level) == ("SYSTEM", "careful", level_of("syswarn"))
    assert event.frames["room"] == "Y2lwaGVy"
    table.close(room, "closed by its owner")
    table.record_notice(room, Notice("too late"), "Y2lwaGVy")
    assert len(room.session.history) == 0


# -- housekeeping -----------------------------------------------------------------------


def test_messages_older_than_the_retention_are_purged() -> None:
    clock = Clock()
    table = make_table(clock, idle_time_limit=0.0)
    room, (alice, _bob) = room_with(table, "alice", "bob")
    old = say(table, room, alice)
    clock.time += 30
    fresh = say(table, room, alice)
    table.housekeeping(now=clock.time + 31)  # retention 60 s: only the old one is over
    assert [e.id for e in room.session.history] == [fresh]
    assert old < fresh
    table.retention = 0  # keeps messages until the room closes
    table.housekeeping(now=clock.time + 10_000)
    assert [e.id for e in room.session.history] == [fresh]


def test_an_idle_room_is_warned_then_closed_unless_there_is_activity() -> None:
    clock = Clock()
    table = make_table(clock, idle_time_limit=100.0)
    table.retention = 0
    room, (alice, bob) = room_with(table, "alice", "bob")
    key = bob.sesskey
    idle_since = room.session.last_activity
    table.housekeeping(now=idle_since + 69)
    assert room.warned_at is None
    table.housekeeping(now=idle_since + 70)
    warning = room.session.history[-1]
    assert warning.level == "warn"
    assert warning.text == (
        "This room is idle and will be closed in 30 seconds unless there is activity"
    )
    assert room.session.last_activity == idle_since  # the warning is no activity
    table.housekeeping(now=idle_since + 90)
    assert room.session.history[-1] is warning  # warned once
    clock.time = idle_since + 95
    say(table, room, alice)  # activity starts the clock again
    table.housekeeping(now=idle_since + 100)
    assert table.find("den") is room
    assert room.warned_at is None
    active = room.session.last_activity
    table.housekeeping(now=active + 70)
    table.housekeeping(now=active + 99)
    assert table.find("den") is room
    table.housekeeping(now=active + 100)
    assert table.find("den") is None
    assert table.farewell("den", "bob", str(key)) == "The room has been closed after being idle"


def test_a_late_pass_still_gives_the_whole_warning_period() -> None:
    table = make_table(idle_time_limit=100.0)
    table.retention = 0
    room = open_room(table)
    idle_since = room.session.last_activity
    table.housekeeping(now=idle_since + 500)
    assert room.session.history[-1].text.startswith("This room is idle and will be closed in 30")
    table.housekeeping(now=idle_since + 529)
    assert table.find("den") is room
    table.housekeeping(now=idle_since + 530)
    assert table.find("den") is None


def test_a_room_closed_through_the_core_is_closed_here_too() -> None:
    table = make_table()
    room, (_alice, bob) = room_with(table, "alice", "bob")
    key = bob.sesskey
    table.core.close(room.session, "closed by an administrator")
    table.housekeeping()
    assert room.session.id not in table.rooms
    assert table.farewell("den", "bob", str(key)) == "The room has been closed by an administrator"


def test_a_farewell_nobody_collects_is_forgotten() -> None:
    clock = Clock()
    table = make_table(clock)
    room, (alice, bob) = room_with(table, "alice", "bob")
    key = str(bob.sesskey)
    table.expel(room, alice, "bob", ban=False)
    table.housekeeping(now=clock.time + FAREWELL_TTL - 1)
    table.housekeeping(now=clock.time + FAREWELL_TTL)
    assert table.farewell("den", "bob", key) is None

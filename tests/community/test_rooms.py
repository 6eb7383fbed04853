"""``POST /rooms`` over real HTTP: payload forms, every bad input of issue 6 for rooms,
session keys, owner rights, long polls, retention, idle close, and that a room (one
session with the channel of its name) admits no chat member."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from leosuite.community.crypto import decrypt_payload, encrypt_payload
from leosuite.community.models import Member
from leosuite.community.rooms import Rooms
from leosuite.errors import PermissionDenied
from leosuite.settings import Settings
from tests.helpers.daemon import RunningDaemon, make_settings
from tests.helpers.http import JSON, Blob
from tests.helpers.rooms import ROOM_PASS, RoomClient

MAX_WAIT = 1.0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path / "data",
        community={
            "room_poll_max_wait": MAX_WAIT,
            "room_message_retention": 60.0,
            "idle_time_limit": 100.0,
            "room_idle_warning": 30.0,
            "message_max_bytes": 4096,
        },
    )


def rooms_of(daemon: RunningDaemon) -> Rooms:
    return next(h for h in daemon.ctx.chat.housekeepers if isinstance(h, Rooms))


async def open_room(
    http: httpx.AsyncClient, *names: str, room: str = "den", as_string: bool = True
) -> list[RoomClient]:
    """``names[0]`` creates the room and invites the others; everyone joins and has
    read everything so far."""
    clients = [RoomClient(http, room, name, as_string=as_string) for name in names]
    owner = clients[0]
    await owner.create(f"{owner.user}-password")
    await owner.join(f"{owner.user}-password")
    for client in clients[1:]:
        await owner.ok("inviteUser", invite=client.user, **{"pass": f"{client.user}-password"})
        await client.join(f"{client.user}-password")
    for client in clients:
        await client.poll()
    return clients


def payload(text: str = "hi") -> str:
    return encrypt_payload(ROOM_PASS, {"user": "x", "text": text, "verb": "say"})


async def test_payload_as_an_object_works_like_a_string(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http:
            alice, bob = await open_room(http, "alice", "bob", as_string=False)
            await alice.say("object form")
            assert await bob.read_new() == [("alice", "0", "say", "object form")]
            bob.as_string = True
            await bob.say("string form")
            assert await alice.read_new() == [
                ("alice", "0", "say", "object form"),
                ("bob", "0", "say", "string form"),
            ]


async def test_join_with_wrong_credentials_is_403_without_a_hint(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http:
            (alice,) = await open_room(http, "alice")
            answers = [
                await alice.error("joinRoom", 403, user="alice", userpass="wrong-password"),
                await alice.error("joinRoom", 403, user="nobody", userpass="alice-password"),
                await alice.error("joinRoom", 403, user="SYSTEM", userpass="alice-password"),
                await alice.error(
                    "joinRoom", 403, roomName="nowhere", user="alice", userpass="alice-password"
                ),
            ]
            assert all(a == answers[0] for a in answers), answers
            assert answers[0] == {
                "status": "error", "error_type": "forbidden", "text": "wrong room, user or password"
            }  # fmt: skip
            assert await alice.poll() == []  # failed joins leave no trace in the room


ACTIONS: list[tuple[str, dict[str, Any]]] = [
    ("pollMsg", {"mylast": 0}),
    ("sendMsg", {"msg": payload()}),
    ("sendDirectMsg", {"msg": payload(), "to": "alice"}),
    ("inviteUser", {"invite": "dave", "pass": "dave-password"}),
    ("kickUser", {"kick": "bob"}),
    ("banUser", {"kick": "bob"}),
    ("leaveRoom", {}),
    ("closeRoom", {}),
]


async def test_every_action_needs_this_users_own_session_key(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        async with daemon.http() as http:
            alice, bob = await open_room(http, "alice", "bob")
            for action, extra in ACTIONS:
                for user, sesskey in [
                    ("alice", None),  # missing
                    ("alice", ""),
                    ("alice", alice.sesskey[:-2] + "xx"),  # wrong
                    ("alice", bob.sesskey),  # another user's
                    ("bob", alice.sesskey),
                    ("", alice.sesskey),  # no user
                    ("alicé", "ключ"),  # not ASCII
                ]:
                    body: dict[str, Any] = {"roomName": "den", "user": user, **extra}
                    if sesskey is not None:
                        body["sesskey"] = sesskey
                    response = await http.post("/rooms", json={"action": action, "payload": body})
                    assert response.status_code == 403, (action, user, response.text)
                    assert response.json()["status"] == "error"
            # a valid key for another room is no key here
            (other,) = await open_room(http, "alice", room="attic")
            await other.error("pollMsg", 403, roomName="den", mylast=0)
            # nothing happened: both still in, nobody invited, the room open
            rooms = rooms_of(daemon)
            room = rooms.find("den")
            assert room is not None
            assert sorted(room.users) == ["alice", "bob"]
            assert await alice.poll() == []
            assert await bob.poll() == []


async def test_owner_actions_by_a_member_are_403(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http:
            alice, bob, carol = await open_room(http, "alice", "bob", "carol")
            for action in ("kickUser", "banUser"):
                answer = await bob.error(action, 403, kick="carol")
                assert answer["text"] == "only the room's owner may kick or ban"
                await bob.error(action, 403, kick="alice")
            await bob.error("closeRoom", 403)
            assert await carol.poll() == []
            assert await alice.poll() == []
            # the owner may, but not on themself nor on a stranger
            await alice.error("kickUser", 400, kick="alice")
            await alice.error("banUser", 400, kick="nobody")
            # rights stay with the owner's name when the owner leaves and a member joins
            await alice.ok("leaveRoom")
            await carol.ok("leaveRoom")
            await carol.join("carol-password")
            await carol.error("kickUser", 403, kick="bob")
            await alice.join("alice-password")
            await alice.ok("kickUser", kick="carol")
            await alice.ok("banUser", kick="carol")
            await alice.ok("inviteUser", invite="carol", **{"pass": "carol-password"})


async def test_direct_message_to_a_name_not_in_the_room_is_400(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http:
            alice, bob = await open_room(http, "alice", "bob")
            await alice.ok("inviteUser", invite="carol", **{"pass": "carol-password"})
            await alice.poll()
            for to in ("nobody", "carol", "SYSTEM", ""):  # carol is invited, not in
                answer = await alice.error("sendDirectMsg", 400, msg=payload(), to=to)
                assert answer["error_type"] == "invalid"
            await bob.ok("leaveRoom")
            await alice.error("sendDirectMsg", 400, msg=payload(), to="bob")
            assert await alice.poll() != []  # only bob's leave: no stray message
            await alice.ok("sendDirectMsg", msg=payload("to myself"), to="ALICE")
            assert await alice.read_new() == [("alice", "alice", "say", "to myself")]


async def test_poll_mylast_must_be_a_known_id(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http:
            alice, _bob = await open_room(http, "alice", "bob")
            newest = alice.last
            for mylast in (-1, "abc", "-1", "1.5", "", True, 1.5, None, [1], newest + 1, 10**30):
                answer = await alice.error("pollMsg", 400, mylast=mylast)
                assert "mylast" in answer["text"], (mylast, answer)
            await alice.error("pollMsg", 400, mylast=0, wait=-1)
            await alice.error("pollMsg", 400)  # no mylast at all
            # a numeric string is a number (the origin server took it), 0 is the start
            assert (await alice.ok("pollMsg", mylast=str(newest)))["status"] == "unchanged"
            answer = await alice.ok("pollMsg", mylast=0)
            assert answer["status"] == "updated"
            assert answer["messages"][-1][0] == newest


async def test_bad_room_names_and_bodies_are_400(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http:
            for name in ("x" * 10_000, "a\x00b", "a\nb", "tab\there", "\x7f", "", "#", "a b"):
                client = RoomClient(http, name, "alice")
                await client.error("createRoom", 400, owner="alice", **{"pass": "alice-password"})
                await client.error("joinRoom", 400, user="alice", userpass="alice-password")
                await client.error("pollMsg", 400, mylast=0)
            assert daemon.ctx.chat.core.sessions == {}
            alice = RoomClient(http, "den", "alice")
            for owner, password in [("SYSTEM", "long-enough"), ("a b", "long-enough"),
                                    ("x" * 33, "long-enough"), ("alice", "short")]:  # fmt: skip
                await alice.error("createRoom", 400, owner=owner, **{"pass": password})
            for body in (
                b"not json",
                b"",
                b"[]",
                b'{"action": "pollMsg"}',
                b'{"payload": {}}',
                b'{"action": "nope", "payload": {}}',
                b'{"action": "createRoom", "payload": "not json"}',
                b'{"action": "createRoom", "payload": "[1]"}',
                b'{"action": "createRoom", "payload": 5}',
                b'{"action": "createRoom", "payload": {"roomName": 5}}',
                b'{"action": "createRoom", "payload": {}, "extra": 1}',
                b'{"action": "joinRoom", "payload": "{\\"roomName\\": \\"\\ud800\\"}"}',
                b"\xff\xfe",
                b"[" * 5000 + b"]" * 5000,
            ):
                response = await http.post(
                    "/rooms", content=body, headers={"Content-Type": "application/json"}
                )
                assert response.status_code == 400, (body[:60], response.text)
                assert response.json()["status"] == "error"
            for with_length in (True, False):  # over http.max_body_bytes: 400, not 413
                request = http.build_request("POST", "/rooms", headers=dict(JSON))
                request.stream = Blob(2 << 20)
                if with_length:
                    request.headers["Content-Length"] = str(2 << 20)
                else:
                    request.headers["Transfer-Encoding"] = "chunked"
                response = await http.send(request)
                assert response.status_code == 400, response.text
                assert response.json()["error_type"] == "too_large"
            assert daemon.ctx.chat.core.sessions == {}


async def test_messages_must_be_plausible_payloads(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http:
            alice, bob = await open_room(http, "alice", "bob")
            for msg in ("", "not base64!", "é", "QUJD=" * 2, "A" * 4100):
                await alice.error("sendMsg", 400, msg=msg)
                await alice.error("sendDirectMsg", 400, msg=msg, to="bob")
            await alice.error("sendMsg", 400, msg=5)
            assert await bob.poll() == []
            await alice.ok("sendMsg", msg="QUJD")  # opaque: never decrypted by the server
            assert (await bob.poll())[0][1] == "QUJD"


async def test_creating_an_existing_room_or_channel_is_400(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http:
            (alice,) = await open_room(http, "alice")
            mallory = RoomClient(http, "DEN", "mallory")
            answer = await mallory.error("createRoom", 400, owner="mallory", **{"pass": "12345678"})
            assert "exists" in answer["text"]
            await RoomClient(http, "#den", "m").error(
                "createRoom", 400, owner="m", **{"pass": "12345678"}
            )
            # the owner's password did not change
            await mallory.error("joinRoom", 403, user="alice", userpass="12345678")
            # a chat channel cannot be taken over by "creating" a room of its name
            core = daemon.ctx.chat.core
            chat = Member("zed", kind="chat")
            core.connect(chat)
            core.join(chat, "lobby")
            lobby = RoomClient(http, "lobby", "mallory")
            await lobby.error("createRoom", 400, owner="mallory", **{"pass": "12345678"})
            assert core.find("lobby").room is None
            assert await alice.poll() == []


async def test_ban_invite_and_system(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http:
            alice, bob, carol = await open_room(http, "alice", "bob", "carol")
            # inviting SYSTEM: 403, and the whole room gets a sysalert naming who tried
            for name in ("SYSTEM", "system"):
                answer = await bob.error("inviteUser", 403, invite=name, **{"pass": "x" * 16})
                assert answer["error_type"] == "permission_denied"
                assert await alice.read_new() == [
                    ("SYSTEM", "0", "sysalert", "ALERT: User bob tried to invite SYSTEM")
                ]
            assert len(await carol.poll()) == 2
            # inviting a name twice would let a member reset its password: refused
            await bob.error("inviteUser", 400, invite="Carol", **{"pass": "new-password"})
            await bob.error("inviteUser", 400, invite="eve", **{"pass": "short"})
            # a banned name cannot join again, and only the owner may invite it back
            await alice.ok("banUser", kick="carol")
            assert (await carol.ok("pollMsg", mylast=carol.last))["text"] == (
                "You have been banned from the room"
            )
            await carol.error("joinRoom", 403, user="carol", userpass="carol-password")
            await bob.error("inviteUser", 403, invite="carol", **{"pass": "carol-password"})
            await carol.error("joinRoom", 403, user="carol", userpass="carol-password")
            await alice.ok("inviteUser", invite="carol", **{"pass": "carol-password2"})
            await carol.join("carol-password2")
            # banning someone invited but not in the room works too
            await alice.ok("inviteUser", invite="dave", **{"pass": "dave-password"})
            await alice.ok("banUser", kick="dave")
            await RoomClient(http, "den", "dave").error(
                "joinRoom", 403, user="dave", userpass="dave-password"
            )


async def test_kicked_user_gets_one_errmessage_then_403(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http:
            alice, bob = await open_room(http, "alice", "bob")
            await alice.ok("kickUser", kick="bob")
            # other actions are refused at once, without using up the message
            await bob.error("sendMsg", 403, msg=payload())
            await bob.error("inviteUser", 403, invite="x", **{"pass": "x" * 10})
            assert await bob.ok("pollMsg", mylast=bob.last) == {
                "status": "errmessage", "text": "You have been kicked from the room"
            }  # fmt: skip
            for _ in range(2):
                await bob.error("pollMsg", 403, mylast=bob.last)
            core = daemon.ctx.chat.core
            assert [m.name for m in core.find("den").members.values()] == ["alice"]
            # an administrator removing a room user through the core is a removal too
            await bob.join("bob-password")
            core.kick(None, core.find("den"), "bob")
            assert (await bob.ok("pollMsg", mylast=bob.last))["text"] == (
                "You have been removed from the room"
            )
            await bob.error("pollMsg", 403, mylast=bob.last)
            # joining again from another client retires the first client's key
            await bob.join("bob-password")
            first = bob.sesskey
            second = RoomClient(http, "den", "bob")
            await second.join("bob-password")
            assert second.last == bob.last + 1  # his join message, and no second one
            assert second.sesskey != first
            assert await bob.ok("pollMsg", mylast=bob.last) == {
                "status": "errmessage", "text": "You have joined this room from another client"
            }  # fmt: skip
            await bob.error("pollMsg", 403, mylast=bob.last)
            await second.say("still me")
            assert [alice.read(m) for m in await alice.poll()][-1] == (
                "bob",
                "0",
                "say",
                "still me",
            )


async def test_long_poll_wakes_on_a_message_and_is_capped(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http:
            alice, bob, carol = await open_room(http, "alice", "bob", "carol")
            got: list[list[Any]] = []

            async def bob_waits() -> None:
                got.extend(await bob.poll(wait=MAX_WAIT * 20))

            # capped: a huge wait answers unchanged after room_poll_max_wait
            start = trio.current_time()
            assert await bob.poll(wait=10_000) == []
            assert MAX_WAIT * 0.9 <= trio.current_time() - start < MAX_WAIT * 3
            # a direct message to someone else does not wake it; a room message does
            private, public = payload("not for bob"), payload("for everyone")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(bob_waits)
                await trio.sleep(0.1)  # real server time: let the poll start waiting
                start = trio.current_time()
                await alice.ok("sendDirectMsg", msg=private, to="carol")
                await alice.ok("sendMsg", msg=public)
            assert trio.current_time() - start < MAX_WAIT * 0.8
            assert [bob.read(m) for m in got] == [("alice", "0", "say", "for everyone")]
            # a kick during the wait answers the errmessage at once
            await carol.poll()
            answer: dict[str, Any] = {}

            async def carol_waits() -> None:
                answer.update(await carol.ok("pollMsg", mylast=carol.last, wait=20))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(carol_waits)
                await trio.sleep(0.1)
                start = trio.current_time()
                await alice.ok("kickUser", kick="carol")
            assert answer == {"status": "errmessage", "text": "You have been kicked from the room"}
            assert trio.current_time() - start < MAX_WAIT * 0.8


async def test_retention_purges_old_messages(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http:
            alice, bob = await open_room(http, "alice", "bob")
            await alice.say("old news")
            rooms = rooms_of(daemon)
            now = daemon.ctx.now()
            rooms.housekeeping(now=now + 30)
            assert [bob.read(m)[3] for m in await bob.poll()] == ["old news"]
            rooms.housekeeping(now=now + 61)  # retention is 60 s
            assert (await bob.ok("pollMsg", mylast=0))["status"] == "unchanged"
            assert rooms.find("den").session.history_bytes == 0
            await alice.say("fresh")
            assert [bob.read(m)[3] for m in await bob.poll()] == ["fresh"]
            rooms.retention = 0  # 0 keeps messages until the room closes
            rooms.housekeeping(now=now + 10_000)
            session = rooms.find("den").session
            assert [e.user for e in session.history if e.kind == "message"] == ["alice"]


async def test_idle_room_is_warned_then_closed(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http:
            alice, bob = await open_room(http, "alice", "bob")
            rooms = rooms_of(daemon)
            rooms.retention = 0
            room = rooms.find("den")
            idle_since = room.session.last_activity
            rooms.housekeeping(now=idle_since + 60)  # idle limit 100 s, warning 30 s before
            assert await alice.poll() == []
            rooms.housekeeping(now=idle_since + 75)
            (warning,) = await alice.read_new()
            assert warning == (
                "SYSTEM", "0", "syswarn",
                "This room is idle and will be closed in 30 seconds unless there is activity",
            )  # fmt: skip
            rooms.housekeeping(now=idle_since + 90)  # warned once only
            assert await alice.poll() == []
            # activity after the warning starts the clock again
            await bob.say("still here")
            active = room.session.last_activity
            assert active > idle_since
            rooms.housekeeping(now=active + 60)
            assert rooms.find("den") is room
            rooms.housekeeping(now=active + 75)
            assert [m[2] for m in await alice.read_new()] == ["say", "syswarn"]
            rooms.housekeeping(now=active + 100)  # the warning gave 30 s: until active + 105
            assert rooms.find("den") is room
            rooms.housekeeping(now=active + 105)
            assert rooms.find("den") is None
            assert daemon.ctx.chat.core.find("den") is None
            for client in (alice, bob):
                assert await client.ok("pollMsg", mylast=client.last) == {
                    "status": "errmessage", "text": "The room has been closed after being idle"
                }  # fmt: skip
                await client.error("pollMsg", 403, mylast=client.last)
            await alice.error("joinRoom", 403, user="alice", userpass="alice-password")


async def test_closed_room_keys_are_dead_for_every_action(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http:
            alice, bob = await open_room(http, "alice", "bob")
            await alice.ok("closeRoom")
            await bob.ok("pollMsg", mylast=bob.last)  # the one errmessage
            for client in (alice, bob):
                for action, extra in ACTIONS:
                    await client.error(action, 403, **extra)
            # a new room of the same name does not take old keys
            await RoomClient(http, "den", "alice").create("alice-password")
            for client in (alice, bob):
                await client.error("pollMsg", 403, mylast=0)
            # an administrator closing the session is a close too (next housekeeping)
            carol = RoomClient(http, "den", "alice")
            await carol.join("alice-password")
            core = daemon.ctx.chat.core
            core.close(core.find("den"), "closed by an administrator")
            rooms_of(daemon).housekeeping()
            assert await carol.ok("pollMsg", mylast=carol.last) == {
                "status": "errmessage", "text": "The room has been closed by an administrator"
            }  # fmt: skip


async def test_a_room_admits_no_chat_member_and_reads_the_admin_s_message(
    daemon: RunningDaemon,
) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http:
            alice, bob = await open_room(http, "alice", "bob", room="x")
            core = daemon.ctx.chat.core
            zed = Member("zed", kind="chat")
            core.connect(zed)
            with pytest.raises(PermissionDenied, match="encrypted room"):
                core.join(zed, "x")  # the channel x is the room x: closed to the chat
            session = rooms_of(daemon).find("x").session
            assert zed.id not in session.members
            core.system(session, "maintenance at noon", "warn")  # e.g. the admin's message
            for client in (alice, bob):
                assert await client.read_new() == [
                    ("SYSTEM", "0", "syswarn", "maintenance at noon")
                ]
            # encrypted once per event, not once per reader
            line = session.history[-1]
            assert decrypt_payload(alice.syskey, str(line.frames["room"]))["text"] == (
                "maintenance at noon"
            )
            # a chat member is no room user: not a direct-message target, not kickable
            await alice.error("sendDirectMsg", 400, msg=payload(), to="zed")
            await alice.error("kickUser", 400, kick="zed")

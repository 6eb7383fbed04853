"""Rooms and the chat (issue 13, items 6 and 7), over the real listeners: a chat guest
named like a room's owner moderates nothing (operators are identities, not names), and
a room admits no chat member, so its SYSTEM notices and ciphertexts never reach the
chat while chat channels work as before."""

from __future__ import annotations

import httpx
import trio

from tests.helpers.chat import chat
from tests.helpers.daemon import RunningDaemon, login
from tests.helpers.rooms import RoomClient

ALICE, BOB = "alice-password-1", "bob-password-12"


async def _room(http: httpx.AsyncClient) -> tuple[RoomClient, RoomClient]:
    """Room ``den``: its owner alice and bob, both joined."""
    alice, bob = RoomClient(http, "den", "alice"), RoomClient(http, "den", "bob")
    await alice.create(ALICE)
    await alice.join(ALICE)
    await alice.ok("inviteUser", invite="bob", **{"pass": BOB})
    await bob.join(BOB)
    return alice, bob


async def test_a_guest_named_like_a_room_s_owner_moderates_nothing(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http:
            alice, bob = await _room(http)
            async with chat(daemon, "alice") as impostor:  # a guest: no account is alice
                for line in ("/kick bob", "/ban bob", "/mute alice", "/op alice", "/deop alice"):
                    await impostor.send(0, dest="#den", message=line)
                    assert "join den" in await impostor.error()
                session = daemon.ctx.chat.core.find("den")
                assert {m.name for m in session.members.values()} == {"alice", "bob"}
                assert not session.muted
            # the room is untouched: bob reads on, the owner (by identity) still moderates
            assert (await bob.ok("pollMsg", mylast=bob.last))["status"] != "errmessage"
            await alice.ok("kickUser", kick="bob")
            assert (await bob.ok("pollMsg", mylast=bob.last))["status"] == "errmessage"


async def test_operators_are_identities_in_chat_channels_too(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http:
            token = await login(http)
        async with chat(daemon, "carl") as carl, chat(daemon, "dora") as dora:
            await carl.join("#lobby")  # carl founds it: its operator, as this connection
            await dora.join("#lobby")
            await carl.send(0, dest="lobby", message="/op dora")
            await dora.expect(0, notice="op", target="dora")
            await carl.send(4, channel="#elsewhere")
            await carl.expect(4, channel="elsewhere")
        # carl and dora are gone; a new guest under dora's name is nobody's operator
        async with chat(daemon, "dora") as again, chat(daemon, "admin", token) as admin:
            await admin.join("#lobby")
            await again.join("#lobby")
            await again.send(0, dest="lobby", message="/kick admin")
            assert "operators" in await again.error()
            await admin.send(0, dest="lobby", message="/kick dora")  # ADMIN: a moderator
            await again.expect(5, user="dora", channel="lobby")


async def test_a_room_admits_no_chat_member(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http:
            token = await login(http)
            alice, _bob = await _room(http)
            async with chat(daemon, "carl") as carl, chat(daemon, "admin", token) as admin:
                for member in (carl, admin):  # a guest, and an ADMIN (a moderator)
                    await member.send(4, channel="#den")
                    assert "encrypted room" in await member.error()
                    await member.send(6, channel="den")
                    assert "no channel den" in await member.error()
                    await member.send(0, dest="den", message="hello\nSYSTEM: the room is closed")
                    assert "den" in await member.error()
                # what the room hears does not reach the chat; the chat works as before
                await alice.say("a secret")
                await alice.ok("inviteUser", invite="erin", **{"pass": "erin-password-1"})
                await carl.join("#lobby")
                await admin.join("#lobby")
                await carl.send(0, dest="lobby", message="hi")
                await admin.expect(0, user="carl", message="hi")
                for member in (carl, admin):
                    assert not [
                        f for f in member.seen if "den" in (f.get("dest"), f.get("channel"))
                    ]
            session = daemon.ctx.chat.core.find("den")
            assert {m.kind for m in session.members.values()} == {"room"}
            # the room's users read only the room's own messages and SYSTEM's notices
            read = await alice.read_new()
            assert {sender for sender, *_ in read} == {"alice", "SYSTEM"}
            assert not [text for *_, text in read if "carl" in text or "closed" in text]

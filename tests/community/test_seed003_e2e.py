"""Seed 003 end to end, following the seed document literally: a channel conversation
of three nicks over real WebSockets, every frame checked whole (the seed's keys, plus
``time`` on every server message, which the origin's clients read)."""

from __future__ import annotations

from typing import Any

import trio

from tests.helpers.chat import Chat, chat
from tests.helpers.daemon import RunningDaemon
from tests.helpers.ws import client_socket_leak_tolerated


def without_time(frame: dict[str, Any]) -> dict[str, Any]:
    assert isinstance(frame.pop("time"), float)
    return frame


async def frames(client: Chat, count: int) -> list[dict[str, Any]]:
    """The next ``count`` frames, in order, ``time`` checked and taken out."""
    return [without_time(await client.next()) for _ in range(count)]


async def test_a_channel_conversation_of_three_nicks(daemon: RunningDaemon) -> None:
    async def body() -> None:
        # Connection: /chat/login/%NICK%; the server broadcasts "log in" (type 2) to
        # everyone after a client connects; the client does not have to send it.
        async with chat(daemon, "alice") as alice:
            async with chat(daemon, "bob") as bob, chat(daemon, "carol") as carol:
                assert without_time(carol.login) == {"type": 2, "user": "carol"}
                assert await frames(alice, 2) == [
                    {"type": 2, "user": "bob"},
                    {"type": 2, "user": "carol"},
                ]
                assert await frames(bob, 1) == [{"type": 2, "user": "carol"}]
                await conversation(alice, bob, carol)
                # bob logged out in the conversation; carol leaves without one
            assert await frames(alice, 1) == [{"type": 3, "user": "carol"}]
            await alice.send(6)
            assert await frames(alice, 1) == [{"type": 6, "users": ["alice"]}]

    with trio.fail_after(20), client_socket_leak_tolerated():
        await body()


async def conversation(alice: Chat, bob: Chat, carol: Chat) -> None:
    everyone = (alice, bob, carol)
    # Join a channel: the sharp is optional and stripped, "django" and "#django" are
    # the same channel; all users in the channel are told, the joiner included.
    await alice.send(4, channel="#django")
    assert await frames(alice, 1) == [{"type": 4, "channel": "django", "user": "alice"}]
    await bob.send(4, channel="django")
    for client in (alice, bob):
        assert await frames(client, 1) == [{"type": 4, "channel": "django", "user": "bob"}]
    await carol.send(4, channel="##django")
    for client in everyone:
        assert await frames(client, 1) == [{"type": 4, "channel": "django", "user": "carol"}]

    # Send a message: broadcast to everybody who joined, with the sender's nick.
    await alice.send(0, dest="#django", message="hello world")
    for client in everyone:
        assert await frames(client, 1) == [
            {"type": 0, "dest": "django", "message": "hello world", "user": "alice"}
        ]
    await bob.send(0, dest="django", message="hi alice")
    await carol.send(0, dest="#django", message="hey both")
    for client in everyone:
        assert await frames(client, 2) == [
            {"type": 0, "dest": "django", "message": "hi alice", "user": "bob"},
            {"type": 0, "dest": "django", "message": "hey both", "user": "carol"},
        ]

    # List connected users: every nick on the server.
    await carol.send(6)
    assert await frames(carol, 1) == [{"type": 6, "users": ["alice", "bob", "carol"]}]

    # Leave a channel: the sharp stripped likewise; the channel's users are told.
    await carol.send(5, channel="#django")
    for client in everyone:
        assert await frames(client, 1) == [{"type": 5, "channel": "django", "user": "carol"}]
    await alice.send(0, dest="#django", message="carol left")
    for client in (alice, bob):
        assert (await frames(client, 1))[0]["message"] == "carol left"
    await carol.send(6)  # carol's next frame is this answer, not alice's message
    assert await frames(carol, 1) == [{"type": 6, "users": ["alice", "bob", "carol"]}]

    # Log out: the server closes bob's connection and tells the remaining clients.
    await bob.send(3)
    assert await bob.closed() == 1000
    assert bob.seen == []
    assert await frames(alice, 2) == [
        {"type": 5, "channel": "django", "user": "bob", "reason": "logged out"},
        {"type": 3, "user": "bob"},
    ]
    assert await frames(carol, 1) == [{"type": 3, "user": "bob"}]

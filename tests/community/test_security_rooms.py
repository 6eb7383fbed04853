"""Flooding and guessing through the real listeners: ``createRoom`` per address and
the rooms' own cap (rooms never take the chat's places), rooms that need an account,
and wrong room and channel passwords refused per address and per session while the
session's own users still get in (once-per-burst audit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from leosuite.store import audit
from tests.helpers.chat import chat, chat_daemon
from tests.helpers.daemon import RunningDaemon, login
from tests.helpers.rooms import RoomClient
from tests.helpers.sources import admin_client, chat_from, http_from

OWNER_PASS = "alice-password"
RATE_LIMITED = "rate_limited"


async def rule_breaks(daemon: RunningDaemon, ip: str) -> list[str]:
    """The ``RuleBreak`` audit entries of ``ip`` (the chat's records are written by a
    background task: wait until it has written every record queued so far)."""
    # The drain task takes the next record only once the last one is written: an empty
    # queue with the task waiting on it means nothing is queued or being written.
    records = daemon.ctx.chat._records_out
    while (stats := records.statistics()).current_buffer_used or not stats.tasks_waiting_receive:
        await trio.sleep(0.01)
    entries = await daemon.ctx.db.call(
        lambda conn: audit.page(conn, newest_first=False, limit=10_000)
    )
    return [e.message for e in entries if e.topic == "RuleBreak" and e.user_ip == ip]


def rate_limited(answer: dict[str, Any]) -> str:
    assert answer["error_type"] == RATE_LIMITED, answer
    text: str = answer["text"]
    return text


async def open_den(http: httpx.AsyncClient) -> RoomClient:
    """Room ``den``, owned by alice (from 127.0.0.1), who has not joined yet."""
    alice = RoomClient(http, "den", "alice")
    await alice.create(OWNER_PASS)
    return alice


# -- createRoom -------------------------------------------------------------------------


async def test_room_creation_is_limited_per_address(tmp_path: Path) -> None:
    async with chat_daemon(tmp_path) as daemon:  # the defaults: 20 an hour per address
        with trio.fail_after(60):
            async with http_from(daemon, "127.0.0.2") as flood, daemon.http() as user:
                for n in range(20):
                    await RoomClient(flood, f"flood{n}", "mallory").create("mallory-pass")
                answer = await RoomClient(flood, "flood20", "mallory").error(
                    "createRoom", 429, owner="mallory", **{"pass": "mallory-pass"}
                )
                assert "an hour" in rate_limited(answer)
                assert daemon.ctx.chat.core.find("flood20") is None
                # another address still opens a room, and the chat still opens channels
                await RoomClient(user, "mine", "alice").create(OWNER_PASS)
            async with chat(daemon, "carol") as carol:
                await carol.join("#lobby")


async def test_rooms_have_their_own_cap_apart_from_the_chats(tmp_path: Path) -> None:
    limits = {"room_count_limit": 3, "session_count_limit": 2}
    async with chat_daemon(tmp_path, community=limits) as daemon:
        with trio.fail_after(60):
            sources = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
            for n, source in enumerate(sources):
                async with http_from(daemon, source) as http:
                    room = RoomClient(http, f"room{n}", "mallory")
                    if n < 3:
                        await room.create("mallory-pass")
                    else:
                        answer = await room.error(
                            "createRoom", 400, owner="mallory", **{"pass": "mallory-pass"}
                        )
                        assert answer["error_type"] == "conflict"
                        assert "room limit" in answer["text"]
            # three rooms are open, and the chat still has both of its places
            async with chat(daemon, "carol") as carol:
                await carol.join("#one")
                await carol.join("#two")
                await carol.send(4, channel="#three")
                assert "session limit" in await carol.error()


async def test_rooms_can_require_an_account(tmp_path: Path) -> None:
    async with chat_daemon(tmp_path, community={"rooms_require_account": True}) as daemon:
        with trio.fail_after(60):
            async with daemon.http() as http:
                room = RoomClient(http, "den", "alice")
                for extra in ({}, {"token": "0" * 64}):
                    answer = await room.error(
                        "createRoom", 403, owner="alice", **{"pass": OWNER_PASS}, **extra
                    )
                    assert "needs an account" in answer["text"]
                assert daemon.ctx.chat.core.find("den") is None
                token = await login(http)
                await room.ok("createRoom", owner="alice", token=token, **{"pass": OWNER_PASS})
                bearer = {"Authorization": f"Bearer {token}"}
                payload = {"roomName": "den2", "owner": "bob", "pass": OWNER_PASS}
                response = await http.post(
                    "/rooms", json={"action": "createRoom", "payload": payload}, headers=bearer
                )
                assert response.status_code == 200, response.text
                # joining needs no account: the room's own credentials
                await room.join(OWNER_PASS)


# -- room passwords ---------------------------------------------------------------------


async def test_room_password_guessing_is_refused_per_address(tmp_path: Path) -> None:
    async with chat_daemon(tmp_path) as daemon:  # the defaults: 10 wrong per address
        with trio.fail_after(60):
            async with daemon.http() as own, http_from(daemon, "127.0.0.2") as http:
                alice = await open_den(own)
                guesser = RoomClient(http, "den", "alice")
                for n in range(10):
                    await guesser.error("joinRoom", 403, user="alice", userpass=f"guess-{n}")
                # now refused before any password is checked, the right one too
                for password in ("guess-10", OWNER_PASS):
                    answer = await guesser.error("joinRoom", 429, user="alice", userpass=password)
                    assert "from this address" in rate_limited(answer)
                # a room that does not exist: the same refusal (it tells nothing)
                answer = await RoomClient(http, "nowhere", "x").error(
                    "joinRoom", 429, user="x", userpass="whatever-1"
                )
                rate_limited(answer)
                # the owner, from her own address, is not locked out
                await alice.join(OWNER_PASS)
            # one entry per burst: the first wrong password, the first refusal
            assert await rule_breaks(daemon, "127.0.0.2") == [
                "wrong password for den",
                "password attempt for den refused: too many wrong passwords from this address",
            ]
            assert await rule_breaks(daemon, "127.0.0.1") == []


async def test_a_room_under_attack_refuses_its_guessers_not_its_users(tmp_path: Path) -> None:
    limits = {"wrong_passwords_per_ip": 3, "wrong_passwords_per_session": 6}
    async with chat_daemon(tmp_path, community=limits) as daemon:
        with trio.fail_after(60):
            async with daemon.http() as own:
                alice = await open_den(own)
                await alice.join(OWNER_PASS)
                await alice.ok("inviteUser", invite="bob", **{"pass": "bob-password"})
            for source in ("127.0.0.2", "127.0.0.3"):
                async with http_from(daemon, source) as http:
                    guesser = RoomClient(http, "den", "bob")
                    for n in range(3):
                        await guesser.error("joinRoom", 403, user="bob", userpass=f"guess-{n}")
            async with http_from(daemon, "127.0.0.4") as http:
                guesser = RoomClient(http, "den", "bob")
                # a fresh address may still try once; having guessed wrong, it waits
                await guesser.error("joinRoom", 403, user="bob", userpass="guess-x")
                answer = await guesser.error("joinRoom", 429, user="bob", userpass="guess-y")
                assert "for den" in rate_limited(answer)
                # other rooms are not under attack
                other = RoomClient(http, "other", "carol")
                await other.create("carol-password")
                await other.join("carol-password")
            # bob, from an address that never guessed wrong, gets in
            async with http_from(daemon, "127.0.0.5") as http:
                await RoomClient(http, "den", "bob").join("bob-password")


# -- channel passwords ------------------------------------------------------------------


async def test_channel_password_guessing_is_refused_per_address(tmp_path: Path) -> None:
    async with chat_daemon(tmp_path) as daemon:
        with trio.fail_after(60):
            async with chat(daemon, "owner") as owner:
                await owner.join("#vault")
                async with admin_client(daemon) as admin:
                    response = await admin.put("/session/vault/", json={"password": "sesame-42"})
                    assert response.status_code == 200, response.text
                async with chat_from(daemon, "mallory", "127.0.0.2") as mallory:
                    for n in range(10):
                        await mallory.send(4, channel="#vault", password=f"guess-{n}")
                        assert "needs a password" in await mallory.error()
                    for password in ("guess-10", "sesame-42"):
                        await mallory.send(4, channel="#vault", password=password)
                        error = await mallory.error()
                        assert "too many wrong passwords from this address" in error
                    assert mallory.nick not in daemon.ctx.chat.core.find("vault").names()
                    # a user elsewhere with the password joins
                    async with chat(daemon, "friend") as friend:
                        await friend.send(4, channel="#vault", password="sesame-42")
                        await friend.expect(4, user="friend", channel="vault")
            breaks = await rule_breaks(daemon, "127.0.0.2")
            assert breaks == [
                "wrong password for vault",
                "password attempt for vault refused: too many wrong passwords from this address",
            ]


@pytest.mark.parametrize("first", ["room", "channel"])
async def test_rooms_and_channels_share_one_count(tmp_path: Path, first: str) -> None:
    """A guesser cannot double its tries by switching protocols."""
    async with chat_daemon(tmp_path, community={"wrong_passwords_per_ip": 2}) as daemon:
        with trio.fail_after(60):
            async with daemon.http() as own:
                await open_den(own)
            async with chat(daemon, "owner") as owner:
                await owner.join("#vault")
                async with admin_client(daemon) as admin:
                    response = await admin.put("/session/vault/", json={"password": "sesame-42"})
                    assert response.status_code == 200, response.text
                async with (
                    http_from(daemon, "127.0.0.2") as http,
                    chat_from(daemon, "mallory", "127.0.0.2") as mallory,
                ):
                    room = RoomClient(http, "den", "alice")

                    async def guess_room(status: int) -> None:
                        await room.error("joinRoom", status, user="alice", userpass="guess-1")

                    async def guess_channel(refused: bool) -> None:
                        await mallory.send(4, channel="#vault", password="guess-1")
                        error = await mallory.error()
                        assert ("too many" in error) is refused, error

                    if first == "room":
                        await guess_room(403)
                        await guess_channel(refused=False)
                        await guess_room(429)
                    else:
                        await guess_channel(refused=False)
                        await guess_room(403)
                        await guess_channel(refused=True)

"""Concurrent wrong passwords through the real listeners: an attempt counts from the
moment it is admitted, so a burst of simultaneous ``joinRoom`` or channel joins from
one address gets no more password checks than the limit allows, while the right
password from another address still gets in."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.helpers.chat import chat, chat_daemon
from tests.helpers.rooms import RoomClient
from tests.helpers.sources import admin_client, chat_from, http_from

OWNER_PASS = "alice-password"


async def test_concurrent_room_guesses_get_at_most_the_limit_checked(tmp_path: Path) -> None:
    async with chat_daemon(tmp_path) as daemon:  # the defaults: 10 wrong per address
        with trio.fail_after(60):
            async with daemon.http() as own, http_from(daemon, "127.0.0.2") as http:
                alice = RoomClient(own, "den", "alice")
                await alice.create(OWNER_PASS)
                statuses: list[int] = []

                async def guess(n: int) -> None:
                    response = await RoomClient(http, "den", "alice").call(
                        "joinRoom", user="alice", userpass=f"guess-{n}"
                    )
                    statuses.append(response.status_code)

                async with trio.open_nursery() as nursery:
                    for n in range(30):
                        nursery.start_soon(guess, n)
                assert sorted(statuses) == [403] * 10 + [429] * 20, statuses
                # the owner, from her own address, gets in
                await alice.join(OWNER_PASS)


async def test_concurrent_channel_guesses_get_at_most_the_limit_checked(tmp_path: Path) -> None:
    async with chat_daemon(tmp_path, community={"wrong_passwords_per_ip": 2}) as daemon:
        with trio.fail_after(60):
            async with chat(daemon, "owner") as owner:
                await owner.join("#vault")
                async with admin_client(daemon) as admin:
                    response = await admin.put("/session/vault/", json={"password": "sesame-42"})
                    assert response.status_code == 200, response.text
                errors: list[str] = []

                async def guess(n: int) -> None:
                    async with chat_from(daemon, f"mallory{n}", "127.0.0.2") as mallory:
                        await mallory.send(4, channel="#vault", password=f"guess-{n}")
                        errors.append(await mallory.error())

                async with trio.open_nursery() as nursery:
                    for n in range(6):
                        nursery.start_soon(guess, n)
                checked = [e for e in errors if "needs a password" in e]
                refused = [e for e in errors if "too many wrong passwords" in e]
                assert (len(checked), len(refused)) == (2, 4), errors
                async with chat(daemon, "friend") as friend:
                    await friend.send(4, channel="#vault", password="sesame-42")
                    await friend.expect(4, user="friend", channel="vault")

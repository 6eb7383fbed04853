"""A channel opened with a password (type 4 with ``password`` naming a new channel) keeps
it: another account is refused without it or with a wrong one and admitted with it;
moderators get past it; a hostile password opens nothing; two members opening one
channel at once with different passwords leave exactly one of them in it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import trio

from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.chat import Chat, chat, chat_daemon, core_of
from tests.helpers.chat_tokens import token_chat
from tests.helpers.daemon import RunningDaemon, login


@asynccontextmanager
async def account_chat(daemon: RunningDaemon, name: str, *flags: str) -> AsyncIterator[Chat]:
    """A chat client logged in with the token of a new account ``name``."""
    await add_account(daemon, name, *flags)
    async with daemon.http() as http:
        token = await login(http, name, PASSWORD)
    async with token_chat(daemon.endpoints.ws, name, token) as client:
        yield client


async def test_the_password_of_a_new_channel_is_required(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        async with (
            account_chat(daemon, "alice") as alice,
            account_chat(daemon, "bob") as bob,
        ):
            await alice.send(4, channel="#vault", password="sesame-42")
            await alice.expect(4, user="alice", channel="vault")
            vault = core_of(daemon).find("vault")
            assert vault is not None
            assert vault.password_hash is not None
            assert "sesame-42" not in vault.password_hash

            await bob.send(4, channel="#vault")
            assert await bob.error() == "vault needs a password"
            await bob.send(4, channel="vault", password="sesame-43")
            assert await bob.error() == "vault needs a password"
            assert vault.names() == ["alice"]

            await bob.send(4, channel="VAULT", password="sesame-42")
            await bob.expect(4, user="bob", channel="vault")
            assert await alice.expect(4, user="bob", channel="vault")
            assert sorted(vault.names()) == ["alice", "bob"]


async def test_moderators_pass_and_an_empty_password_is_none(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        async with (
            account_chat(daemon, "alice") as alice,
            account_chat(daemon, "mona", "MOD") as mona,
            chat(daemon, "guest") as guest,
        ):
            await alice.send(4, channel="vault", password="sesame-42")
            await alice.expect(4, user="alice", channel="vault")
            await mona.send(4, channel="vault")  # a moderator needs no password
            await mona.expect(4, user="mona", channel="vault")

            await alice.send(4, channel="open", password="")
            await alice.expect(4, user="alice", channel="open")
            open_channel = core_of(daemon).find("open")
            assert open_channel is not None
            assert open_channel.password_hash is None
            await guest.join("open")


async def test_hostile_passwords_open_nothing(tmp_path: Path) -> None:
    community = {"channel_creations_per_minute": 1}
    async with chat_daemon(tmp_path, community=community) as daemon:
        with trio.fail_after(60):
            async with chat(daemon, "mallory") as mallory:
                for password in ("p" * 257, "nul\x00inside"):
                    await mallory.send(4, channel="trap", password=password)
                    error = await mallory.error()
                    assert error == "a channel password is at most 256 characters, without NUL"
                    assert core_of(daemon).find("trap") is None
                await mallory.send(4, channel="first", password="p" * 256)
                await mallory.expect(4, user="mallory", channel="first")
                # the creation limit refuses before the password is hashed, and opens nothing
                await mallory.send(4, channel="second", password="sesame-42")
                assert "new channels a minute" in await mallory.error()
                assert core_of(daemon).find("second") is None
                await mallory.send(4, channel="bad name", password="sesame-42")
                assert "space" in await mallory.error()


async def test_one_channel_opened_twice_at_once_keeps_one_password(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        async with chat(daemon, "alice") as alice, chat(daemon, "bob") as bob:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(partial(alice.send, 4, channel="den", password="alice-pw"))
                nursery.start_soon(partial(bob.send, 4, channel="den", password="bob-pw"))
            outcomes = []
            for client in (alice, bob):
                frame = await client.next(lambda f: f["type"] in (-1, 4))
                outcomes.append(frame["user"] if frame["type"] == 4 else frame["message"])
            den = core_of(daemon).find("den")
            assert den is not None
            assert len(den.names()) == 1
            assert sorted(outcomes) == sorted([den.names()[0], "den needs a password"])

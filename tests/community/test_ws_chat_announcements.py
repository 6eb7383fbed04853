"""Logins and logouts announced together: a crowd's announcements reach each member in
one write, every member hears each once, and nothing a user does reaches anyone before
its login."""

from __future__ import annotations

import os

import pytest
import trio

from leosuite.api.ws import fanout
from leosuite.community.models import Member
from tests.helpers.chat import chat, chat_url, core_of
from tests.helpers.daemon import RunningDaemon
from tests.helpers.ws import RawClient


def _writes_naming(monkeypatch: pytest.MonkeyPatch, word: bytes) -> list[bytes]:
    """Every ``os.write`` of the chat's outboxes whose bytes contain ``word``."""
    seen: list[bytes] = []
    real = os.write

    def write(fd: int, data: bytes | memoryview) -> int:
        if word in bytes(data):
            seen.append(bytes(data))
        return real(fd, data)

    monkeypatch.setattr(fanout.os, "write", write)
    return seen


async def test_the_logins_of_one_moment_reach_a_member_in_one_write(
    daemon: RunningDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(20):
        async with chat(daemon, "alice") as alice:
            writes = _writes_naming(monkeypatch, b"faraway")
            (presence,) = core_of(daemon).on_presence  # users of other nodes
            for n in range(5):
                presence("login", f"faraway{n}")
            for n in range(5):
                assert (await alice.next())["user"] == f"faraway{n}"
            assert len(writes) == 1
            assert writes[0].count(b"faraway") == 5


async def test_nothing_reaches_a_member_before_the_login_it_follows(
    daemon: RunningDaemon,
) -> None:
    """A login still queued when something else is delivered is written first."""
    with trio.fail_after(20):
        async with chat(daemon, "alice") as alice:
            await alice.join("#hall")
            core = core_of(daemon)
            (presence,) = core.on_presence
            presence("login", "faraway")
            carol = Member(
                "carol", ip="10.0.0.3", deliver=lambda _e: True, disconnect=lambda _r: None
            )
            core.connect(carol)
            core.join(carol, "#hall")  # delivered to alice at once, in this same moment
            frames = [await alice.next(), await alice.next()]
            assert [(f["type"], f["user"]) for f in frames] == [(2, "faraway"), (4, "carol")]


async def test_a_crowd_logging_in_at_once_is_announced_once_each_login_first(
    daemon: RunningDaemon,
) -> None:
    crowd = [f"crowd{n}" for n in range(20)]
    with trio.fail_after(30):
        async with chat(daemon, "watcher") as watcher:
            firsts: dict[str, dict[str, object]] = {}

            async def one(nick: str, done: trio.Event) -> None:
                async with RawClient.open(chat_url(daemon, nick)) as client:
                    while client.count() < 1:
                        assert await client.read_some()
                    firsts[nick] = client.messages()[0]
                    await done.wait()

            done = trio.Event()
            async with trio.open_nursery() as nursery:
                for nick in crowd:
                    nursery.start_soon(one, nick, done)
                heard: list[str] = []
                while len(heard) < len(crowd):
                    frame = await watcher.expect(2)
                    heard.append(str(frame["user"]))
                done.set()
            assert sorted(heard) == sorted(crowd)  # each once
            for nick in crowd:  # a member's own login is the first thing it gets
                assert (firsts[nick]["type"], firsts[nick]["user"]) == (2, nick)
            gone: list[str] = []
            while len(gone) < len(crowd):  # and each logout once
                gone.append(str((await watcher.expect(3))["user"]))
            assert sorted(gone) == sorted(crowd)

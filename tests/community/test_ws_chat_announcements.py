"""Logins and logouts announced together: a crowd's announcements reach each member in
one write, every member hears each once, and nothing a user does reaches anyone before
its login."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import trio
from wsproto.events import TextMessage

from leosuite.api.ws.chat import SLOW, WsChat
from leosuite.community.models import ChatEvent, Member
from tests.helpers.chat import chat, chat_daemon, chat_url, core_of, keep
from tests.helpers.daemon import RunningDaemon
from tests.helpers.ws import RawClient, client_socket_leak_tolerated


def _writes_naming(monkeypatch: pytest.MonkeyPatch, word: bytes) -> list[bytes]:
    """Every ``os.write`` of this process (the daemon runs in it) whose bytes contain
    ``word``."""
    seen: list[bytes] = []
    real = os.write

    def write(fd: int, data: bytes | memoryview) -> int:
        if word in bytes(data):
            seen.append(bytes(data))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
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


def _chat_of(daemon: RunningDaemon) -> WsChat:
    (presence,) = core_of(daemon).on_presence
    chat_ = presence.__self__  # type: ignore[attr-defined]
    assert isinstance(chat_, WsChat)
    return chat_


async def test_a_member_closed_as_it_logs_in_still_gets_its_login_first(
    daemon: RunningDaemon,
) -> None:
    with trio.fail_after(20), client_socket_leak_tolerated():
        core, wschat = core_of(daemon), _chat_of(daemon)
        async with chat(daemon, "watcher") as watcher:

            async def ban_on_login() -> None:
                """Disconnects the victim while its login is still queued for the others."""
                while True:
                    for client in list(wschat.clients.values()):
                        if client.member.name == "victim" and wschat._announcements:
                            core.disconnect(client.member, "banned")
                            return
                    await trio.lowlevel.checkpoint()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(ban_on_login)
                async with RawClient.open(chat_url(daemon, "victim")) as victim:
                    while await victim.read_some():
                        pass
                    frames = victim.messages()
            assert [(f["type"], f["user"]) for f in frames] == [(2, "victim")]
            await watcher.expect(2, user="victim")
            await watcher.expect(3, user="victim")


async def test_a_member_too_slow_for_the_announcements_is_dropped_its_channel_told_why(
    tmp_path: Path,
) -> None:
    ws = {"request_rate": 1e6, "request_burst": 1_000_000}
    with trio.fail_after(30), client_socket_leak_tolerated():
        async with chat_daemon(tmp_path, ws=ws, community={"chat_queue_size": 8}) as daemon:
            core, wschat = core_of(daemon), _chat_of(daemon)
            (presence,) = core.on_presence
            # The channel's other member reads everything at once (it is in the core).
            inbox: list[ChatEvent] = []
            watcher = Member(
                "watcher", ip="10.0.0.4", deliver=keep(inbox), disconnect=lambda _r: None
            )
            core.connect(watcher)
            core.join(watcher, "#x")
            async with RawClient.open(chat_url(daemon, "slow"), receive_buffer=4096) as slow:
                join = json.dumps({"type": 4, "channel": "#x"})
                await slow.stream.send_all(slow.proto.send(TextMessage(data=join)))
                while not any(e.kind == "join" and e.user == "slow" for e in inbox):
                    await trio.sleep(0.01)
                n = 0
                while core.nick_taken("slow"):  # it never reads: its queue fills
                    assert n < 3000
                    presence("login", f"{n}-" + "p" * 8000)
                    n += 1
                    await trio.sleep(0)
                    await trio.sleep(0)
                (left,) = [e for e in inbox if e.kind == "leave" and e.user == "slow"]
                assert left.reason == SLOW
                assert wschat._slow == []

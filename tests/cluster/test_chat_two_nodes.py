"""One chat community across two real daemons on one PostgreSQL store: chat clients
connected to node a and to node b join one channel; every message from each reaches
every member in order per sender, a message at the size limit too; member lists show
both nodes' members; a member leaving on b is seen on a; hostile notifications on the
bus are dropped without breaking delivery."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
import trio
from trio_websocket import open_websocket_url

from leosuite.cluster.bus import CHANNEL
from tests.helpers.chat import Chat, refused_at
from tests.helpers.cluster import ClusterNode, cluster

#: Generous: these wait for a result, they do not time it.
DEADLINE = 120


@asynccontextmanager
async def chat_on(node: ClusterNode, nick: str) -> AsyncIterator[Chat]:
    """A guest chat client of ``node`` that has read its own login broadcast."""
    url = f"{node.ws_url}/chat/login/{quote(nick, safe='')}"
    async with open_websocket_url(url, message_queue_size=10_000) as ws:
        client = Chat(ws, nick)
        client.login = await client.expect(2, user=nick)
        yield client


async def messages(client: Chat, count: int) -> list[tuple[str, str]]:
    """The next ``count`` type 0 frames of members (not SYSTEM): (user, message)."""
    got: list[tuple[str, str]] = []
    while len(got) < count:
        frame = await client.next(lambda f: f["type"] == 0 and f["user"] != "SYSTEM")
        got.append((frame["user"], frame["message"]))
    return got


async def until_listed(client: Chat, channel: str, users: list[str]) -> None:
    """Ask for ``channel``'s members (type 6) until they are ``users``."""
    while True:
        await client.send(6, channel=channel)
        if (await client.expect(6, channel=channel))["users"] == users:
            return
        await trio.sleep(0.05)


def _event(data: dict[str, object]) -> str:
    return json.dumps({"kind": "chat", "node": "node-x", "data": data})


def notify(url: str, payloads: list[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for payload in payloads:
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


async def test_a_channel_with_members_on_two_nodes(tmp_path: Path, cluster_store_url: str) -> None:
    async with cluster(tmp_path, cluster_store_url, "node-a", "node-b") as (a, b):
        try:
            await _two_nodes(a, b, cluster_store_url)
        except BaseException:
            for node in (a, b):  # what the daemons logged, in the report
                print(f"--- {node.name} stderr ---\n{node.stderr[-6000:]}")
            raise


async def _two_nodes(a: ClusterNode, b: ClusterNode, cluster_store_url: str) -> None:
    with trio.fail_after(DEADLINE):
        async with chat_on(a, "alice") as alice, chat_on(b, "bob") as bob:
            await alice.expect(2, user="bob")  # bob's login, from the other node
            # One namespace of nicks: a look-alike of a's alice is refused on b.
            refused = await refused_at(f"{b.ws_url}/chat/login/ALICE")
            assert "taken" in refused
            await alice.join("dev")
            await bob.join("dev")
            # Alice joined first: bob's join reaches her as a type 4; bob, like any
            # joiner, finds who was there already in the member list.
            await alice.expect(4, user="bob", channel="dev")
            await until_listed(bob, "dev", ["alice", "bob"])
            await alice.send(6, channel="dev")
            assert (await alice.expect(6))["users"] == ["alice", "bob"]

            big = "é" * 8000 + "x" * 384  # 16 KiB: community.message_max_bytes
            want = {"alice": [f"a{i}" for i in range(30)], "bob": [f"b{i}" for i in range(30)]}
            want["alice"].insert(15, big)
            for i in range(30):
                if i == 15:
                    await alice.send(0, dest="dev", message=big)
                await alice.send(0, dest="dev", message=f"a{i}")
                await bob.send(0, dest="dev", message=f"b{i}")
            for client in (alice, bob):
                got = await messages(client, 61)
                for sender, texts in want.items():
                    assert [t for u, t in got if u == sender] == texts, (client.nick, sender)

            # Hostile notifications on the channel: dropped, delivery goes on.
            say = {"op": "say", "e": "1", "n": "eve", "c": "nowhere", "t": "hi"}
            hostile = [
                _event({"op": "say"}),
                _event({"op": "batch"}),
                _event({**say, "s": 1}),  # a channel nobody is in
                _event({**say, "s": 2, "n": "alice", "c": "dev", "t": "I am alice"}),
            ]
            await trio.to_thread.run_sync(notify, cluster_store_url, hostile)
            await bob.send(0, dest="dev", message="after the noise")
            got = await messages(alice, 1)
            if got[0][0] == "alice@node-x":  # a node claiming alice is shown apart
                assert got[0][1] == "I am alice"
                got = await messages(alice, 1)
            assert got == [("bob", "after the noise")]

            # Bob leaves on b: alice sees it on a, and the member list follows.
            await bob.send(5, channel="dev")
            await alice.expect(5, user="bob", channel="dev")
            await until_listed(alice, "dev", ["alice"])
        async with chat_on(a, "carol") as carol:
            # Bob logged out on b: gone from the list of everyone connected.
            users = ["bob"]
            while "bob" in users:
                await carol.send(6)
                users = (await carol.expect(6, channel=None))["users"]
            assert "carol" in users

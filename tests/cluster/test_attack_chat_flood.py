"""Anyone who may connect to the store's database may ``NOTIFY`` (PostgreSQL asks no
privilege for it), so the chat relay holds what the other nodes say within bounds
that are the cluster's, not each claimed node's: users claimed under many node names
do not add up past the limit on users."""

from __future__ import annotations

import pytest
import trio.testing

from leosuite.cluster import chat_roster
from tests.helpers.chat_relay import LinkedBus, linked_nodes


async def test_users_claimed_under_many_node_names_stay_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chat_roster, "MAX_USERS", 20)
    async with linked_nodes("a", "b") as (a, _b):
        for n in range(4):
            evil = LinkedBus(f"evil{n}", a.bus.group)
            logins = [{"op": "login", "e": "e1", "s": i + 1, "n": f"u{n}x{i}"} for i in range(15)]
            await evil.publish("chat", {"op": "batch", "m": logins})
        await trio.testing.wait_all_tasks_blocked()
        held = sum(len(node.users) for node in a.relay.others.nodes.values())
        assert held <= 20
        assert a.relay.dropped >= 40


@pytest.mark.parametrize("name", ["Evil", "evil\n<b>", "e" * 65, "-x", "évil", "a b"])
async def test_a_node_name_no_node_may_have_is_not_shown(name: str) -> None:
    async with linked_nodes("a", "b") as (a, b):
        a.connect("alice")
        evil = LinkedBus(name, a.bus.group)
        # A nick like a local one is shown as nick@node: the node part is a node's name.
        await evil.publish("chat", {"op": "login", "e": "e1", "s": 1, "n": "alice"})
        await evil.publish("chat", {"op": "login", "e": "e1", "s": 2, "n": "mallory"})
        await trio.testing.wait_all_tasks_blocked()
        assert name not in a.relay.others.nodes
        assert not any(name in shown for shown in a.relay.connected_names())
        assert a.relay.dropped >= 2
        assert b.relay.dropped >= 2

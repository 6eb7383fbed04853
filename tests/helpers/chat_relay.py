"""Chat cores on several nodes joined by relays, in one process: the buses are the
real :class:`~leosuite.cluster.bus.Bus` (subscriptions, bounded buffers, resyncs),
linked so that what one publishes is delivered to the others, as PostgreSQL does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import trio
import trio.testing

from leosuite.cluster.bus import Bus, ClusterEvent, LocalBus
from leosuite.cluster.chat_relay import ChatRelay
from leosuite.community.core import ChatCore
from leosuite.community.models import ChatEvent, ChatLimits, Member

__all__ = ["Inbox", "LinkedBus", "Node", "linked_nodes"]


class LinkedBus(LocalBus):
    """A bus whose events reach the other buses of its ``group`` in publish order."""

    def __init__(self, node: str, group: list[Bus]) -> None:
        super().__init__(node)
        self.group = group
        group.append(self)

    async def publish(self, kind: str, data: Mapping[str, object]) -> None:
        payload = self.encode(kind, data)  # the size limit holds
        event = ClusterEvent(kind=kind, node=self.node, data=dict(data))
        assert len(payload) <= 7900
        self.published += 1
        for bus in self.group:
            bus.deliver(event)
        await trio.lowlevel.checkpoint()


class Inbox:
    """A member's queue of events (as a connection's bounded queue)."""

    def __init__(self) -> None:
        self.events: list[ChatEvent] = []
        self.closed: str | None = None

    def deliver(self, event: ChatEvent) -> bool:
        self.events.append(event)
        return True

    def disconnect(self, reason: str) -> None:
        self.closed = reason

    def of(self, kind: str) -> list[tuple[str, str]]:
        """(user, text or reason) of each event of ``kind``, in order."""
        return [(e.user, e.text or e.reason) for e in self.events if e.kind == kind]


class Node:
    def __init__(self, name: str, group: list[Bus], limits: ChatLimits) -> None:
        self.name = name
        self.bus = LinkedBus(name, group)
        self.core = ChatCore(limits, lambda: 1000.0)
        self.relay = ChatRelay(self.core, self.bus, lambda: 1000.0)
        self.presence: list[tuple[str, str]] = []
        self.core.on_presence.append(lambda kind, name: self.presence.append((kind, name)))
        self.scope = trio.CancelScope()

    async def run(
        self, *, task_status: trio.TaskStatus[ChatRelay] = trio.TASK_STATUS_IGNORED
    ) -> None:
        with self.scope:
            await self.relay.run(task_status=task_status)

    async def stop(self) -> None:
        """Stop this node's relay (it says goodbye) and let the others hear it."""
        self.scope.cancel()
        await trio.testing.wait_all_tasks_blocked()

    def connect(self, nick: str, *, account_id: int | None = None) -> tuple[Member, Inbox]:
        inbox = Inbox()
        member = Member(
            nick,
            ip="10.0.0.1",
            account_id=account_id,
            deliver=inbox.deliver,
            disconnect=inbox.disconnect,
        )
        self.core.connect(member)
        return member, inbox


@asynccontextmanager
async def linked_nodes(*names: str, limits: ChatLimits | None = None) -> AsyncIterator[list[Node]]:
    """Nodes with running relays; stopped (saying goodbye) when the block ends."""
    group: list[Bus] = []
    nodes = [Node(name, group, limits or ChatLimits()) for name in names]
    async with trio.open_nursery() as nursery:
        for node in nodes:
            await nursery.start(node.run)
        await trio.testing.wait_all_tasks_blocked()
        yield nodes
        nursery.cancel_scope.cancel()

"""Events between the nodes of one store: a ban, a token ended, a setting changed on
one daemon reaching every other daemon at once.

:class:`Bus` is what the services use: :meth:`Bus.publish` sends an event to every
*other* node, :meth:`Bus.subscribe` receives the events of one kind that other nodes
sent. Two back-ends:

* :class:`LocalBus` for the SQLite store: one node, nothing to deliver;
* :class:`PgBus` for a PostgreSQL store: ``NOTIFY`` on the channel
  ``leosuite_events``. One dedicated psycopg connection in autocommit mode runs
  ``LISTEN`` and is read on its socket with trio's ``wait_readable`` (no thread per
  wait); publishing runs ``pg_notify`` on a second connection of its own. A lost
  listening connection is opened again with backoff, and idle it is pinged every
  ``ping_interval`` seconds so a silently dead one is found.

An event is JSON of at most :data:`MAX_PAYLOAD` bytes (PostgreSQL's limit is 8000).
Events sent while a node was not listening are lost to it, so every subscriber also
receives ``ClusterEvent(kind=kind, node="", data={"resync": True})`` whenever it may
have missed some (each time the listening connection begins, the first time too, and
when the subscriber fell :data:`SUBSCRIBER_BUFFER` events behind, or its kind's
:data:`BUFFER_OF_KIND`) and then re-reads what it holds from the store.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from ..settings import Settings

if TYPE_CHECKING:
    from .pg_bus import PgBus

__all__ = [
    "CHANNEL",
    "MAX_PAYLOAD",
    "BUFFER_OF_KIND",
    "SUBSCRIBER_BUFFER",
    "Bus",
    "ClusterEvent",
    "LocalBus",
    "PgBus",
    "create_bus",
    "open_bus",
]

log = logging.getLogger("leosuite.cluster")

#: The PostgreSQL notification channel every node listens on.
CHANNEL = "leosuite_events"
#: The largest encoded event, in bytes (PostgreSQL refuses payloads of 8000 and more).
MAX_PAYLOAD = 7900
#: Events a subscriber may fall behind by before it is told to re-read everything.
SUBSCRIBER_BUFFER = 256
#: Events a subscriber of a kind whose every event counts (chat messages, each
#: delivered to its members once) may fall behind by: a burst of that size passes
#: whole, and the bus never waits for a subscriber (bans and ended tokens behind it
#: would wait too).
BUFFER_OF_KIND = {"chat": 4096}


class ClusterEvent(msgspec.Struct, frozen=True, kw_only=True):
    #: "ban", "token", "settings", "server_state", "node", "chat".
    kind: str
    #: The node that published it ("" for a resync the bus makes itself).
    node: str
    data: dict[str, object]

    @property
    def resync(self) -> bool:
        """The subscriber may have missed events: it re-reads what it holds."""
        return self.node == "" and self.data.get("resync") is True


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(ClusterEvent).decode


class _Subscriber:
    """One subscriber's channel: events while it keeps up, else one resync."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.buffer = BUFFER_OF_KIND.get(kind, SUBSCRIBER_BUFFER)
        # One slot beyond the buffer is kept for the resync that overflow sends.
        self.send, self.receive = trio.open_memory_channel[ClusterEvent](self.buffer + 1)

    def _used(self) -> int:
        return self.send.statistics().current_buffer_used

    def offer(self, event: ClusterEvent) -> bool:
        """Queue ``event``; False when it was dropped (a resync stands in for it)."""
        if self._used() < self.buffer:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                self.send.send_nowait(event)
            return True
        self.resync()
        return False

    def resync(self) -> None:
        # A full channel holds a resync in its last slot already (only resyncs take it).
        with contextlib.suppress(
            trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError
        ):
            self.send.send_nowait(ClusterEvent(kind=self.kind, node="", data={"resync": True}))


class Bus:
    """Events to and from the other nodes of the store (see the module's text)."""

    def __init__(self, node: str) -> None:
        #: This node's name: what it puts in the events it publishes.
        self.node = node
        #: Whether events from other nodes are being received right now.
        self.connected = False
        self._subscribers: dict[str, set[_Subscriber]] = {}
        #: Events published, received from other nodes, and dropped for a slow subscriber.
        self.published = 0
        self.received = 0
        self.dropped = 0

    def encode(self, kind: str, data: Mapping[str, object]) -> bytes:
        """The event as sent; ValueError when it is larger than :data:`MAX_PAYLOAD`."""
        payload = _encode(ClusterEvent(kind=kind, node=self.node, data=dict(data)))
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"a {kind!r} event of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
        return payload

    async def publish(self, kind: str, data: Mapping[str, object]) -> None:
        """Send an event to every other node's subscribers of ``kind`` (not to this
        node's); ValueError when it is larger than :data:`MAX_PAYLOAD`."""
        raise NotImplementedError

    @contextlib.contextmanager
    def subscribe(self, kind: str) -> Iterator[trio.MemoryReceiveChannel[ClusterEvent]]:
        """The events of ``kind`` other nodes publish while the block runs."""
        subscriber = _Subscriber(kind)
        subscribers = self._subscribers.setdefault(kind, set())
        subscribers.add(subscriber)
        try:
            with subscriber.receive:
                yield subscriber.receive
        finally:
            subscribers.discard(subscriber)
            if not subscribers:
                self._subscribers.pop(kind, None)
            subscriber.send.close()

    def deliver(self, event: ClusterEvent) -> None:
        """Hand an event another node sent to this node's subscribers of its kind."""
        if event.node == self.node:
            return  # this node's own event: its services acted on it already
        self.received += 1
        for subscriber in list(self._subscribers.get(event.kind, ())):
            if not subscriber.offer(event):
                self.dropped += 1

    def resync_all(self) -> None:
        """Tell every subscriber to re-read what it holds (events may have been lost)."""
        for subscribers in list(self._subscribers.values()):
            for subscriber in list(subscribers):
                subscriber.resync()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Receive other nodes' events; never returns."""
        raise NotImplementedError


class LocalBus(Bus):
    """The bus of a SQLite store: the daemon is the only node, so nothing arrives and
    publishing only checks the event's size."""

    def __init__(self, node: str) -> None:
        super().__init__(node)
        self.connected = True

    async def publish(self, kind: str, data: Mapping[str, object]) -> None:
        self.encode(kind, data)
        self.published += 1
        await trio.lowlevel.checkpoint()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()


def create_bus(settings: Settings, node: str) -> Bus:
    """The bus the store of ``settings`` needs (not yet running: start :meth:`Bus.run`)."""
    if settings.store.url:
        from .pg_bus import PgBus  # only a PostgreSQL store needs psycopg

        return PgBus(settings.store.url, node)
    return LocalBus(node)


@contextlib.asynccontextmanager
async def open_bus(settings: Settings, node: str) -> AsyncIterator[Bus]:
    """A running bus for the store of ``settings``, stopped when the block ends."""
    bus = create_bus(settings, node)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        yield bus
        nursery.cancel_scope.cancel()


def __getattr__(name: str) -> Any:
    # PgBus is importable from here too, loading psycopg only when it is asked for.
    if name == "PgBus":
        from .pg_bus import PgBus

        return PgBus
    raise AttributeError(name)

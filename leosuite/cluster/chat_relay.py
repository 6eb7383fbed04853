"""One chat community across nodes: each node's chat traffic on the bus (kind ``chat``).

Every node keeps its own chat core with the members connected to it. The relay is
that core's :class:`~leosuite.community.peers.Peers`: it publishes what this node's
chat members do (log in and out, join and leave a channel, send a message to a whole
channel) and keeps a roster of the chat users connected to the other nodes, so that:

* a message a member sends to a channel reaches the members of the channel of that
  name on every node, stored in each node's history; those of one sender arrive in
  the order they were sent (one publisher task per node, one ``LISTEN`` queue, one
  receiving task that handles each message to the end before the next);
* remote users' joins and leaves (type 4 and 5 frames), logins and logouts (type 2
  and 3) reach the local chat connections, and member lists (type 6) include them;
* a user of another node is shown under its nick, or as ``nick@node`` when its nick
  looks like one already shown here ('@' is in no local nick); no two shown names look
  alike, and a local user cannot log in under a name shown for a remote one. A node
  speaks only for its own users: what it says of a user is kept under that node's
  name, so it can neither speak for, remove nor rename a user of another node.

What stays on its node: direct messages, SYSTEM lines, moderation (kick, ban, op,
mute act on the node's own members; a name banned from a channel is also refused
from other nodes), rooms (their keys are in one daemon's memory) and channels with a
password, an invite list or ``auth_only``: a channel is relayed only while it has none
of those, on the sending and on the receiving node.

Failures: a message that does not decode, names an impossible nick or channel, or
exceeds this node's ``message_max_bytes`` is dropped and logged (at most one line per
node and minute). A gap in a node's sequence numbers, a bus resync or a restart (a new
epoch) makes the receiver ask for rosters again (:class:`~.chat_wire.Hello`), so the
member lists heal; a node silent for three ping intervals, or saying goodbye, is
forgotten and its users are shown leaving.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping

import msgspec
import trio

from ..auth.limits import Limiter
from ..community.core import ChatCore
from ..community.models import ChatEvent, Member, Session
from ..community.peers import NO_PEERS
from ..errors import InvalidInput
from ..settings import NODE_NAME_RE
from . import chat_wire as wire
from .bus import MAX_PAYLOAD, Bus, ClusterEvent, LocalBus
from .chat_roster import RemoteNode, Roster, relayed_session

__all__ = ["ChatRelay", "relayed_session", "run_chat_relay"]

log = logging.getLogger("leosuite.cluster.chat")


class ChatRelay:
    def __init__(
        self,
        core: ChatCore,
        bus: Bus,
        now: Callable[[], float],
        *,
        ping_interval: float = 10.0,
        queue_size: int = 10_000,
    ) -> None:
        self._core = core
        self._bus = bus
        self._now = now
        self.ping_interval = ping_interval
        self.epoch = secrets.token_hex(8)
        self._seq = 0
        self._out_send, self._out_recv = trio.open_memory_channel[wire.Wire](queue_size)
        #: The chat users of the other nodes.
        self.others = Roster(core, now)
        self._complaints = Limiter(trio.current_time, window=60.0, limit=1, max_keys=1000)
        self._asked_at = -float("inf")
        #: Messages published, received, dropped (bad) and lost (not published).
        self.published = self.received = self.dropped = self.lost = 0
        overhead = msgspec.json.encode({"kind": "chat", "node": bus.node, "data": {}})
        self._fits = MAX_PAYLOAD - len(overhead) - 64

    # -- Peers: this node's members -----------------------------------------------------

    def queued(self) -> int:
        """Messages waiting to be published."""
        return self._out_recv.statistics().current_buffer_used

    def _next(self) -> tuple[str, int]:
        self._seq += 1
        return self.epoch, self._seq

    def _queue(self, make: Callable[[str, int], wire.Wire]) -> None:
        """Queue a message for the publisher; when the queue is full it is lost (its
        sequence number taken, so the other nodes see the gap and ask for rosters)."""
        message = make(*self._next())
        try:
            self._out_send.send_nowait(message)
        except trio.WouldBlock:
            self.lost += 1
            self._complain("", "the chat relay's queue is full: messages to other nodes lost")

    def connected(self, member: Member) -> None:
        self._queue(lambda e, s: wire.Login(epoch=e, seq=s, nick=member.name))

    def disconnected(self, member: Member) -> None:
        self._queue(lambda e, s: wire.Logout(epoch=e, seq=s, nick=member.name))

    def sent(self, session: Session, event: ChatEvent) -> None:
        if session.room is not None:
            return
        nick, channel = event.user, session.name
        if event.kind == "leave":  # always: the other side forgets what it holds
            reason = (event.reason or "left")[: wire.REASON_CHARS]
            self._queue(lambda e, s: wire.Leave(epoch=e, seq=s, nick=nick, channel=channel,
                                                reason=reason))  # fmt: skip
        elif not relayed_session(session):
            return
        elif event.kind == "join":
            self._queue(lambda e, s: wire.Join(epoch=e, seq=s, nick=nick, channel=channel))
        elif event.kind == "message" and event.origin == "chat" and event.text:
            text = event.text
            self._queue(lambda e, s: wire.Say(epoch=e, seq=s, nick=nick, channel=channel,
                                              text=text))  # fmt: skip

    def nick_taken(self, nick: str) -> bool:
        return self.others.nick_taken(nick)

    def names(self, session: Session) -> list[str]:
        return self.others.names(session)

    def connected_names(self) -> list[str]:
        return self.others.connected_names()

    def roster(self) -> dict[str, list[str]]:
        """This node's chat users and the relayed channels each is in."""
        return {
            m.name: [s.name for s in m.sessions.values() if relayed_session(s)]
            for m in self._core.chat_members()
        }

    # -- the tasks ----------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[ChatRelay] = trio.TASK_STATUS_IGNORED
    ) -> None:
        with self._bus.subscribe("chat") as events:
            self._core.peers = self
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._publish_all)
                    nursery.start_soon(self._tick)
                    self._queue(lambda e, s: wire.Hello(epoch=e, seq=s))
                    self._queue(lambda e, s: wire.Roster(epoch=e, seq=s, members=self.roster()))
                    task_status.started(self)
                    await self._receive_all(events)
            finally:
                self._core.peers = NO_PEERS
                with trio.move_on_after(1.0) as scope:
                    scope.shield = True
                    await self._publish(wire.Bye(epoch=self.epoch, seq=self._next()[1]))

    async def _publish(self, *messages: wire.Wire) -> None:
        """Publish ``messages`` in order, as few events as fit (:func:`.chat_wire.batches`)."""
        datas = []
        for message in messages:
            try:
                datas.extend(wire.encode_out(message, self._fits))
            except wire.WireError as exc:
                self.lost += 1
                self._complain("", f"could not publish a chat message: {exc}")
        for data in wire.batches(datas, self._fits):
            try:
                await self._bus.publish("chat", data)
            except Exception as exc:  # a lost connection: the bus reconnects, receivers resync
                self.lost += 1
                self._complain("", f"could not publish a chat message: {exc!r}")
        self.published += len(messages)

    async def _publish_all(self) -> None:
        """Publish what is queued: all that waits goes out together, in order."""
        async for message in self._out_recv:
            messages = [message]
            while len(messages) < wire.MAX_BATCH:
                try:
                    messages.append(self._out_recv.receive_nowait())
                except trio.WouldBlock:
                    break
            await self._publish(*messages)

    async def _tick(self) -> None:
        """Ping the others; forget the nodes silent for three intervals."""
        while True:
            await trio.sleep(self.ping_interval)
            self._queue(lambda e, s: wire.Ping(epoch=e, seq=s))
            cutoff = trio.current_time() - 3 * self.ping_interval
            for name, node in list(self.others.nodes.items()):
                if node.heard < cutoff:
                    self.others.forget(name, "node unreachable")

    async def _receive_all(self, events: trio.MemoryReceiveChannel[ClusterEvent]) -> None:
        async for event in events:
            if event.resync:  # the bus may have lost events: ask for every roster again
                self._ask()
                continue
            if not event.node or event.node == self._bus.node:
                continue
            try:
                items = wire.unbatch(event.data)
            except wire.WireError as exc:
                items = []
                self.dropped += 1
                self._complain(event.node, f"dropped chat messages from node {event.node!r}: {exc}")
            for item in items:
                self._take_logged(event.node, item)

    def _take_logged(self, node: str, data: Mapping[str, object]) -> None:
        """Act on one message of ``node``; one that is bad is dropped and logged."""
        try:
            self._take(node, data)
        except (wire.WireError, InvalidInput) as exc:
            self.dropped += 1
            self._complain(node, f"dropped a chat message from node {node!r}: {exc}")
        except Exception:
            self.dropped += 1
            log.exception("a chat message from node %r failed", node)

    def _complain(self, key: str, text: str) -> None:
        skipped = self._complaints.first(key)
        if skipped is not None:
            log.warning("%s%s", text, f" ({skipped} more since the last)" if skipped else "")

    def _ask(self) -> None:
        """Ask every node for its roster (at most once a second)."""
        if trio.current_time() - self._asked_at >= 1.0:
            self._asked_at = trio.current_time()
            self._queue(lambda e, s: wire.Hello(epoch=e, seq=s))

    # -- what other nodes say -------------------------------------------------------------

    def _take(self, name: str, data: Mapping[str, object]) -> None:
        if NODE_NAME_RE.fullmatch(name) is None:  # it is shown in nick@node
            raise wire.WireError("a bad node name")
        message = wire.decode_in(data)
        node = self.others.node(name)
        node.heard = trio.current_time()
        if isinstance(message, wire.Part):
            whole = node.parts.add(message)
            if whole is None:
                return
            message = whole
        if message.epoch != node.epoch:
            if node.epoch:  # the node restarted: its users of before are gone
                self.others.forget(name, "node restarted", keep=True)
            node.epoch, node.seq = message.epoch, message.seq - 1
        if message.seq <= node.seq:
            raise wire.WireError(f"an old or repeated message ({message.seq})")
        if message.seq != node.seq + 1:
            self._complain(name, f"lost {message.seq - node.seq - 1} chat messages of {name!r}")
            self._ask()
        node.seq = message.seq
        self.received += 1
        self._apply(node, message)

    def _apply(self, node: RemoteNode, message: wire.Wire) -> None:
        if isinstance(message, wire.Hello):
            self._queue(lambda e, s: wire.Roster(epoch=e, seq=s, members=self.roster()))
        elif isinstance(message, wire.Bye):
            self.others.forget(node.name, "node stopped")
        elif isinstance(message, wire.Roster):
            self.others.replace(node, message.members)
        elif isinstance(message, wire.Login):
            self.others.user(node, message.nick)
        elif isinstance(message, wire.Logout):
            self.others.drop_user(node, message.nick, "quit")
        elif isinstance(message, wire.Join):
            self.others.join(node, message.nick, message.channel)
        elif isinstance(message, wire.Leave):
            self.others.leave(node, message.nick, message.channel, message.reason)
        elif isinstance(message, wire.Say):
            self.others.say(node, message)


async def run_chat_relay(
    core: ChatCore,
    bus: Bus,
    now: Callable[[], float],
    *,
    task_status: trio.TaskStatus[ChatRelay | None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The chat relay of a cluster's node; on a one-node bus (the SQLite store) none,
    and the chat core keeps its peers of one node."""
    if isinstance(bus, LocalBus):
        task_status.started(None)
        return
    relay = ChatRelay(core, bus, now)
    await relay.run(task_status=task_status)

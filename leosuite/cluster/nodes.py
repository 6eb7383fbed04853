"""The nodes sharing the store, as this daemon sees them: :class:`NodeDirectory`.

This node writes its row when it starts and its heartbeat every
``node.heartbeat_interval``; each beat also reads every node's row again. A node is
``unreachable`` once its heartbeat has not moved for ``node.heartbeat_timeout``
seconds of this daemon's own clock, so clocks that differ between hosts do not
matter after the first sight (then the age the row shows counts); a node that
announces on the bus that it stops is unreachable at once. This node is always up
for itself.

A ``node`` event on the bus (:mod:`.bus`) says that a node started or stops; the
others read the rows again at once instead of at their next beat (a node marks its
row stopped before it says so: the row, not the event, makes it unreachable).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import re
import sqlite3
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import msgspec
import trio

from .. import __version__
from ..errors import LeosuiteError
from ..settings import NodeSettings
from ..store import nodes as node_table
from ..store.db import Database
from ..store.nodes import NodeRecord
from .fleet_states import RemoteServers

if TYPE_CHECKING:
    from .bus import Bus, ClusterEvent

__all__ = ["NodeDirectory", "NodeView", "url_origin"]

log = logging.getLogger("leosuite.cluster")

NodeState = Literal["up", "unreachable"]


class NodeView(msgspec.Struct, frozen=True, kw_only=True):
    """A node's row with what this daemon makes of it."""

    name: str
    public_url: str
    ws_url: str
    started_at: float
    heartbeat_at: float
    version: str
    state: NodeState
    #: Seconds since its heartbeat last moved, as this daemon saw it.
    heartbeat_age: float
    #: This daemon is that node.
    this: bool

    def as_dict(self) -> dict[str, object]:
        return msgspec.structs.asdict(self)


class _Seen:
    """When this daemon last saw a node's heartbeat move (on trio's clock)."""

    __slots__ = ("beat", "gone", "moved", "record")

    def __init__(self, record: NodeRecord, moved: float) -> None:
        self.record = record
        self.beat = record.heartbeat_at
        self.moved = moved
        #: The node said it stops (until its heartbeat moves again).
        self.gone = False


class NodeDirectory:
    """The nodes of the store (see the module's text); :meth:`run` keeps it current."""

    def __init__(
        self,
        db: Database,
        settings: NodeSettings,
        *,
        now: Callable[[], float],
        public_url: str,
        ws_url: str = "",
        bus: Bus | None = None,
        version: str = __version__,
    ) -> None:
        self._db = db
        self.settings = settings
        self._now = now
        self.bus = bus
        #: This node's name.
        self.name = settings.name
        self.public_url = public_url
        self.ws_url = ws_url
        self.version = version
        self._seen: dict[str, _Seen] = {}
        #: When this node last wrote its heartbeat (trio's clock; -inf before the first).
        self._own_beat = -math.inf
        #: Set whenever the rows were read again (waiters then look at the new view).
        self.changed = trio.Event()
        #: Heartbeats that could not be written (the store was away).
        self.failed_beats = 0
        #: The servers the other nodes run, with their last known states.
        self.remote = RemoteServers(db, self.name)
        self._stopping = False

    # -- the view ------------------------------------------------------------------

    def get(self, name: str) -> NodeRecord | None:
        seen = self._seen.get(name)
        return None if seen is None else seen.record

    def known(self, name: str) -> bool:
        return name in self._seen

    def age(self, name: str) -> float:
        """Seconds since the node's heartbeat last moved (inf for an unknown node)."""
        if name == self.name:
            return max(0.0, trio.current_time() - self._own_beat)
        seen = self._seen.get(name)
        return math.inf if seen is None else max(0.0, trio.current_time() - seen.moved)

    def reachable(self, name: str) -> bool:
        """This node, or a known node whose heartbeat moved within the timeout."""
        if name == self.name:
            return True
        seen = self._seen.get(name)
        return (
            seen is not None and not seen.gone and self.age(name) <= self.settings.heartbeat_timeout
        )

    def state(self, name: str) -> NodeState:
        return "up" if self.reachable(name) else "unreachable"

    def url_of(self, name: str) -> str:
        """The node's HTTP API URL ("" for an unknown node)."""
        if name == self.name:
            return self.public_url
        record = self.get(name)
        return "" if record is None else record.public_url

    def ws_url_of(self, name: str) -> str:
        """The node's WebSocket API URL ("" for an unknown node)."""
        if name == self.name:
            return self.ws_url
        record = self.get(name)
        return "" if record is None else record.ws_url

    def others(self) -> list[str]:
        """The names of the other nodes known, sorted."""
        return sorted(n for n in self._seen if n != self.name)

    def other_origins(self) -> tuple[frozenset[str], frozenset[str]]:
        """The origins of the reachable other nodes' dashboards (``public_url``) and of
        their WebSocket APIs (``ws_url``): a page of one node reads a console from
        another. A node gone (stopped, renamed, a host that left) names none."""
        pages: set[str] = set()
        sockets: set[str] = set()
        for name in self.others():
            record = self.get(name)
            if record is not None and self.reachable(name):
                pages.add(url_origin(record.public_url))
                sockets.add(url_origin(record.ws_url))
        pages.discard("")
        sockets.discard("")
        return frozenset(pages), frozenset(sockets)

    def list(self) -> list[NodeView]:
        """Every node known, by name."""
        views = []
        for name in sorted(self._seen.keys() | {self.name}):
            record = self.get(name) or self._own_record(self._now())
            views.append(
                NodeView(
                    name=name,
                    public_url=self.url_of(name),
                    ws_url=self.ws_url_of(name),
                    started_at=record.started_at,
                    heartbeat_at=record.heartbeat_at,
                    version=record.version,
                    state=self.state(name),
                    heartbeat_age=round(self.age(name), 3),
                    this=name == self.name,
                )
            )
        return views

    # -- the store -------------------------------------------------------------------

    def _own_record(self, at: float) -> NodeRecord:
        return NodeRecord(
            name=self.name,
            public_url=self.public_url,
            ws_url=self.ws_url,
            started_at=at,
            heartbeat_at=at,
            version=self.version,
        )

    def absorb(self, records: Sequence[NodeRecord]) -> None:
        """Take the rows as read now (a node's heartbeat that moved counts from now)."""
        clock, wall = trio.current_time(), self._now()
        for record in records:
            seen = self._seen.get(record.name)
            if seen is None:
                # First sight: as old as its row says (bounded: clocks may differ).
                age = min(
                    max(0.0, wall - record.heartbeat_at), 10 * self.settings.heartbeat_timeout
                )
                self._seen[record.name] = _Seen(record, clock - age)
                self._seen[record.name].gone = record.stopped_at is not None
                continue
            if record.heartbeat_at != seen.beat or record.started_at != seen.record.started_at:
                seen.beat = record.heartbeat_at
                seen.moved = clock
                seen.gone = False
            seen.gone = seen.gone or record.stopped_at is not None
            seen.record = record
        self.changed.set()
        self.changed = trio.Event()

    async def register(self) -> None:
        """Write this node's row (it starts now) and read every node's."""
        record = self._own_record(self._now())

        def write(conn: sqlite3.Connection) -> Sequence[NodeRecord]:
            node_table.register(conn, record)
            return node_table.list_all(conn)

        records = await self._db.call(write)
        self._own_beat = trio.current_time()
        self.absorb(records)

    async def beat(self) -> None:
        """Write this node's heartbeat and read every node's row again."""
        at = self._now()
        own = self._own_record(at)

        def write(conn: sqlite3.Connection) -> Sequence[NodeRecord]:
            if not node_table.heartbeat(conn, self.name, at):
                node_table.register(conn, own)  # its row was removed: written again
            return node_table.list_all(conn)

        records = await self._db.call(write)
        self._own_beat = trio.current_time()
        self.absorb(records)

    async def refresh(self) -> None:
        """Read every node's row again (no write)."""
        self.absorb(await self._db.call(node_table.list_all))

    # -- the task ----------------------------------------------------------------------

    async def _publish(self, state: str) -> None:
        if self.bus is None:
            return
        try:
            data = {"name": self.name, "state": state, "public_url": self.public_url}
            await self.bus.publish("node", data)
        except (LeosuiteError, OSError, ValueError) as exc:
            log.warning(
                "node %s: could not tell the other nodes it is %s: %s", self.name, state, exc
            )

    async def announce_stop(self) -> None:
        """Stop heartbeating and tell the other nodes that this node stops (they show it
        unreachable at their next read, or at once through the bus, instead of after the
        timeout)."""
        self._stopping = True
        with trio.move_on_after(5):
            try:
                await self._db.call(
                    partial(node_table.mark_stopped, name=self.name, at=self._now())
                )
            except LeosuiteError as exc:
                log.warning("node %s: its stop not written: %s", self.name, exc)
            await self._publish("stopping")

    async def _on_events(self, events: trio.MemoryReceiveChannel[ClusterEvent]) -> None:
        # The rows say who stopped (a node marks its row before it says so): anyone on
        # the database may NOTIFY, so an event only makes the rows read again.
        async for _event in events:
            with contextlib.suppress(LeosuiteError):
                await self.refresh()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Register, then heartbeat every interval until cancelled."""
        await self.register()
        with contextlib.ExitStack() as stack:
            async with trio.open_nursery() as nursery:
                if self.bus is not None:
                    events = stack.enter_context(self.bus.subscribe("node"))
                    nursery.start_soon(self._on_events, events)
                await self._publish("up")
                task_status.started()
                while not self._stopping:
                    await trio.sleep(self.settings.heartbeat_interval)
                    if self._stopping:
                        break
                    try:
                        await self.beat()
                    except LeosuiteError as exc:
                        self.failed_beats += 1
                        log.warning("node %s: heartbeat not written: %s", self.name, exc)


_SCHEMES = frozenset({"http", "https", "ws", "wss"})
#: A host name or IPv4 address as an origin names it (nothing else reaches a header).
_HOST = re.compile(r"[a-z0-9][a-z0-9.-]{0,252}")


def url_origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` in lower case, without a default port; ""
    when it is no plain http(s)/ws(s) URL of a host (user info, odd characters)."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES or not host or parts.username is not None or "\\" in url:
        return ""
    if ":" in host:  # an IPv6 address, in brackets in the URL
        try:
            host = f"[{ipaddress.IPv6Address(host)}]"
        except ValueError:
            return ""
    elif not _HOST.fullmatch(host):
        return ""
    default = 443 if scheme in ("https", "wss") else 80
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"

"""Servers across nodes: each node writes its own servers' states to the store, reads
the other nodes' servers from it, and takes on the servers created for it elsewhere.

* :class:`StatePublisher`: every state change of this node's servers is written to
  ``server_states`` and announced with a ``server_state`` event on the bus; every
  heartbeat interval the states are compared with what was written, so a change the
  bounded subscription dropped is written late, never lost.
* :class:`RemoteServers`: the other nodes' servers and their last known states, read
  again when a ``server`` or ``server_state`` event arrives (many events make one read),
  when the bus says events may have been lost, and every heartbeat interval.
* :func:`take_assigned`: a server recorded for this node through another node is
  taken on (``ServerManager.take_assigned``) when a ``server`` event names this node,
  at start and every heartbeat interval.

No server is ever started by a node other than its own: the other nodes only read.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

import trio

from ..errors import LeosuiteError
from ..store import nodes as node_table
from ..store import servers as server_table
from ..store.db import Database
from ..store.nodes import ServerState
from ..store.servers import ServerRecord

if TYPE_CHECKING:
    from ..supervision.spec import ServerStatus, StateChange
    from .bus import Bus, ClusterEvent

__all__ = ["RemoteServers", "StatePublisher", "announce_server", "sync_fleet"]

log = logging.getLogger("leosuite.cluster")

#: Servers named in one ``server_state`` event (each at most ~90 bytes of JSON).
STATES_PER_EVENT = 40
#: Seconds that events arriving together are gathered for one read of the store.
GATHER = 0.05
#: The longest ``detail`` written (a last error can be long).
DETAIL_MAX = 200


class Supervised(Protocol):
    """What the publisher needs of the manager."""

    node: str

    def names(self) -> list[str]: ...

    def status_of(self, name: str) -> ServerStatus | None: ...

    def subscribe_states(self, max_buffer: int = 256) -> trio.MemoryReceiveChannel[StateChange]: ...

    async def take_assigned(self) -> list[str]: ...


class StatePublisher:
    """Writes this node's servers' states to the store and tells the other nodes."""

    def __init__(
        self,
        db: Database,
        manager: Supervised,
        *,
        node: str,
        now: Callable[[], float],
        bus: Bus | None,
    ) -> None:
        self._db = db
        self._manager = manager
        self.node = node
        self._now = now
        self._bus = bus
        #: The state and detail last written, by server.
        self.written: dict[str, tuple[str, str]] = {}
        self._pending: dict[str, tuple[str, str]] = {}
        self._wake = trio.Event()

    def _current(self) -> dict[str, tuple[str, str]]:
        found = {}
        for name in self._manager.names():
            status = self._manager.status_of(name)
            if status is not None:
                found[name] = (status.state.value, (status.last_error or "")[:DETAIL_MAX])
        return found

    def compare(self) -> None:
        """Queue every state that differs from what was written."""
        for name, value in self._current().items():
            if self.written.get(name) != value:
                self._pending[name] = value
        self._wake.set()

    async def flush(self) -> None:
        """Write what is queued (one transaction) and announce it."""
        batch, self._pending = self._pending, {}
        if not batch:
            return
        at, node = self._now(), self.node

        def write(conn: sqlite3.Connection) -> None:
            for name, (state, detail) in batch.items():
                node_table.set_server_state(
                    conn, name, node=node, state=state, detail=detail, at=at
                )

        try:
            await self._db.call(write)
        except LeosuiteError as exc:
            log.warning("servers' states not written (written later): %s", exc)
            self._pending = {**batch, **self._pending}
            return
        self.written.update(batch)
        if self._bus is not None:
            items = [[name, state] for name, (state, _detail) in sorted(batch.items())]
            for start in range(0, len(items), STATES_PER_EVENT):
                with contextlib.suppress(LeosuiteError, OSError, ValueError):
                    chunk = items[start : start + STATES_PER_EVENT]
                    await self._bus.publish("server_state", {"servers": chunk})

    async def _changes(self, changes: trio.MemoryReceiveChannel[StateChange]) -> None:
        async for change in changes:
            status = self._manager.status_of(change.server)
            detail = (status.last_error or "") if status is not None else change.reason
            self._pending[change.server] = (change.new.value, detail[:DETAIL_MAX])
            self._wake.set()

    async def _ticks(self, interval: float) -> None:
        while True:
            await trio.sleep(interval)
            self.compare()

    async def run(
        self, interval: float, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Write every server's state now, then each change as it comes."""
        changes = self._manager.subscribe_states()
        with changes:
            self.compare()
            await self.flush()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._changes, changes)
                nursery.start_soon(self._ticks, interval)
                task_status.started()
                while True:
                    await self._wake.wait()
                    self._wake = trio.Event()
                    await trio.sleep(GATHER)  # a burst of changes makes one write
                    await self.flush()


class RemoteServers:
    """The servers other nodes run, with their last known states (see the module)."""

    def __init__(self, db: Database, node: str) -> None:
        self._db = db
        self.node = node
        self.records: dict[str, ServerRecord] = {}
        self.states: dict[str, ServerState] = {}
        #: Set whenever the view was read again.
        self.changed = trio.Event()
        #: How many reads of the store have begun.
        self._reads = 0
        #: The servers recorded here for another node, each with how many reads had begun then.
        self._added: dict[str, int] = {}

    def get(self, name: str) -> ServerRecord | None:
        return self.records.get(name)

    def state(self, name: str) -> ServerState | None:
        return self.states.get(name)

    def owned_by(self, account_id: int | None) -> int:
        """How many of the other nodes' servers ``account_id`` owns."""
        return sum(1 for r in self.records.values() if r.owner_id == account_id)

    def add(self, record: ServerRecord) -> None:
        """A server this node just recorded for another node."""
        if record.node != self.node:
            self.records[record.name] = record
            self._added[record.name] = self._reads

    async def refresh(self) -> None:
        node = self.node
        self._reads += 1
        begun = self._reads

        def read(conn: sqlite3.Connection) -> tuple[list[ServerRecord], dict[str, ServerState]]:
            others = server_table.list_other_nodes(conn, node)
            return others, node_table.server_states(conn, other_than=node)

        records, states = await self._db.call(read)
        fresh = {r.name: r for r in records}
        # A read begun before a server was recorded cannot have seen it: it stays.
        for name, at in list(self._added.items()):
            if at < begun:
                del self._added[name]
            elif name not in fresh and name in self.records:
                fresh[name] = self.records[name]
        self.records = fresh
        self.states = {n: s for n, s in states.items() if n in self.records}
        self.changed.set()
        self.changed = trio.Event()


async def announce_server(bus: Bus | None, names: Iterable[str], node: str, event: str) -> None:
    """Tell the other nodes that servers of ``node`` were created or destroyed."""
    if bus is None:
        return
    listed = sorted(names)
    for start in range(0, len(listed), STATES_PER_EVENT):
        with contextlib.suppress(LeosuiteError, OSError, ValueError):
            chunk = listed[start : start + STATES_PER_EVENT]
            await bus.publish("server", {"servers": chunk, "node": node, "event": event})


async def sync_fleet(
    manager: Supervised,
    remote: RemoteServers,
    bus: Bus | None,
    interval: float,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Keep :class:`RemoteServers` current and take on the servers created for this
    node elsewhere (see the module)."""
    wake = trio.Event()

    async def read_again() -> None:
        try:
            await remote.refresh()
            taken = await manager.take_assigned()
            if taken:
                log.info("took on %d server(s) created for this node elsewhere", len(taken))
        except LeosuiteError as exc:
            log.warning("the other nodes' servers not read (read later): %s", exc)
        except Exception:  # a directory not made (a full disk): tried again, never fatal
            log.exception("the servers created for this node elsewhere not taken on (later)")

    async def listen(events: trio.MemoryReceiveChannel[ClusterEvent]) -> None:
        nonlocal wake
        async for _event in events:
            wake.set()

    async def ticks() -> None:
        nonlocal wake
        while True:
            await trio.sleep(interval)
            wake.set()

    await read_again()
    with contextlib.ExitStack() as stack:
        async with trio.open_nursery() as nursery:
            if bus is not None:
                for kind in ("server", "server_state"):
                    nursery.start_soon(listen, stack.enter_context(bus.subscribe(kind)))
            nursery.start_soon(ticks)
            task_status.started()
            while True:
                await wake.wait()
                wake = trio.Event()
                await trio.sleep(GATHER)
                await read_again()

"""The servers of this node, for :class:`~.manager.ServerManager`: which stored servers
it supervises, and taking on a server another node created for it.

A server belongs to one node (``servers.node``). The manager loads and supervises its
own node's servers only; those of no node (made before nodes existed) become this
node's when it starts, and on a SQLite store (one node only) every server does. A
server another node recorded for this one is taken on when this node reads it (at
start, or when told): its directory and console are made and a stopped supervisor is
added, as a create here would have.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping

import msgspec
import trio

from ..auth.permissions import runs_unattended
from ..errors import LeosuiteError, NotFound
from ..store import servers as server_table
from ..store.db import Database
from .console_file import ConsoleFile
from .fleet import Fleet
from .name_locks import NameLocks
from .server_dirs import ServerDirs
from .spec import LaunchSpec, ServerStatus
from .types import ServerType

__all__ = ["NodeServers"]

log = logging.getLogger("leosuite.servers")


class NodeServers:
    """The node-aware parts of the manager; the manager provides the state below."""

    _db: Database
    _records: dict[str, server_table.ServerRecord]
    _consoles: dict[str, ConsoleFile]
    _names: NameLocks
    _fleet: Fleet
    dirs: ServerDirs
    types: dict[str, ServerType]
    #: The node this daemon is ('' when nodes are not used: every server is its own).
    node: str
    #: This node is the only one its store can have (a SQLite file): it takes every
    #: server, whatever node it was recorded for (the host was renamed).
    sole_node: bool

    def _spec(self, stype: ServerType, name: str, settings: Mapping[str, object]) -> LaunchSpec:
        raise NotImplementedError

    def _open_console(self, name: str, start_index: int) -> ConsoleFile:
        raise NotImplementedError

    async def _add(self, name: str, spec: LaunchSpec, console: ConsoleFile) -> None:
        raise NotImplementedError

    async def _own_records(self) -> list[server_table.ServerRecord]:
        """This node's servers, after taking those of no node."""
        node, every = self.node, self.sole_node

        def read(conn: sqlite3.Connection) -> list[server_table.ServerRecord]:
            if node:
                taken = server_table.claim_unassigned(conn, node, every=every)
                if taken:
                    log.info("node %s: took the servers of no node: %s", node, ", ".join(taken))
            return server_table.list_of_node(conn, node)

        return await self._db.call(read)

    def _make_missing_files(self, record: server_table.ServerRecord) -> None:
        """The directory and console of a server recorded by another node, made on this
        one (blocking); nothing when either exists."""
        if not self.dirs.server(record.name).exists() and not self.dirs.logs(record.name).exists():
            self.dirs.make(record.name, int(record.created_at))

    async def _load_record(
        self, record: server_table.ServerRecord, owners: Mapping[int, frozenset[str]]
    ) -> bool:
        """Add one stored server to the fleet, stopped; False when its type is missing."""
        stype = self.types.get(record.type)
        if stype is None:
            log.error(
                "server %s: its type %r is not available; not loaded", record.name, record.type
            )
            return False
        await trio.to_thread.run_sync(self._make_missing_files, record)
        console = await trio.to_thread.run_sync(
            self._open_console, record.name, record.next_read_index
        )
        try:
            spec = self._spec(stype, record.name, record.settings)
            owner = None if record.owner_id is None else owners.get(record.owner_id)
            if spec.autostart and not runs_unattended(
                admin_only=stype.admin_only, answering=[owner]
            ):
                log.warning(
                    "server %s: not autostarted: its type is admin-only and its owner "
                    "is not an ADMIN",
                    record.name,
                )
                spec = msgspec.structs.replace(spec, autostart=False)
            await self._add(record.name, spec, console)
        except Exception:
            console.close()
            raise
        self._records[record.name] = record
        self._consoles[record.name] = console
        return True

    def status_of(self, name: str) -> ServerStatus | None:
        """The supervisor's status of one of this node's servers (None if it has none)."""
        if name not in self._records or name not in self._fleet:
            return None
        return self._fleet.get(name).status()

    async def record_here(self, name: str) -> server_table.ServerRecord:
        """This node's server ``name``, taken on first when another node recorded it for
        this one and this node has not read that yet (a forwarded call or a console
        token may come before the event that tells it); NotFound otherwise."""
        record = self._records.get(name)
        if record is None and self.node:
            await self.take_assigned()
            record = self._records.get(name)
        if record is None:
            raise NotFound(f"no server named {name!r}", field="server")
        return record

    async def take_assigned(self) -> list[str]:
        """Take on every server recorded for this node that it does not supervise yet
        (created through another node); their names."""
        if not self.node:
            return []
        node = self.node

        names = await self._db.call(lambda conn: server_table.names_of_node(conn, node))
        if names <= self._records.keys():
            return []
        records = await self._db.call(lambda conn: server_table.list_of_node(conn, node))
        fresh = [r for r in records if r.name not in self._records]
        owners = await self._db.call(server_table.owner_flags)
        taken = []
        for record in fresh:
            async with self._names.hold(record.name):
                if record.name in self._records:
                    continue
                try:
                    loaded = await self._load_record(record, owners)
                except LeosuiteError as exc:  # one server this node cannot take holds up no other
                    log.warning("server %s: created for this node elsewhere, not taken on "
                                "(tried again later): %s", record.name, exc)  # fmt: skip
                    continue
                except Exception:  # a directory not made (a full disk): the same
                    log.exception("server %s: created for this node elsewhere, not taken on "
                                  "(tried again later)", record.name)  # fmt: skip
                    continue
                if loaded:
                    taken.append(record.name)
                    log.info("server %s: created for this node elsewhere; taken on", record.name)
        return taken

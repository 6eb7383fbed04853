"""The managed servers as one service: definitions (store), types, consoles and the
fleet of supervisors, behind the operations every API surface calls.

Servers outlive the daemon: each running server's process is recorded in the store,
and :meth:`ServerManager.load` re-adopts every one still running (same pid, same
start time) before anything is autostarted, so no server is ever started twice; one
that ended while the daemon was down is shown crashed with the reason, and its
restart policy applies. :meth:`ServerManager.leave` lets every server run on.

Permissions and audit entries belong to the API layer (it knows who asks); this
module knows servers, not HTTP. A new server always starts in an empty directory: the
directory and logs of a server destroyed with its files kept are set aside where no
server name reaches (:mod:`.kept_logs`), to be listed and purged from there.

Creates and destroys lock their server's name only (:class:`.NameLocks`), so a destroy
waiting out one server's graceful stop holds up no other server; the quota check and
the claim of the name are one step with no checkpoint in between, so racing creates
of one account cannot pass its quota together.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Collection, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import trio

from ..disk_watch import disk_level
from ..errors import Conflict, InvalidInput, LeosuiteError, NotFound
from ..settings import ServersSettings
from ..store import processes as process_table
from ..store import servers as server_table
from ..store.db import Database
from .cgroups_limits import ServerLimits
from .console_answer import Encoding, LogAnswer, encode_console_data
from .console_file import ConsoleFile
from .fleet import Fleet
from .handle import ProcessIdentity
from .install import Installer, InstallEvents, InstallFailed
from .install_guard import admin_answers, needs_admin, refusal
from .kept_logs import KeptEntry, KeptPurge
from .logfile_registry import LogFollowers
from .name_locks import NameLocks
from .node_servers import NodeServers
from .readopt import readopt
from .server_create import ServerCreation
from .server_dirs import ServerDirs
from .spec import LaunchSpec, StateChange, check_launch
from .states import PowerAction, State, allowed_actions
from .stats_history import StatsHistory
from .stdin_fifo import StdinFifo
from .supervisor import Supervisor
from .type_files import TypeLoadError, load_types
from .types import (
    ServerType,
    render_command,
    settings_view,
    validate_settings,
    variables_view,
)

__all__ = ["Encoding", "LogAnswer", "ServerManager", "encode_console_data"]

log = logging.getLogger("leosuite.servers")


class StoredProcesses:
    """The fleet's record of live processes, kept in the store."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, server: str, identity: ProcessIdentity, started_at: float) -> None:
        entry = process_table.ProcessRecord(
            server=server,
            pid=identity.pid,
            start_time=identity.start_time,
            boot_id=identity.boot_id,
            started_at=started_at,
        )
        await self._db.call(lambda conn: process_table.record(conn, entry))

    async def forget(self, server: str, pid: int) -> None:
        await self._db.call(lambda conn: process_table.forget(conn, server, pid))


class ServerManager(ServerCreation, NodeServers):
    def __init__(
        self,
        *,
        db: Database,
        fleet: Fleet,
        settings: ServersSettings,
        data_dir: Path,
        now: Callable[[], float],
        python: str = sys.executable,
        node: str = "",
        sole_node: bool = True,
    ) -> None:
        self._db = db
        self.node = node
        self.sole_node = sole_node
        self._fleet = fleet
        self._settings = settings
        self._data_dir = data_dir
        self.dirs = ServerDirs(data_dir)
        self._now = now
        self._python = python
        self.types: dict[str, ServerType] = {}
        self.type_errors: list[TypeLoadError] = []
        self._records: dict[str, server_table.ServerRecord] = {}
        self._consoles: dict[str, ConsoleFile] = {}
        #: The readIndex each console had at its last save (a new console has none).
        self._saved_index: dict[ConsoleFile, int] = {}
        #: One save at a time: a save that ended later with figures taken earlier would
        #: leave older figures as the saved ones (housekeeping's and shutdown's meet).
        self._saving = trio.Lock()
        #: The account that last started (or restarted) each server, if one did.
        self._started_by: dict[str, int] = {}
        #: The account whose start or restart is under way, by server.
        self._starting: dict[str, int] = {}
        #: Set when the daemon stops or reloads: console long polls answer at once.
        self._draining = trio.Event()
        self._names = NameLocks()
        #: The owner of each server whose create is under way (counted by quota checks).
        self._creating: dict[str, int | None] = {}
        fleet.set_book(StoredProcesses(db))
        #: The servers' own log files followed so far, watched by the fleet's watch.
        self.logfiles = LogFollowers(threads=settings.logfile_threads, watch=fleet.watch)
        self.installs = Installer(
            db=db,
            manifest_url=settings.minecraft_manifest_url,
            max_bytes=settings.install_max_bytes,
            events=InstallEvents(),
            concurrency=settings.install_concurrency,
            timeout=settings.install_timeout,
        )

    # -- paths and specs ------------------------------------------------------------

    def _spec(self, stype: ServerType, name: str, settings: Mapping[str, object]) -> LaunchSpec:
        rendered = render_command(
            stype,
            settings,
            server_dir=self.dirs.server(name),
            python=self._python,
            default_user=self._settings.user,
        )
        return LaunchSpec(
            argv=list(rendered.argv),
            cwd=str(rendered.cwd),
            env=dict(rendered.env),  # added to the daemon's environment at spawn
            stop_command=rendered.stop_command,
            stop_signal=int(rendered.stop_signal),
            stop_timeout=rendered.stop_timeout,
            ready_pattern=rendered.ready_pattern.pattern.decode("utf-8", "surrogateescape")
            if rendered.ready_pattern is not None
            else None,
            restart=rendered.restart,
            max_restarts=rendered.max_restarts,
            autostart=rendered.autostart,
            user=rendered.user,
            server_dir=str(self.dirs.server(name)),
            search_from=str(self._data_dir),
            confined=rendered.confined,
            shown=list(rendered.shown),
            **self._fleet.limits.resolve(settings)._asdict(),
        )

    def _open_console(self, name: str, start_index: int) -> ConsoleFile:
        return ConsoleFile(
            self.dirs.logs(name),
            retention_bytes=self._settings.retention_bytes,
            start_index=start_index,
        )

    async def _add(self, name: str, spec: LaunchSpec, console: ConsoleFile) -> None:
        await self._fleet.add(name, spec, console, stdin=StdinFifo(self.dirs.stdin(name)))
        self._fleet.get(name).set_installer(partial(self._install, name))

    def install_needs_admin(self, name: str, *, on_start: bool) -> bool:
        """Whether installing ``name`` takes an ADMIN (see :mod:`.install_guard`); for a
        start, only when its install would run (its steps not done yet)."""
        record = self.record(name)
        stype, spec = self.stype(record.type), self.supervisor(name).spec
        if not needs_admin(stype, spec):
            return False
        view = self.installs.view(record.id, stype, record.settings, spec)
        return not on_start or (view is not None and not view["done"])

    async def _install(self, name: str, force: bool) -> None:
        """The server's install steps, before a start (unless done) or on demand."""
        record = self.record(name)
        if not force and self.install_needs_admin(name, on_start=True):
            starter = self._starting.get(name, self._started_by.get(name, record.owner_id))
            if not await admin_answers(self._db, starter):
                raise InstallFailed(refusal(name))
        await self.installs.prepare(
            name,
            record.id,
            self.stype(record.type),
            record.settings,
            self._fleet.get(name).spec,
            self._consoles[name],
            python=self._python,
            force=force,
        )

    async def install(self, name: str) -> dict[str, Any]:
        """Run the server's install steps now (it must be at rest)."""
        record = self.record(name)
        if not self.stype(record.type).install:
            raise Conflict(f"servers of type {record.type!r} have no install steps")
        failed = await self.supervisor(name).install()
        status = self.status(name)["status"]
        if failed is None:
            return {"server": name, "status": status, "installed": True}
        error = failed or "install cancelled"
        return {"server": name, "status": status, "installed": False, "error": error}

    # -- start-up and shutdown --------------------------------------------------------

    async def load(self) -> None:
        """Load types and this node's stored servers into the fleet (all stopped)."""
        self.types, self.type_errors = await trio.to_thread.run_sync(
            load_types, self._data_dir / "templates"
        )
        for error in self.type_errors:
            log.warning("server type not loaded: %s", error)
        records = await self._own_records()
        owners = await self._db.call(server_table.owner_flags)
        for record in records:
            await self._load_record(record, owners)
        await self.installs.load()
        await self._readopt()

    async def _readopt(self) -> None:
        """Take over every server process still running; the rest ended meanwhile."""
        directories = {name: self._consoles[name].directory for name in self._records}
        await readopt(self._db, self._fleet, directories)

    async def save_read_indexes(self) -> None:
        """Store every console's next readIndex that moved since its last save (the
        store never lets it go back)."""
        async with self._saving:
            consoles = {name: (c, c.end_index) for name, c in self._consoles.items()}
            moved = {n: ci for n, ci in consoles.items() if self._saved_index.get(ci[0]) != ci[1]}

            def save(conn: sqlite3.Connection) -> None:
                for name, (_, index) in moved.items():
                    # A server destroyed while its console was still open has nothing to keep.
                    with contextlib.suppress(NotFound):
                        server_table.set_next_read_index(conn, name, index)

            if moved:
                await self._db.call(save)
            # Only now (a failed save is tried again), and only the open consoles' figures.
            self._saved_index = {c: index for c, index in consoles.values()}

    def end_waits(self) -> None:
        """End every console and log-file long poll now and from now on (the daemon is
        stopping or reloading): each answers what there is, so no request holds the drain."""
        self._draining.set()

    async def waits_ended(self) -> None:
        """Return once :meth:`end_waits` was called (at once if it was)."""
        await self._draining.wait()

    async def shutdown(self) -> None:
        """Stop every server gracefully (in parallel), save indexes, close the logs; a
        cancelled stop (the servers then killed) still saves and closes."""
        try:
            await self._fleet.shutdown()
        finally:
            with trio.CancelScope(shield=True):
                await self.save_read_indexes()
            for console in self._consoles.values():
                console.close()

    async def leave(self) -> None:
        """Let every server run on without the daemon (a reload, or an exit that leaves
        them): nothing is signalled, each process stays recorded for re-adoption."""
        try:
            await self._fleet.leave()
        finally:
            with trio.CancelScope(shield=True):
                await self.save_read_indexes()
            for console in self._consoles.values():
                console.close()

    # -- queries ----------------------------------------------------------------------

    def names(self) -> list[str]:
        # A server being destroyed leaves the list with its supervisor, when its status goes.
        return sorted(n for n in self._records if n in self._fleet)

    def record(self, name: str) -> server_table.ServerRecord:
        try:
            return self._records[name]
        except KeyError:
            raise NotFound(f"no server named {name!r}", field="server") from None

    def find_record(self, name: str) -> server_table.ServerRecord | None:
        """The server's record, or None for a name that is not (or no longer) known."""
        return self._records.get(name)

    def started_by(self, name: str) -> int | None:
        """The account that last started or restarted the server, if one did."""
        return self._started_by.get(name)

    def supervisor(self, name: str) -> Supervisor:
        self.record(name)
        return self._fleet.get(name)

    def console(self, name: str) -> ConsoleFile:
        self.record(name)
        return self._consoles[name]

    @property
    def stats_history(self) -> StatsHistory:
        """The last hour of every server's resource samples."""
        return self._fleet.history

    def watching_stats(self) -> contextlib.AbstractContextManager[None]:
        """Live figures every stats interval while entered (:meth:`Fleet.watching_stats`)."""
        return self._fleet.watching_stats()

    async def fresh_stats(self) -> None:
        """Figures no older than a stats interval (:meth:`Fleet.fresh_stats`)."""
        await self._fleet.fresh_stats()

    @property
    def limits(self) -> ServerLimits:
        """The resource limits and whether servers can have them."""
        return self._fleet.limits

    def stype(self, type_name: str) -> ServerType:
        try:
            return self.types[type_name]
        except KeyError:
            raise InvalidInput(f"unknown server type {type_name!r}", field="type") from None

    def create_options(self, type_name: str) -> list[dict[str, object]]:
        return variables_view(self.stype(type_name))

    def status(self, name: str) -> dict[str, Any]:
        record = self.record(name)
        status = self._fleet.get(name).status()
        stype = self.types.get(record.type)
        return {
            "server": name,
            "readIndex": self._consoles[name].end_index,
            "status": status.state.value,
            "description": stype.description if stype else "",
            "type": record.type,
            "pid": status.pid,
            "uptime": status.uptime,
            "exit_code": status.exit_code,
            "restarts": status.restarts,
            "cpu": status.cpu,
            "memory": status.memory,
            "threads": status.threads,
            "last_error": status.last_error,
            "stop_requested": status.stop_requested,
            "restart_in": status.restart_in,
            "actions": list(allowed_actions(status.state)),
            # Its directory and its logs are in the data directory: that filesystem's level.
            "disk": disk_level(self._data_dir),
            "install": self._install_view(record, stype),
        }

    def _install_view(
        self, record: server_table.ServerRecord, stype: ServerType | None
    ) -> dict[str, Any] | None:
        if stype is None:
            return None
        sup = self._fleet.get(record.name)
        view = self.installs.view(record.id, stype, record.settings, sup.spec)
        return None if view is None else view | {"running": sup.installing}

    # -- changes ----------------------------------------------------------------------

    async def destroy(self, name: str, *, delete_files: bool = False) -> None:
        """Stop the server if it runs, forget it; delete its files, or set its directory
        and logs aside (``servers/.destroyed/<name>-<id>``, ``logs/<name>.destroyed-<t>``).
        A second destroy of the name waits for the first (and then finds no server)."""
        self.record(name)
        async with self._names.hold(name):
            server_id = self.record(name).id
            await self._fleet.remove(name)
            # The process is gone: the rest is bookkeeping that a cancel must not cut short.
            with trio.CancelScope(shield=True):
                try:
                    await self._db.call(lambda conn: server_table.delete(conn, name))
                except LeosuiteError:
                    # Not forgotten (a full disk): it stays, stopped, as the store says.
                    record = self._records[name]
                    spec = self._spec(self.stype(record.type), name, record.settings)
                    await self._add(name, spec, self._consoles[name])
                    raise
                console = self._consoles.pop(name)
                console.close()
                del self._records[name]
                self.logfiles.forget_server(server_id, f"server {name!r} was destroyed")
                self._started_by.pop(name, None)
                with contextlib.suppress(LeosuiteError):
                    await self.installs.forget(server_id)
                await trio.to_thread.run_sync(self.dirs.delete_run_dir, name)
                if delete_files:
                    await trio.to_thread.run_sync(self.dirs.delete, name)
                else:
                    label, stamp = f"{name}-{server_id}", int(self._now())
                    await trio.to_thread.run_sync(self.dirs.set_aside, name, label, stamp)

    async def kept(self) -> list[KeptEntry]:
        """What destroyed servers left behind (directories and logs), oldest first."""
        return await trio.to_thread.run_sync(self.dirs.kept)

    async def remove_kept(
        self, now: float, *, servers: Collection[str] | None, older_than_days: float | None
    ) -> KeptPurge:
        """Remove the kept entries of ``servers`` (any when None) set aside at least
        ``older_than_days`` days before ``now`` (any age when None)."""
        return await trio.to_thread.run_sync(
            partial(self.dirs.remove_kept, now, servers=servers, older_than_days=older_than_days)
        )

    async def purge_kept(self, now: float) -> KeptPurge:
        """Housekeeping: remove the kept entries set aside more than ``servers.kept_days``
        days before ``now`` (none when it is 0: kept for ever)."""
        days = self._settings.kept_days
        if not days:
            return KeptPurge()
        return await self.remove_kept(now, servers=None, older_than_days=days)

    async def power(self, name: str, action: PowerAction, *, by: int | None = None) -> State:
        """Perform a power action; a start or restart records ``by`` as its starter."""
        if by is not None and action in ("start", "restart"):
            self._starting[name] = by
        try:
            state = await self.supervisor(name).request(action)
        finally:
            if by is not None and self._starting.get(name) == by:
                del self._starting[name]
        if by is not None and action in ("start", "restart") and name in self._records:
            self._started_by[name] = by
        return state

    async def command(self, name: str, line: str) -> None:
        await self.supervisor(name).send_command(line)

    async def settings(
        self, name: str, changes: Mapping[str, object] | None
    ) -> list[dict[str, object]]:
        record = self.record(name)
        stype = self.stype(record.type)
        if changes:
            resolved = validate_settings(stype, changes, existing=record.settings, is_update=True)
            spec = self._spec(stype, name, resolved)
            check_launch(spec)
            await self._db.call(lambda conn: server_table.update_settings(conn, name, resolved))
            record = msgspec.structs.replace(record, settings=resolved)
            self._records[name] = record
            self._fleet.get(name).update_spec(spec)
        return settings_view(stype, record.settings)

    async def read_log(
        self,
        name: str,
        read_index: int,
        *,
        limit: int | None,
        wait: float | None,
        encoding: Encoding | None,
    ) -> LogAnswer:
        console = self.console(name)
        cap = self._settings.log_max_read
        limit = cap if limit is None else limit
        if limit < 0:
            raise InvalidInput("max must not be negative", field="max")
        limit = min(limit, cap)
        if wait is not None:
            if wait < 0:
                raise InvalidInput("wait must not be negative", field="wait")
            if read_index >= console.end_index and read_index >= 0:
                console.read(read_index, 0)  # validates the index before waiting
                with trio.move_on_after(min(wait, self._settings.log_max_wait)):
                    await _data_or_drain(console, read_index, self._draining)
                console = self.console(name)  # NotFound if destroyed meanwhile
        chunk = console.read(read_index, limit)
        return encode_console_data(chunk, encoding)

    def subscribe_states(self, max_buffer: int = 256) -> trio.MemoryReceiveChannel[StateChange]:
        """Every server's state changes (drop-if-full); close the channel to unsubscribe."""
        return self._fleet.subscribe(max_buffer)


async def _data_or_drain(console: ConsoleFile, offset: int, draining: trio.Event) -> None:
    """Return once the console has bytes beyond ``offset`` or ``draining`` is set."""
    async with trio.open_nursery() as nursery:

        async def first(wait: Callable[[], Awaitable[None]]) -> None:
            await wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(first, partial(console.wait_beyond, offset))
        nursery.start_soon(first, draining.wait)

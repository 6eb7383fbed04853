"""Creating servers, one or a batch, for :class:`~.manager.ServerManager`.

A batch is checked whole before anything is done (names, types, settings, the quota,
a name taken or given twice), recorded in one store transaction, and its directories
and consoles are made in one worker-thread job; a server whose files cannot be made
after that is removed again and reported. The single create is a batch of one.

A batch for another node (``node``) is only recorded: that node makes the files and
supervises the servers once it reads them (:mod:`.node_servers`).
"""

from __future__ import annotations

import errno
import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import trio

from ..errors import Conflict, DiskFull, InternalError, LeosuiteError
from ..store import servers as server_table
from ..store.db import Database
from .console_file import ConsoleFile
from .name_locks import NameLocks
from .server_dirs import ServerDirs
from .spec import LaunchSpec, check_launch
from .types import ServerType, validate_server_name, validate_settings

__all__ = ["ServerCreation"]

log = logging.getLogger("leosuite.servers")


class ServerCreation:
    """The create operations; the manager provides the state and helpers below."""

    _db: Database
    _records: dict[str, server_table.ServerRecord]
    _consoles: dict[str, ConsoleFile]
    #: The owner of each server whose create is under way (counted by quota checks).
    _creating: dict[str, int | None]
    _names: NameLocks
    _now: Callable[[], float]
    dirs: ServerDirs
    #: The node this daemon is ('' when it runs alone).
    node: str

    def stype(self, type_name: str) -> ServerType:
        raise NotImplementedError

    def _spec(self, stype: ServerType, name: str, settings: Mapping[str, object]) -> LaunchSpec:
        raise NotImplementedError

    def _open_console(self, name: str, start_index: int) -> ConsoleFile:
        raise NotImplementedError

    async def _add(self, name: str, spec: LaunchSpec, console: ConsoleFile) -> None:
        raise NotImplementedError

    async def create(
        self,
        name: str,
        type_name: str,
        given: Mapping[str, object],
        *,
        owner_id: int | None,
        admit: Callable[[int], None] | None = None,
        node: str | None = None,
    ) -> server_table.ServerRecord:
        """Create a stopped server (on ``node``, this one when None). ``admit`` is called
        with how many servers ``owner_id`` has (creates under way included); it raises
        to refuse."""
        (outcome,) = await self.create_many(
            [(name, type_name, given)], owner_id=owner_id, admit=admit, node=node
        )
        if isinstance(outcome, LeosuiteError):
            raise outcome
        return outcome

    async def create_many(
        self,
        items: Sequence[tuple[str, str, Mapping[str, object]]],
        *,
        owner_id: int | None,
        admit: Callable[[int], None] | None = None,
        node: str | None = None,
    ) -> list[server_table.ServerRecord | LeosuiteError]:
        """Create stopped servers, each ``(name, type, settings)``, as one batch: every
        item is checked (name, type, settings, quota, a name taken or given twice)
        before anything is done, and the first refusal raises, naming its server when
        there are several; then one store transaction records them all. A server whose
        directory, console or supervisor cannot be made after that is removed again
        and its error is its outcome; the outcomes come in the order of ``items``."""
        several = len(items) > 1
        checked: list[tuple[str, str, dict[str, Any]]] = []
        for name, type_name, given in items:
            try:
                name = validate_server_name(name)
                resolved = validate_settings(self.stype(type_name), given)
            except LeosuiteError as exc:
                raise _naming(exc, name, several) from None
            checked.append((name, type_name, resolved))
        names = [name for name, _, _ in checked]
        if len(set(names)) < len(names):
            raise Conflict("a server name is given twice", field="servers")
        self._claim_many(names, owner_id, admit)
        try:
            specs: list[LaunchSpec] = []
            for name, type_name, resolved in checked:
                try:
                    spec = self._spec(self.stype(type_name), name, resolved)
                    check_launch(spec)
                except LeosuiteError as exc:
                    raise _naming(exc, name, several) from None
                specs.append(spec)
            return await self._create_checked(
                checked, specs, owner_id, self.node if node is None else node
            )
        finally:
            for name in names:
                del self._creating[name]
                self._names.release(name)

    async def _create_checked(
        self,
        checked: list[tuple[str, str, dict[str, Any]]],
        specs: list[LaunchSpec],
        owner_id: int | None,
        node: str,
    ) -> list[server_table.ServerRecord | LeosuiteError]:
        created_at = self._now()

        def insert(conn: sqlite3.Connection) -> list[server_table.ServerRecord]:
            return [
                server_table.create(
                    conn,
                    name=name,
                    type=type_name,
                    settings=resolved,
                    created_at=created_at,
                    owner_id=owner_id,
                    node=node,
                )
                for name, type_name, resolved in checked
            ]

        records = await self._db.call(insert)
        if node != self.node:
            return list(records)  # another node's: it makes the files when it reads them
        consoles = await trio.to_thread.run_sync(self._make_files, records, int(created_at))
        outcomes: list[server_table.ServerRecord | LeosuiteError] = []
        failed: list[str] = []
        try:
            for record, spec, console in zip(records, specs, consoles, strict=True):
                if isinstance(console, ConsoleFile):
                    try:
                        await self._add(record.name, spec, console)
                    except BaseException as exc:
                        console.close()
                        if not isinstance(exc, LeosuiteError):
                            raise
                        console = exc
                if isinstance(console, LeosuiteError):
                    failed.append(record.name)
                    outcomes.append(console)
                    continue
                self._records[record.name] = record
                self._consoles[record.name] = console
                outcomes.append(record)
        except BaseException:
            failed += [r.name for r in records[len(outcomes) :]]
            for console in consoles[len(outcomes) + 1 :]:
                if isinstance(console, ConsoleFile):
                    console.close()
            raise
        finally:
            if failed:
                with trio.CancelScope(shield=True):
                    await self._db.call(
                        lambda conn: [server_table.delete(conn, name) for name in failed]
                    )
        return outcomes

    def _make_files(
        self, records: list[server_table.ServerRecord], stamp: int
    ) -> list[ConsoleFile | LeosuiteError]:
        """Each new server's directory and console (blocking: one worker thread for all)."""
        out: list[ConsoleFile | LeosuiteError] = []
        for record in records:
            try:
                self.dirs.make(record.name, stamp)
                out.append(self._open_console(record.name, 0))
            except LeosuiteError as exc:
                out.append(exc)
            except OSError as exc:  # the path stays in the daemon log
                log.warning("server %s: cannot make its files: %s", record.name, exc)
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    out.append(DiskFull("the server's directory could not be made"))
                else:
                    out.append(InternalError("the server's directory could not be made"))
        return out

    def _claim_many(
        self, names: list[str], owner_id: int | None, admit: Callable[[int], None] | None
    ) -> None:
        """Check the quota and take the names for a create, in one step with no
        checkpoint (no other create or destroy runs in between); a name that is taken or
        being created or destroyed is not available. ``admit`` sees the count the last
        of the names would make (each is admitted as if created one after the other)."""
        if admit is not None:
            owned = [r.owner_id for r in self._records.values()] + list(self._creating.values())
            admit(owned.count(owner_id) + len(names) - 1)
        for name in names:
            if name in self._records or self._names.busy(name):
                # One answer whoever has the name: it never tells that another account has it.
                message = "server name not available"
                raise Conflict(f"{name}: {message}" if len(names) > 1 else message, field="server")
        for name in names:
            self._names.acquire_nowait(name)
            self._creating[name] = owner_id


def _naming(exc: LeosuiteError, name: str, several: bool) -> LeosuiteError:
    """The refusal of one server of a batch, its name in front when there are several."""
    if not several or type(exc).__init__ is not LeosuiteError.__init__:
        return exc
    return type(exc)(f"{str(name)[:80]}: {exc.message}", field=exc.field)

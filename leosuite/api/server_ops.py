"""The server operations as every API surface offers them (HTTP ``/api/server_*`` and
WebSocket ``server.*``): permission checks and audit entries in one place.

Who may do what is decided by :mod:`leosuite.auth.permissions`; a server the caller
may not see does not exist for it (the same 404 as an unknown name), and a create under
a taken name gets one answer whoever has it (409 "server name not available"). A server
of an admin-only type is started, restarted, reconfigured, typed into and has its files
changed by an ADMIN only; :func:`stop_unattended_servers` stops those no ADMIN answers
for any more. An operation that happened is answered as done: when the store cannot
take its audit entry (a full disk), the entry goes to the daemon log instead
(:meth:`AuditLog.record_done`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
import trio

from ..audit import Actor
from ..auth.permissions import (
    may_create_another_server,
    may_create_server_type,
    may_create_servers,
    may_operate_server_type,
    may_see_server,
    may_set_server_user,
    runs_unattended,
)
from ..auth.service import Principal
from ..errors import Conflict, NotFound, PermissionDenied
from ..store import accounts
from ..store.servers import ServerRecord
from ..supervision.console_answer import Encoding, LogAnswer
from ..supervision.manager import ServerManager
from ..supervision.states import POWER_ACTIONS, STOPPABLE_STATES, PowerAction
from ..supervision.types import validate_server_name
from .context import ApiContext

__all__ = ["POWER_ACTIONS", "ConsoleIndex", "ServerOps", "WaitSeconds", "stop_unattended_servers"]

#: A console byte offset or byte count a client sends (``readIndex``, ``from``, ``max``).
ConsoleIndex = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
#: Seconds a console read may wait for new bytes; any longer wait is cut to
#: ``servers.log_max_wait``, so only the lower bound refuses.
WaitSeconds = Annotated[float, msgspec.Meta(ge=0)]

#: What each action that an admin-only type keeps for ADMIN accounts is called in refusals.
_OPERATIONS = {
    "start": "starting",
    "restart": "restarting",
    "settings": "changing the settings of",
    "command": "typing commands into",
    "files": "changing the files of",
}


class ServerOps:
    """One caller's view of the servers: ``principal`` acting from ``ip``."""

    def __init__(self, ctx: ApiContext, principal: Principal, ip: str) -> None:
        self.ctx = ctx
        self.manager: ServerManager = ctx.servers
        self.principal = principal
        self.ip = ip

    def visible(self, name: str) -> ServerRecord:
        validate_server_name(name)  # a malformed name is invalid input, as on create
        record = self.manager.record(name)  # NotFound for unknown names
        if not may_see_server(self.principal, record):
            raise NotFound(f"no server named {name!r}", field="server")
        return record

    def visible_names(self) -> list[str]:
        principal, manager = self.principal, self.manager
        return [n for n in manager.names() if may_see_server(principal, manager.record(n))]

    async def audit(self, server: str, message: str) -> None:
        """Audit an operation that happened (never an error: see the module doc)."""
        await self.ctx.audit.record_done(
            "server", message, actor=self.principal.actor(self.ip), session=server
        )

    def may_create(self, type_name: str) -> None:
        principal = self.principal
        if not may_create_servers(principal):
            raise PermissionDenied("creating servers needs the HOST or ADMIN flag")
        if not may_create_server_type(
            principal, admin_only=self.manager.stype(type_name).admin_only
        ):
            raise PermissionDenied(f"servers of type {type_name!r} may only be created by an ADMIN")

    def may_set_user(self, given: Mapping[str, Any], current: Mapping[str, Any]) -> None:
        """Refuse a ``user`` other than the current one unless the caller is an ADMIN."""
        now = current.get("user", "")
        if given.get("user", now) != now and not may_set_server_user(self.principal):
            raise PermissionDenied("only an ADMIN may set the user a server runs as")

    def may_operate(self, record: ServerRecord, operation: str) -> None:
        """Refuse ``operation`` (a key of ``_OPERATIONS``) on a server of an admin-only
        type unless the caller is an ADMIN now, whoever created the server."""
        admin_only = self.manager.stype(record.type).admin_only
        if not may_operate_server_type(self.principal, admin_only=admin_only):
            raise PermissionDenied(
                f"{_OPERATIONS[operation]} a server of type {record.type!r} needs the ADMIN flag"
            )

    def admit(self, owned: int) -> None:
        """Refuse a create beyond the account's quota (``servers.max_per_account``)."""
        limit = self.ctx.settings.servers.max_per_account
        if not may_create_another_server(self.principal, owned=owned, limit=limit):
            raise PermissionDenied(
                f"this account has {owned} servers, the most it may have (servers.max_per_account)"
            )

    def create_options(self, type_name: str | None) -> dict[str, Any]:
        principal = self.principal
        if type_name is None:
            return {
                "types": [
                    {"type": name, "description": stype.description}
                    for name, stype in sorted(self.manager.types.items())
                    if may_create_server_type(principal, admin_only=stype.admin_only)
                ]
            }
        self.may_create(type_name)
        return {"type": type_name, "variables": self.manager.create_options(type_name)}

    async def create(
        self, name: str, type_name: str, settings: Mapping[str, Any]
    ) -> dict[str, Any]:
        self.may_create(type_name)
        self.may_set_user(settings, {})
        record = await self.manager.create(
            name, type_name, settings, owner_id=self.principal.account_id, admit=self.admit
        )
        await self.audit(record.name, f"created server {record.name} of type {record.type}")
        return {"server": record.name, "readIndex": 0}

    async def destroy(self, name: str, *, delete_files: bool) -> None:
        self.visible(name)
        await self.manager.destroy(name, delete_files=delete_files)
        files = " and its files" if delete_files else ""
        await self.audit(name, f"destroyed server {name}{files}")

    def status(self, name: str | None) -> dict[str, Any]:
        if name is not None:
            self.visible(name)
            return self.manager.status(name)
        return {"servers": {n: self.manager.status(n) for n in self.visible_names()}}

    async def read_log(
        self,
        name: str,
        read_index: int,
        *,
        limit: int | None,
        wait: float | None,
        encoding: Encoding | None,
    ) -> LogAnswer:
        self.visible(name)
        return await self.manager.read_log(
            name, read_index, limit=limit, wait=wait, encoding=encoding
        )

    async def command(self, name: str, line: str) -> None:
        self.may_operate(self.visible(name), "command")
        await self.manager.command(name, line)
        await self.audit(name, f"command: {line[:200]}")

    async def power(self, name: str, action: PowerAction) -> dict[str, Any]:
        record = self.visible(name)
        if action in ("start", "restart"):
            self.may_operate(record, action)
        state = await self.manager.power(name, action, by=self.principal.account_id)
        await self.audit(name, f"{action.replace('_', ' ')} (now {state.value})")
        return {"server": name, "status": state.value}

    async def settings(
        self, name: str, changes: Mapping[str, Any] | None
    ) -> list[dict[str, object]]:
        record = self.visible(name)
        if changes:
            self.may_operate(record, "settings")
            self.may_set_user(changes, record.settings)
        view = await self.manager.settings(name, changes)
        if changes:
            await self.audit(name, f"settings changed: {', '.join(sorted(changes))}")
        return view


async def stop_unattended_servers(ctx: ApiContext, actor: Actor | None = None) -> list[str]:
    """Stop, each audited, the servers of an admin-only type that no ADMIN answers for
    any more (their owner lost ADMIN or was deleted, and whoever last started them is
    no ADMIN either); return their names. Every account change that can take ADMIN
    away runs it at once, and housekeeping runs it for changes made to the store."""
    manager = ctx.servers
    candidates: list[tuple[str, int | None, int | None]] = []
    for name in manager.names():
        record = manager.record(name)
        stype = manager.types.get(record.type)
        if stype is None or not stype.admin_only:
            continue
        if manager.supervisor(name).state in STOPPABLE_STATES:
            candidates.append((name, record.owner_id, manager.started_by(name)))
    if not candidates:
        return []
    ids = {i for _, owner, starter in candidates for i in (owner, starter) if i is not None}

    def flags_of(conn: sqlite3.Connection) -> dict[int, frozenset[str]]:
        found = (accounts.get(conn, i) for i in ids)
        return {a.id: a.flags for a in found if a is not None}

    flags = await ctx.db.call(flags_of)
    stopped: list[str] = []

    async def stop(name: str) -> None:
        try:
            state = await manager.power(name, "stop")
        except (Conflict, NotFound):
            return  # busy (another stop runs) or destroyed meanwhile: the next sweep looks again
        stopped.append(name)
        await ctx.audit.record_done(
            "server",
            f"stopped {name} (now {state.value}): its type is admin-only and no ADMIN "
            "answers for it any more",
            actor=actor,
            session=name,
            level="warning",
        )

    async with trio.open_nursery() as nursery:
        for name, owner, starter in candidates:
            answering = [flags.get(i) for i in (owner, starter) if i is not None]
            if not runs_unattended(admin_only=True, answering=answering):
                nursery.start_soon(stop, name)
    return sorted(stopped)

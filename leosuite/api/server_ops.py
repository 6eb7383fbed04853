"""The server operations as every API surface offers them (HTTP ``/api/server_*`` and
WebSocket ``server.*``): permission checks and audit entries in one place.

Who may do what is decided by :mod:`leosuite.auth.permissions`; a server the caller
may not see does not exist for it (the same 404 as an unknown name), and a create under
a taken name gets one answer whoever has it (409 "server name not available"). An
account the owner shared the server with sees it and may do what its rights cover
(:meth:`ServerOps.with_right`, 403 otherwise); only the owner or an ADMIN destroys or
shares it (:meth:`ServerOps.managed`). A server
of an admin-only type is started, restarted, reconfigured, typed into and has its files
changed by an ADMIN only; :func:`stop_unattended_servers` stops those no ADMIN answers
for any more. An operation that happened is answered as done: when the store cannot
take its audit entry (a full disk), the entry goes to the daemon log instead
(:meth:`AuditLog.record_done`). A power action or command for a server that another
node runs goes to that node, which checks and audits it (:mod:`.forwarding`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
import trio

from ..audit import Actor
from ..auth.permissions import (
    RIGHTS,
    may_change_files_run_as_daemon,
    may_create_another_server,
    may_create_server_type,
    may_create_servers,
    may_manage_server,
    may_operate_server_type,
    may_pass_limit_ceilings,
    may_see_server,
    may_see_server_owners,
    may_set_server_user,
    runs_unattended,
    server_rights,
)
from ..auth.service import Principal
from ..errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..store import accounts
from ..store.servers import ServerRecord
from ..supervision.console_answer import Encoding, LogAnswer
from ..supervision.install_guard import refusal
from ..supervision.manager import ServerManager
from ..supervision.states import POWER_ACTIONS, STOPPABLE_STATES, PowerAction
from ..supervision.types import validate_server_name
from .context import ApiContext
from .fleet_view import (
    choose_node,
    created_on_node,
    destroyed_here,
    fleet_admit,
    foreign_record,
    foreign_status,
    foreign_visible,
    refuse_elsewhere,
)
from .forwarding import console_elsewhere, forwarded_command, forwarded_power, forwarded_settings

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
    "install": "installing",
}

#: The settings that start the server with nobody asking: changing one needs ``power`` too.
_STARTING_SETTINGS = ("autostart", "restart", "max_restarts")


class ServerOps:
    """One caller's view of the servers: ``principal`` acting from ``ip``."""

    def __init__(self, ctx: ApiContext, principal: Principal, ip: str) -> None:
        self.ctx = ctx
        self.manager: ServerManager = ctx.servers
        self.principal = principal
        self.ip = ip

    def granted(self, record: ServerRecord) -> frozenset[str]:
        """What the caller's account was granted on the server (by its owner or an ADMIN)."""
        return self.ctx.grants.rights(record.id, self.principal.account_id)

    def rights(self, record: ServerRecord) -> frozenset[str]:
        """The caller's rights on the server (all of them for its owner and an ADMIN)."""
        return server_rights(self.principal, record, self.granted(record))

    def sees(self, record: ServerRecord) -> bool:
        return may_see_server(self.principal, record, self.granted(record))

    def visible(self, name: str) -> ServerRecord:
        """This node's server ``name`` if the caller may see it: 409 naming its node for
        a server another node runs (what is asked is done there), else 404."""
        validate_server_name(name)  # a malformed name is invalid input, as on create
        if self.manager.find_record(name) is None:
            refuse_elsewhere(self, name, "done")
        record = self.manager.record(name)  # NotFound for unknown names
        if not self.sees(record):
            raise NotFound(f"no server named {name!r}", field="server")
        return record

    def visible_names(self) -> list[str]:
        manager = self.manager
        return [n for n in manager.names() if self.sees(manager.record(n))]

    async def owners(self, names: list[str]) -> dict[str, Any]:
        """What ``server_list`` adds for an ADMIN: ``owners``, each listed server's
        owner's username (None when it has none or it was deleted); nothing for others."""
        if not may_see_server_owners(self.principal):
            return {}
        owner_ids = {n: self._any_record(n).owner_id for n in names}
        wanted = {i for i in owner_ids.values() if i is not None}

        def usernames(conn: sqlite3.Connection) -> dict[int, str]:
            found = (accounts.get(conn, i) for i in wanted)
            return {a.id: a.username for a in found if a is not None}

        known = await self.ctx.db.call(usernames) if wanted else {}
        return {"owners": {n: known.get(i) if i else None for n, i in owner_ids.items()}}

    def listing(self) -> dict[str, Any]:
        """``server.list``: the names the caller sees and its rights on each."""
        records = [self.manager.record(n) for n in self.visible_names()]
        records = sorted(records + foreign_visible(self), key=lambda r: r.name)
        return {
            "servers": [r.name for r in records],
            "rights": {r.name: [x for x in RIGHTS if x in self.rights(r)] for r in records},
        }

    def require(self, record: ServerRecord, right: str) -> ServerRecord:
        """Refuse (403) an action that ``right`` covers unless the caller has it."""
        if right not in self.rights(record):
            raise PermissionDenied(
                f"your account's rights on server {record.name!r} do not include {right!r}"
            )
        return record

    def with_right(self, name: str, right: str) -> ServerRecord:
        """The server ``name`` if the caller may see it (else 404) and has ``right`` (403)."""
        return self.require(self.visible(name), right)

    def managed(self, name: str, *, any_node: bool = False) -> ServerRecord:
        """The server ``name`` if the caller is its owner or an ADMIN: 404 when it may
        not see it, 403 for a grantee. ``any_node``: a server of another node counts
        too (for what lives in the store only, as its grants)."""
        if any_node:
            validate_server_name(name)
            record = self._any_record(name)
            if not self.sees(record):
                raise NotFound(f"no server named {name!r}", field="server")
        else:
            record = self.visible(name)
        if not may_manage_server(self.principal, record):
            raise PermissionDenied(
                f"only the owner of server {name!r} or an ADMIN may destroy it or share it"
            )
        return record

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

    def may_set_limits(self, given: Mapping[str, Any], current: Mapping[str, Any]) -> None:
        """Refuse resource limits where no cgroup can be made (400, saying how to enable
        them), and above a ``limits.max_*`` ceiling unless the caller is an ADMIN (403)."""
        admin = may_pass_limit_ceilings(self.principal)
        refused = self.manager.limits.refusal(given, current, admin=admin)
        if refused is None:
            return
        field, message, forbidden = refused
        if forbidden:
            raise PermissionDenied(message)
        raise InvalidInput(message, field=field)

    def limits_view(
        self, items: list[dict[str, object]], *, fields: bool = True
    ) -> list[dict[str, object]]:
        """A form's variables with the limits' ceilings shown (see ``ServerLimits.annotate``;
        the settings view keeps its keys, the ceilings are in the descriptions)."""
        admin = may_pass_limit_ceilings(self.principal)
        self.manager.limits.annotate(items, admin=admin, fields=fields)
        return items

    def may_operate(self, record: ServerRecord, operation: str) -> None:
        """Refuse ``operation`` (a key of ``_OPERATIONS``) on a server of an admin-only
        type unless the caller is an ADMIN now, whoever created the server."""
        admin_only = self.manager.stype(record.type).admin_only
        if not may_operate_server_type(self.principal, admin_only=admin_only):
            raise PermissionDenied(
                f"{_OPERATIONS[operation]} a server of type {record.type!r} needs the ADMIN flag"
            )

    def may_install(self, record: ServerRecord, *, on_start: bool) -> None:
        """Refuse an install that puts what settings say into a server running as the
        daemon's own user unless the caller is an ADMIN (see ``install_guard``)."""
        if may_change_files_run_as_daemon(self.principal):
            return
        if self.manager.install_needs_admin(record.name, on_start=on_start):
            raise PermissionDenied(refusal(record.name))

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
        variables = self.limits_view(self.manager.create_options(type_name))
        return {"type": type_name, "variables": variables}

    async def create(
        self, name: str, type_name: str, settings: Mapping[str, Any], node: str | None = None
    ) -> dict[str, Any]:
        """Create a server on ``node`` (this one when None; see :mod:`.fleet_view`)."""
        self.may_create(type_name)
        self.may_set_user(settings, {})
        self.may_set_limits(settings, {})
        chosen = await choose_node(self.ctx, node)
        record = await self.manager.create(
            name, type_name, settings, owner_id=self.principal.account_id,
            admit=fleet_admit(self), node=chosen or None,
        )  # fmt: skip
        where = await created_on_node(self, record)
        await self.audit(record.name, f"created server {record.name} of type {record.type}{where}")
        return {"server": record.name, "readIndex": 0}

    async def destroy(self, name: str, *, delete_files: bool) -> None:
        refuse_elsewhere(self, name, "destroyed")  # its files are on its node's host
        record = self.managed(name)
        await self.manager.destroy(name, delete_files=delete_files)
        await destroyed_here(self, name)
        self.ctx.grants.forget_server(record.id)
        if self.ctx.schedules is not None:
            self.ctx.schedules.forget_server(record.id)
        if self.ctx.backups is not None:  # its backups go with it (docs/backups.md)
            await self.ctx.backups.forget_server(record.id)
        files = " and its files" if delete_files else ""
        await self.audit(name, f"destroyed server {name}{files}")

    def status(self, name: str | None) -> dict[str, Any]:
        if name is not None:
            if (foreign := foreign_record(self, name)) is not None:
                return foreign_status(self, foreign)
            return self._status(self.visible(name))
        manager = self.manager
        found = {n: self._status(manager.record(n)) for n in self.visible_names()}
        found.update((r.name, foreign_status(self, r)) for r in foreign_visible(self))
        return {"servers": dict(sorted(found.items()))}

    def _any_record(self, name: str) -> ServerRecord:
        """A server this node or another one runs (NotFound when there is none)."""
        return foreign_record(self, name) or self.manager.record(name)

    def _status(self, record: ServerRecord) -> dict[str, Any]:
        """A server's status with the caller's ``rights`` on it and whether it may
        ``manage`` it (share, destroy)."""
        status = self.manager.status(record.name)
        rights = self.rights(record)
        if "console" not in rights:  # the live figures are the console right's
            status.update(cpu=None, memory=None, threads=None)
        status["rights"] = [r for r in RIGHTS if r in rights]
        status["manage"] = may_manage_server(self.principal, record)
        status["node"] = self.manager.node
        return status

    def stats_history(self, name: str) -> dict[str, Any]:
        """The last hour of ``name``'s samples: the live figures, under ``console``."""
        self.with_right(name, "console")
        history = self.manager.stats_history
        samples = [sample._asdict() for sample in history.samples(name)]
        return {"server": name, "interval": history.interval, "samples": samples}

    async def read_log(
        self,
        name: str,
        read_index: int,
        *,
        limit: int | None,
        wait: float | None,
        encoding: Encoding | None,
    ) -> LogAnswer:
        console_elsewhere(self, name)
        record = self.with_right(name, "console")
        answer = await self.manager.read_log(
            name, read_index, limit=limit, wait=wait, encoding=encoding
        )
        self.require(record, "console")  # revoked while the read waited
        return answer

    async def command(self, name: str, line: str) -> None:
        if await forwarded_command(self, name, line):  # another node runs it
            return
        record = self.with_right(name, "commands")
        self.may_operate(record, "command")
        if "power" not in self.rights(record) and self._stops(record, line):
            raise PermissionDenied(
                f"{line.strip()[:100]!r} is the stop command of server {name!r}: typing it "
                "stops the server, which needs the 'power' right as well"
            )
        await self.manager.command(name, line)
        await self.audit(name, f"command: {line[:200]}")

    def _stops(self, record: ServerRecord, line: str) -> bool:
        """Whether typing ``line`` is a requested stop: it is the stop command of the
        server's type or launch spec, compared as the supervisor compares it."""
        candidates = (
            self.manager.stype(record.type).stop_command,
            self.manager.supervisor(record.name).spec.stop_command,
        )
        return any(c is not None and line.strip() == c.strip() for c in candidates)

    async def power(self, name: str, action: PowerAction) -> dict[str, Any]:
        if (answer := await forwarded_power(self, name, action)) is not None:
            return answer  # the answer of the node that runs it
        record = self.with_right(name, "power")
        if action in ("start", "restart"):
            self.may_operate(record, action)
            self.may_install(record, on_start=True)
        state = await self.manager.power(name, action, by=self.principal.account_id)
        await self.audit(name, f"{action.replace('_', ' ')} (now {state.value})")
        return {"server": name, "status": state.value}

    async def install(self, name: str) -> dict[str, Any]:
        """Run the server's install steps now: whoever may start it may install it."""
        if (answer := await forwarded_power(self, name, "install")) is not None:
            return answer  # the answer of the node that runs it
        record = self.with_right(name, "power")
        self.may_operate(record, "install")
        self.may_install(record, on_start=False)
        answer = await self.manager.install(name)
        outcome = "install done" if answer["installed"] else answer["error"]
        await self.audit(name, f"{outcome} (now {answer['status']})"[:300])
        return answer

    async def settings(self, name: str, changes: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        if (answer := await forwarded_settings(self, name, changes)) is not None:
            return answer  # the answer of the node that runs it
        record = self.with_right(name, "settings")
        if changes:
            self.may_operate(record, "settings")
            self.may_set_user(changes, record.settings)
            self.may_set_limits(changes, record.settings)
            starting = [key for key in _STARTING_SETTINGS if key in changes]
            if starting and "power" not in self.rights(record):
                raise PermissionDenied(
                    f"the setting {starting[0]!r} starts server {name!r} with nobody asking: "
                    "changing it needs the 'power' right as well"
                )
        view = self.limits_view(await self.manager.settings(name, changes), fields=False)
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

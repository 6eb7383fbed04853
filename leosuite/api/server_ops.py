"""The server operations as every API surface offers them (HTTP ``/api/server_*`` and
WebSocket ``server.*``): permission checks and audit entries in one place.

Who may do what is decided by :mod:`leosuite.auth.permissions`; a server the caller
may not see does not exist for it (the same 404 as an unknown name).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..auth.permissions import may_create_server_type, may_create_servers, may_see_server
from ..auth.service import Principal
from ..errors import NotFound, PermissionDenied
from ..store.servers import ServerRecord
from ..supervision.manager import Encoding, LogAnswer, ServerManager
from ..supervision.states import POWER_ACTIONS, PowerAction
from ..supervision.types import validate_server_name
from .context import ApiContext

__all__ = ["POWER_ACTIONS", "ServerOps"]


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
        await self.ctx.audit.record(
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
        record = await self.manager.create(
            name, type_name, settings, owner_id=self.principal.account_id
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
        self.visible(name)
        await self.manager.command(name, line)
        await self.audit(name, f"command: {line[:200]}")

    async def power(self, name: str, action: PowerAction) -> dict[str, Any]:
        self.visible(name)
        state = await self.manager.power(name, action)
        await self.audit(name, f"{action.replace('_', ' ')} (now {state.value})")
        return {"server": name, "status": state.value}

    async def settings(
        self, name: str, changes: Mapping[str, Any] | None
    ) -> list[dict[str, object]]:
        self.visible(name)
        view = await self.manager.settings(name, changes)
        if changes:
            await self.audit(name, f"settings changed: {', '.join(sorted(changes))}")
        return view

"""A server's backups, as every API surface offers them (HTTP ``/api/server_backup_*``,
WebSocket ``backup.*``, the CLI through them).

Who may do what: the owner of the server or an ADMIN creates, deletes and restores its
backups (404 for whoever does not see the server, 403 for a grantee); a restore
changes its files, so on a server of an admin-only type it takes an ADMIN. Whoever
has the ``files`` right on it (its owner, an ADMIN, a grantee given ``files``) lists,
downloads and follows them; a grantee without it gets 403. The rest
of the rules (quota, retention, one job per server) are the service's
(:mod:`leosuite.backups.service`). Creates, deletes and restores are audited there,
downloads here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

import msgspec

from ..auth.permissions import may_manage_server
from ..backups.jobs import Watcher
from ..backups.model import MAX_NOTE, Backup, Progress
from ..backups.service import BackupService, Opened
from ..errors import Conflict, PermissionDenied
from ..store.servers import ServerRecord
from .server_ops import ServerOps

__all__ = ["BackupId", "BackupOps", "Note", "backup_view", "progress_view"]

#: A backup's id as a client sends it.
BackupId = Annotated[int, msgspec.Meta(ge=1, le=2**53)]
#: A note given to a new backup.
Note = Annotated[str, msgspec.Meta(max_length=MAX_NOTE)]


def backup_view(server: str, b: Backup) -> dict[str, Any]:
    return {
        "id": b.id,
        "server": server,
        "name": b.name,
        "created_at": b.created_at,
        "size": b.size,
        "sha256": b.sha256,
        "files": b.files,
        "source_bytes": b.source_bytes,
        "compression": b.compression,
        "by": b.by,
        "note": b.note,
    }


def progress_view(p: Progress) -> dict[str, Any]:
    return {
        "server": p.server,
        "id": p.id,
        "phase": p.phase,
        "done_bytes": p.done_bytes,
        "total_bytes": p.total_bytes,
    }


class BackupOps:
    """One caller's use of server backups (``ops``: who asks, from where)."""

    def __init__(self, ops: ServerOps) -> None:
        self.ops = ops

    @property
    def service(self) -> BackupService:
        service = self.ops.ctx.backups
        if service is None:
            raise Conflict("backups are not running yet")
        return service

    def _reader(self, server: str) -> ServerRecord:
        return self.ops.with_right(server, "files")

    def _manager(self, server: str) -> ServerRecord:
        """The server if the caller is its owner or an ADMIN (404 unseen, 403 a grantee)."""
        record = self.ops.visible(server)
        if not may_manage_server(self.ops.principal, record):
            raise PermissionDenied(
                f"only the owner of server {server!r} or an ADMIN may make, delete or "
                "restore its backups"
            )
        return record

    @contextlib.contextmanager
    def _watching(self, server: str, watcher: Watcher | None) -> Iterator[None]:
        if watcher is None:
            yield
            return
        with self.service.watch(server, watcher):
            yield

    async def listing(self, server: str) -> dict[str, Any]:
        record = self._reader(server)
        service = self.service
        backups = await service.listing(record)
        quota = await service.quota(record)
        return {
            "server": server,
            "backups": [backup_view(server, b) for b in backups],
            "quota": {"used": quota.used, "limit": quota.limit},
        }

    def status(self, server: str) -> dict[str, Any]:
        self._reader(server)
        progress = self.service.status(server)
        if progress is None:
            return {
                "server": server,
                "running": False,
                "id": None,
                "phase": None,
                "done_bytes": 0,
                "total_bytes": 0,
            }
        return {**progress_view(progress), "running": True}

    async def create(
        self, server: str, note: str = "", *, watcher: Watcher | None = None
    ) -> dict[str, Any]:
        record = self._manager(server)
        principal = self.ops.principal
        with self._watching(server, watcher):
            made = await self.service.create(
                record, actor=principal.actor(self.ops.ip), by=principal.username, note=note
            )
        return backup_view(server, made)

    async def delete(self, server: str, backup_id: int) -> dict[str, Any]:
        record = self._manager(server)
        actor = self.ops.principal.actor(self.ops.ip)
        gone = await self.service.delete(record, backup_id, actor=actor)
        return {"server": server, "id": gone.id, "name": gone.name, "deleted": True}

    async def restore(
        self, server: str, backup_id: int, *, watcher: Watcher | None = None
    ) -> dict[str, Any]:
        record = self._manager(server)
        self.ops.may_operate(record, "files")
        actor = self.ops.principal.actor(self.ops.ip)
        with self._watching(server, watcher):
            restored = await self.service.restore(record, backup_id, actor=actor)
        return {"server": server, "backup": backup_view(server, restored), "restored": True}

    async def open_download(self, server: str, backup_id: int) -> Opened:
        record = self._reader(server)
        opened = await self.service.open_download(record, backup_id)
        await self.ops.audit(server, f"backup {opened.backup.name} downloaded")
        return opened

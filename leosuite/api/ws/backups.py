"""WebSocket ``backup.list {server}``, ``backup.status {server}``, ``backup.create {server,
note?}``, ``backup.delete {server, id}`` and ``backup.restore {server, id}``: the same calls
and answers as HTTP ``/api/server_backup_*``; the rules are
:mod:`leosuite.api.backup_ops`'s.

``backup.create`` and ``backup.restore`` answer once the work is done; meanwhile the
connection that asked gets ``backup.progress`` pushes ``{server, id, phase, done_bytes,
total_bytes}`` (a few a second at most, and at each change of phase: ``commands``,
``archiving`` or ``restoring``, then ``done`` or ``failed``). A push that does not fit
the connection's queue is dropped: the answer still comes.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..backup_ops import BackupId, BackupOps, Note, progress_view
from ..server_ops import ServerOps
from .api import WsApi
from .conn import WsConnection
from .protocol import decode_content, push

__all__ = ["install_backup_calls"]


class _Server(msgspec.Struct, forbid_unknown_fields=True):
    server: str


class _Create(msgspec.Struct, forbid_unknown_fields=True):
    server: str
    note: Note = ""


class _One(msgspec.Struct, forbid_unknown_fields=True):
    server: str
    id: BackupId


def install_backup_calls(api: WsApi) -> None:
    ctx = api.ctx

    def backups(conn: WsConnection) -> BackupOps:
        assert conn.principal is not None
        return BackupOps(ServerOps(ctx, conn.principal, conn.ip))

    def pusher(conn: WsConnection) -> Any:
        return lambda progress: conn.push_nowait(push("backup.progress", progress_view(progress)))

    async def listing(conn: WsConnection, content: Any) -> Any:
        return await backups(conn).listing(decode_content(content, _Server).server)

    async def status(conn: WsConnection, content: Any) -> Any:
        return backups(conn).status(decode_content(content, _Server).server)

    async def create(conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, _Create)
        return await backups(conn).create(query.server, query.note, watcher=pusher(conn))

    async def delete(conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, _One)
        return await backups(conn).delete(query.server, query.id)

    async def restore(conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, _One)
        return await backups(conn).restore(query.server, query.id, watcher=pusher(conn))

    api.add("backup.list", listing)
    api.add("backup.status", status)
    api.add("backup.create", create)
    api.add("backup.delete", delete)
    api.add("backup.restore", restore)

"""The files in a server's directory, as the API surfaces offer them: who may list,
read and change them, the audit entries of every change, and the blocking file system
work moved to worker threads.

The caller must see the server (:meth:`ServerOps.visible`: 404 otherwise) and may use
its files (:func:`~leosuite.auth.permissions.may_use_server_files`); a change to a
server of an admin-only type also needs ADMIN (:meth:`ServerOps.may_operate`). Paths
are confined to the server's directory by :mod:`leosuite.supervision.server_files`.
An upload is checked again before it is put in place (:meth:`FileOps.end_upload`).
Every change is audited (topic ``server``, the server's name as session).
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import trio

from ..auth.permissions import may_change_files_run_as_daemon, may_use_server_files
from ..errors import InvalidInput, PermissionDenied
from ..store.servers import ServerRecord
from ..supervision.file_paths import Parts, parse_path, shown
from ..supervision.run_as import resolve_user
from ..supervision.server_files import PendingFile, ServerFiles
from .server_ops import ServerOps

__all__ = ["FileOps", "Opened"]

#: How a file's content travels in JSON (as the console's does).
Encoding = Literal["utf-8", "base64"]


class Opened:
    """A file opened for a download: its descriptor (the reader closes it), name and
    status."""

    def __init__(self, fd: int, name: str, size: int, mtime: float) -> None:
        self.fd = fd
        self.name = name
        self.size = size
        self.mtime = mtime


class FileOps:
    """One caller's use of the servers' files (``ops``: who asks, from where)."""

    def __init__(self, ops: ServerOps) -> None:
        self.ops = ops

    def _files(self, server: str, *, change: bool) -> ServerFiles:
        return self._allowed(self.ops.visible(server), change=change)

    def _allowed(self, record: ServerRecord, *, change: bool) -> ServerFiles:
        """The server's files if the caller may use them (and change them: ``change``)."""
        server = record.name
        if not may_use_server_files(self.ops.principal, record, self.ops.granted(record)):
            raise PermissionDenied(f"this account may not use the files of server {server!r}")
        manager = self.ops.manager
        owner: tuple[int, int] | None = None
        if change:
            self.ops.may_operate(record, "files")
            user = manager.supervisor(server).spec.user
            if user:
                run_as = resolve_user(user)
                if not run_as.is_daemon:
                    owner = (run_as.uid, run_as.gid)
            if owner is None and not may_change_files_run_as_daemon(self.ops.principal):
                raise PermissionDenied(
                    f"server {server!r} runs as the daemon's own user: only an ADMIN may "
                    "change its files (give it a user of its own, or set servers.user)"
                )
        return ServerFiles(manager.dirs.server(server), owner=owner)

    async def _audit(self, server: str, message: str) -> None:
        await self.ops.audit(server, f"files: {message}")

    async def list(self, server: str, path: str) -> dict[str, Any]:
        files, parts = self._files(server, change=False), parse_path(path)
        return await trio.to_thread.run_sync(files.list, parts)

    async def read(
        self, server: str, path: str, *, encoding: Encoding | None, limit: int
    ) -> dict[str, Any]:
        """The file's content as text (UTF-8, when it is) or base64."""
        files, parts = self._files(server, change=False), parse_path(path)
        data, st = await trio.to_thread.run_sync(lambda: files.read(parts, limit=limit))
        text: str | None = None
        if encoding != "base64":
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                if encoding == "utf-8":
                    raise InvalidInput(
                        "this file is not valid UTF-8; ask for encoding base64", field="encoding"
                    ) from None
        return {
            "path": "/".join(parts),
            "size": len(data),
            "mtime": st.st_mtime,
            "encoding": "utf-8" if text is not None else "base64",
            "data": text if text is not None else base64.b64encode(data).decode("ascii"),
        }

    async def open_download(self, server: str, path: str) -> Opened:
        files, parts = self._files(server, change=False), parse_path(path)
        fd, st = await trio.to_thread.run_sync(files.open_file, parts)
        return Opened(fd, parts[-1], st.st_size, st.st_mtime)

    async def write(
        self, server: str, path: str, data: str, *, encoding: Encoding
    ) -> dict[str, Any]:
        files, parts = self._files(server, change=True), _file_path(path)
        if encoding == "base64":
            try:
                content = base64.b64decode(data, validate=True)
            except ValueError:
                raise InvalidInput("data: is not valid base64", field="data") from None
        else:
            content = data.encode("utf-8")
        entry = await trio.to_thread.run_sync(files.write, parts, content)
        await self._audit(server, f"wrote {shown(parts)} ({len(content)} bytes)")
        return {"path": "/".join(parts), **entry}

    async def begin_upload(self, server: str, path: str) -> PendingFile:
        """The new file an upload is written to; :meth:`end_upload` puts it in place."""
        files, parts = self._files(server, change=True), _file_path(path)
        return await trio.to_thread.run_sync(files.create, parts)

    async def end_upload(self, server: str, pending: PendingFile) -> dict[str, Any]:
        """Put the upload in place if the caller (authenticated again by the surface) may
        still change the server's files: a revoke or a lock while the body came refuses
        it (403), and the caller aborts ``pending``."""
        self._allowed(self.ops.manager.record(server), change=True)
        entry = await trio.to_thread.run_sync(pending.commit)
        await self._audit(server, f"uploaded {shown(pending.parts)} ({pending.size} bytes)")
        return {"path": "/".join(pending.parts), **entry}

    async def rename(self, server: str, path: str, to: str) -> dict[str, Any]:
        files = self._files(server, change=True)
        parts, target = parse_path(path), parse_path(to, field="to")
        entry = await trio.to_thread.run_sync(files.rename, parts, target)
        await self._audit(server, f"renamed {shown(parts)} to {shown(target)}")
        return {"path": "/".join(target), **entry}

    async def delete(self, server: str, path: str, *, recursive: bool) -> None:
        files, parts = self._files(server, change=True), parse_path(path)
        kind = await trio.to_thread.run_sync(lambda: files.delete(parts, recursive=recursive))
        await self._audit(server, f"deleted {kind} {shown(parts)}")

    async def mkdir(self, server: str, path: str, *, parents: bool) -> dict[str, Any]:
        files, parts = self._files(server, change=True), parse_path(path)
        entry = await trio.to_thread.run_sync(lambda: files.mkdir(parts, parents=parents))
        await self._audit(server, f"made directory {shown(parts)}")
        return {"path": "/".join(parts), **entry}


def _file_path(path: str) -> Parts:
    """A path that names a file (not the server's directory itself)."""
    parts = parse_path(path)
    if not parts:
        raise InvalidInput("path: name a file inside the server's directory", field="path")
    return parts

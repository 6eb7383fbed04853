"""A server's own log files as every API surface offers them (HTTP ``server_logfile``,
WebSocket ``logfile.*``): the ``console`` right covers them, as it covers the console.

``file`` is a path relative to the server's directory that the server's type declares
(one of its ``log_files`` paths, or a file a glob of them matches); anything else is
the same 404 whatever the reason, and a path that is not relative to the server's
directory (``..``, absolute) is invalid input. A glob's match is followed only while it
exists as a regular file (a declared path itself may still be waited for): a name
nobody wrote is no file to follow. Every look at the disk runs in the log files' own
worker threads (``servers.logfile_threads``); a long poll ends early, answering what
there is, when the daemon stops or reloads (``ServerManager.end_waits``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import trio

from ..errors import InvalidInput, LeosuiteError, NotFound
from ..store.servers import ServerRecord
from ..supervision.console_answer import Encoding, LogAnswer, encode_console_data
from ..supervision.file_paths import Parts, parse_path
from ..supervision.log_files import declared, expand_bounded, is_declared, is_fixed, is_regular_file
from ..supervision.logfile_follow import LogFollower
from .first_of import first_of
from .server_ops import ServerOps

__all__ = ["LogFileOps"]


class LogFileOps:
    """One caller's view of the servers' log files."""

    def __init__(self, ops: ServerOps) -> None:
        self.ops = ops
        self.ctx = ops.ctx

    def _declared(self, record: ServerRecord) -> list[Parts]:
        stype = self.ops.manager.types.get(record.type)
        if stype is None or not stype.log_files:
            return []
        return declared(stype.log_files, record.settings)

    def _root(self, record: ServerRecord) -> Path:
        return self.ops.manager.dirs.server(record.name)

    def _follower(self, record: ServerRecord, parts: Parts) -> LogFollower:
        return self.ctx.logfiles.get(record.id, self._root(record), parts)

    async def follower(self, server: str, file: str) -> tuple[ServerRecord, LogFollower]:
        """The declared log file ``file`` of ``server`` (the caller needs ``console``)."""
        record = self.ops.with_right(server, "console")
        parts = parse_path(file, field="file")
        patterns = self._declared(record)
        missing = NotFound(f"server {server!r} declares no log file {file!r}", field="file")
        if not parts or not is_declared(patterns, parts):
            raise missing
        if not is_fixed(patterns, parts) and not self.ctx.logfiles.known(record.id, parts):
            root, threads = self._root(record), self.ctx.logfiles.threads
            if not await trio.to_thread.run_sync(is_regular_file, root, parts, limiter=threads):
                raise missing
        return record, self._follower(record, parts)

    async def listing(self, server: str) -> dict[str, Any]:
        """``{"server", "files": [{"file", "exists", "size", "readIndex", "oldestIndex"}],
        "truncated"}``; a file that may not be read has ``error`` instead of its figures;
        ``truncated`` says that more files (or directory entries) were left out."""
        record = self.ops.with_right(server, "console")
        patterns = self._declared(record)
        found, truncated = await trio.to_thread.run_sync(
            expand_bounded, self._root(record), patterns, limiter=self.ctx.logfiles.threads
        )
        files: list[dict[str, Any]] = []
        for parts in found:
            item: dict[str, Any] = {"file": "/".join(parts)}
            try:
                follower = self._follower(record, parts)
                await follower.refresh()
            except LeosuiteError as exc:
                files.append({**item, "error": exc.message})
                continue
            files.append(
                {
                    **item,
                    "exists": follower.exists,
                    "size": follower.size,
                    "readIndex": follower.end_index,
                    "oldestIndex": follower.oldest_index,
                }
            )
        return {"server": server, "files": files, "truncated": truncated}

    async def read(
        self,
        server: str,
        file: str,
        read_index: int,
        *,
        limit: int | None,
        wait: float | None,
        encoding: Encoding | None,
    ) -> LogAnswer:
        """What ``server_log`` answers, of the log file ``file``."""
        record, follower = await self.follower(server, file)
        servers = self.ctx.settings.servers
        cap = servers.log_max_read
        limit = cap if limit is None else min(limit, cap)
        if limit < 0:
            raise InvalidInput("max must not be negative", field="max")
        if wait is not None:
            if wait < 0:
                raise InvalidInput("wait must not be negative", field="wait")
            await follower.read(read_index, 0)  # validates the index before waiting
            with trio.move_on_after(min(wait, servers.log_max_wait)):
                await first_of(
                    partial(follower.wait_beyond, read_index), self.ops.manager.waits_ended
                )
            self.ops.require(self.ops.visible(server), "console")  # revoked meanwhile
            if self.ops.manager.record(server).id != record.id:
                raise NotFound(f"no server named {server!r}", field="server")
        chunk = await follower.read(read_index, limit)
        return encode_console_data(chunk, encoding)

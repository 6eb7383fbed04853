"""Tokens that another process ends: ``leosuite user lock`` and ``user passwd`` change
the store directly while the daemon runs, so the daemon watches the store's files and,
whenever they change (and at least every ``full_every`` seconds), asks the store which
of its cached tokens still stand: the others end at once, and with them every
connection that uses them (:meth:`AuthService.recheck_tokens`). Then each of
``AuthService.on_store_changed`` re-checks what it holds without a token (the chat's
connections of accounts registered over the chat). On a PostgreSQL store there is no
file to watch: other nodes and the command line say so on the cluster's bus
(:mod:`leosuite.cluster.sync`), and the re-check every ``full_every`` seconds stays as
the safety net."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import trio

from .service import AuthService

__all__ = ["watch_tokens"]

log = logging.getLogger("leosuite.auth")

Stamp = tuple[tuple[int, int] | None, ...]


def _stamp(paths: Sequence[Path]) -> Stamp:
    """Each file's (modification time, size); None for one that does not exist."""
    stamps: list[tuple[int, int] | None] = []
    for path in paths:
        try:
            status = os.stat(path)
        except OSError:
            stamps.append(None)
        else:
            stamps.append((status.st_mtime_ns, status.st_size))
    return tuple(stamps)


def store_files(db_path: Path) -> list[Path]:
    """The files a write to the store changes (WAL mode: the log beside the database)."""
    return [db_path, db_path.with_name(db_path.name + "-wal")]


async def watch_tokens(
    auth: AuthService,
    db_path: Path,
    *,
    interval: float = 0.25,
    full_every: float = 30.0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Re-check the cached tokens whenever the store changed; never returns."""
    paths = store_files(db_path)
    last = _stamp(paths)
    next_full = trio.current_time() + full_every
    task_status.started()
    while True:
        await trio.sleep(interval)
        stamp = _stamp(paths)
        if stamp == last and trio.current_time() < next_full and not auth.recheck_wanted:
            continue
        last, next_full = stamp, trio.current_time() + full_every
        try:
            await auth.recheck_tokens()
            for recheck in list(auth.on_store_changed):
                await recheck()
        except Exception:
            log.exception("re-checking the access tokens failed; will retry")

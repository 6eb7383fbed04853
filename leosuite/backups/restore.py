"""Restoring a backup into a server's directory so that a failure loses nothing.

The archive must still be the file the backup recorded (its SHA-256, checked by the
engine before it writes anything). The current directory is renamed to a sibling
temporary name, the archive restored into the real path by the engine (which refuses
absolute paths, ``..`` and links leaving the directory), the directory handed to the
server's user when it runs as another one, and only then the old directory removed.
Any failure, a cancellation included, removes what was restored and renames the old
directory back."""

from __future__ import annotations

import contextlib
import os
import shutil
from functools import partial
from pathlib import Path

import trio

from ..errors import LeosuiteError, NotFound
from ..supervision.fs import reown_tree
from ..supervision.run_as import resolve_user
from ..supervision.spec import LaunchSpec
from . import archive, files, worker
from .model import Backup

__all__ = ["restore_into"]

#: What a restore may write beyond the bytes the backup recorded (directories, rounding).
_SLACK = 64 * 1024 * 1024


async def restore_into(
    directory: Path,
    archive_path: Path,
    backup: Backup,
    *,
    spec: LaunchSpec,
    stamp: int,
    progress: archive.Progress,
    limiter: trio.CapacityLimiter,
) -> None:
    if not await trio.to_thread.run_sync(os.path.isfile, archive_path):
        raise NotFound(f"the file of backup {backup.id} is missing", field="id")
    aside = await trio.to_thread.run_sync(files.move_aside, directory, f"restore-{stamp}")
    try:
        await worker.restore_archive(
            archive_path,
            directory,
            progress=progress,
            limiter=limiter,
            max_bytes=backup.source_bytes + _SLACK,
            expect_sha256=backup.sha256,
        )
        await trio.to_thread.run_sync(_hand_over, directory, spec)
    except BaseException:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(files.move_back, directory, aside)
        raise
    with trio.CancelScope(shield=True):
        await trio.to_thread.run_sync(partial(shutil.rmtree, aside, ignore_errors=True))


def _hand_over(directory: Path, spec: LaunchSpec) -> None:
    """Give the restored directory the owner and mode a new server directory gets."""
    run_as = None
    with contextlib.suppress(LeosuiteError):
        run_as = resolve_user(spec.user) if spec.user else None
    if run_as is not None and not run_as.is_daemon:
        reown_tree(directory, run_as.uid, run_as.gid)
    else:
        os.chmod(directory, 0o700)

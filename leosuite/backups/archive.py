"""The backup archive engine: a server's directory to one compressed tar file and back.

An archive is a PAX tar stream, zstd (``zstandard``) or gzip compressed, written by a
worker thread in blocks of :data:`BLOCK` bytes, never whole in memory, to a temporary
name beside its destination (``.<name>.partial``), fsynced, and renamed only once
complete (then its directory is fsynced); on any failure or cancel the temporary file
is removed. Its SHA-256 is computed while it is written.

What goes in: regular files (read to exactly the size their header gives: a file that
shrinks while read is padded with zeros, one that grows is cut), directories and
symbolic links (stored as links, never followed; a link whose target is absolute or
climbs out of the directory is left out, as a restore would refuse it), with their
permission bits and modification times. FIFOs, sockets and devices are skipped, as are
entries that vanish during the walk. Owners are not stored. An entry that cannot be
read (a file, or a directory that cannot be listed) stops the archive with
:class:`UnreadableFile`, which names it relative to the directory.

``exclude`` holds ``fnmatch`` patterns matched against each entry's POSIX path relative
to the directory (``*`` matches ``/`` too, so ``*.log`` matches ``logs/latest.log``); a
pattern that matches a directory leaves out everything under it.

A restore checks the whole archive first and writes nothing until every member passed
(see :mod:`.archive_restore` for how the extraction never follows a link), refusing
with :class:`UnsafeArchive`: absolute names, ``..`` components, names longer than
:data:`MAX_NAME` bytes, hard links, devices, FIFOs, a name twice, a member inside a file
or link of the archive, symbolic links whose target is absolute or resolves outside
(through the archive's other links too), more than ``max_members`` members, more than
``max_bytes`` bytes of content, and archives that are truncated or damaged
(:class:`CorruptArchive`). Restored files and directories keep their permission bits,
except setuid, setgid and sticky, and the owner may always read and write them (and
enter directories); owners are the daemon's.

Progress: ``progress(done_bytes, total_bytes)`` is called in the worker thread (callers
must only store the values, or hand them to trio with ``trio.from_thread.run_sync``),
once at the start, about every :data:`BLOCK` bytes, and once at the end with
``done_bytes == total_bytes``. For a create the bytes are file content (``total_bytes``
from a first walk); for a restore they are archive bytes read over its two passes
(``total_bytes`` is twice the archive's size).

Cancelling the calling task sets a flag the worker checks between blocks: the thread
stops within about one block, removes what it wrote, and the task sees its
cancellation.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import outcome
import trio

from leosuite.backups.archive_restore import restore_into, scan_archive
from leosuite.backups.archive_types import (
    BLOCK,
    MAX_MEMBERS,
    MAX_NAME,
    ArchiveResult,
    ArchiveTooLarge,
    Compression,
    CorruptArchive,
    Progress,
    Stopped,
    UnreadableFile,
    UnsafeArchive,
    check_create_options,
)
from leosuite.backups.archive_walk import normalize_patterns
from leosuite.backups.archive_write import partial_path, write_archive
from leosuite.errors import InternalError, InvalidInput

__all__ = [
    "BLOCK",
    "MAX_MEMBERS",
    "MAX_NAME",
    "ArchiveResult",
    "ArchiveTooLarge",
    "Compression",
    "CorruptArchive",
    "Progress",
    "UnreadableFile",
    "UnsafeArchive",
    "check_archive",
    "create_archive",
    "partial_path",
    "restore_archive",
]

T = TypeVar("T")


async def _in_thread(
    job: Callable[[threading.Event], T], limiter: trio.CapacityLimiter | None
) -> T:
    """Run ``job(stop)`` in a worker thread; a cancel sets ``stop`` and waits for the
    thread to end (it must stop soon after), then raises the cancellation."""
    stop = threading.Event()

    async def stop_on_cancel() -> None:
        try:
            await trio.sleep_forever()
        finally:
            stop.set()

    async def in_thread() -> T:
        return await trio.to_thread.run_sync(job, stop, limiter=limiter, abandon_on_cancel=False)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(stop_on_cancel)
        result = await outcome.acapture(in_thread)
        nursery.cancel_scope.cancel()
    if isinstance(result, outcome.Error) and isinstance(result.error, Stopped):
        await trio.lowlevel.checkpoint()  # the cancellation that set the flag raises here
        raise InternalError("an archive job stopped without being cancelled")
    return result.unwrap()


async def create_archive(
    src: Path,
    dest: Path,
    *,
    compression: Compression = "zstd",
    exclude: Sequence[str] = (),
    progress: Progress | None = None,
    limiter: trio.CapacityLimiter | None = None,
    zstd_threads: int = 0,
    max_size: int | None = None,
) -> ArchiveResult:
    """Archive the directory ``src`` into the file ``dest`` (replaced if there).
    ``zstd_threads`` more threads compress beside the worker (zstd only; 0: none, the
    worker compresses itself, one CPU at most). An archive that would grow past
    ``max_size`` bytes is stopped and removed (:class:`ArchiveTooLarge`)."""
    check_create_options(compression, zstd_threads)
    patterns = normalize_patterns(exclude)
    job = functools.partial(
        write_archive,
        src,
        dest,
        compression=compression,
        patterns=patterns,
        progress=progress,
        threads=zstd_threads,
        max_size=max_size,
    )
    return await _in_thread(lambda stop: job(stop=stop), limiter)


async def restore_archive(
    archive: Path,
    dest: Path,
    *,
    progress: Progress | None = None,
    limiter: trio.CapacityLimiter | None = None,
    max_bytes: int | None = None,
    max_members: int = MAX_MEMBERS,
    expect_sha256: str | None = None,
    fsync: bool = True,
) -> ArchiveResult:
    """Unpack ``archive`` into ``dest``, which must be missing or an empty directory;
    on any refusal, failure or cancel ``dest`` is left as it was (removed if made here).
    ``expect_sha256`` refuses an archive whose hash differs, before anything is written;
    ``fsync`` syncs every restored file to disk."""
    job = functools.partial(
        restore_into,
        archive,
        dest,
        max_bytes=max_bytes,
        max_members=max_members,
        expect_sha256=expect_sha256,
        progress=progress,
        fsync=fsync,
    )
    return await _in_thread(lambda stop: job(stop=stop), limiter)


def check_archive(
    archive: Path, *, max_bytes: int | None = None, max_members: int = MAX_MEMBERS
) -> ArchiveResult:
    """Read the whole ``archive`` and check every member as a restore would, writing
    nothing (synchronous: run it in a thread)."""
    try:
        return scan_archive(archive, max_bytes=max_bytes, max_members=max_members)[0]
    except FileNotFoundError as exc:
        raise InvalidInput("the backup archive does not exist") from exc

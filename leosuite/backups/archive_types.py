"""The values and errors the archive engine shares between its modules."""

from __future__ import annotations

import tarfile
import threading
from typing import Any, Literal, Protocol, cast

import msgspec

from leosuite.errors import Conflict, InvalidInput

__all__ = [
    "BLOCK",
    "MAX_MEMBERS",
    "MAX_NAME",
    "ArchiveResult",
    "ArchiveTooLarge",
    "Compression",
    "CorruptArchive",
    "Meter",
    "Progress",
    "Stopped",
    "UnreadableFile",
    "UnsafeArchive",
    "check_create_options",
    "forget_members",
    "open_tar_stream",
    "shown",
]

#: Bytes moved at a time: a file is read, written and hashed in blocks of this size.
BLOCK = 1 << 20
#: A restore refuses an archive with more members than this.
MAX_MEMBERS = 1_000_000
#: A restore refuses a member whose name is longer than this (bytes, UTF-8).
MAX_NAME = 4096

Compression = Literal["zstd", "gzip"]


class ArchiveResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one pass over an archive found."""

    #: Bytes of the archive file.
    size: int
    #: SHA-256 of the archive file, lower-case hex.
    sha256: str
    #: Regular files stored (or restored).
    files: int
    #: Bytes of file content stored (or restored).
    source_bytes: int


class Progress(Protocol):
    """Told how far a create or restore is. It is called in the worker thread, so it
    must only store the numbers (or hand them over with ``trio.from_thread.run_sync``)
    and return quickly; it may call no other trio function."""

    def __call__(self, done_bytes: int, total_bytes: int, /) -> None: ...


class UnsafeArchive(InvalidInput):
    """An archive a restore refuses; the message names the member and the reason."""


class CorruptArchive(UnsafeArchive):
    """An archive that cannot be read to its end: truncated, damaged, or not one of ours."""


class ArchiveTooLarge(Conflict):
    """An archive being written grew past the size its caller allowed (it is removed)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the archive grew past {limit} bytes")
        self.limit = limit


class UnreadableFile(Conflict):
    """An entry of the directory being archived cannot be read (the archive is removed);
    the message names it, relative to the directory, and the reason."""

    def __init__(self, rel: str, exc: OSError, *, directory: bool = False) -> None:
        what = "the directory" if directory else "the file"
        reason = exc.strerror or type(exc).__name__
        super().__init__(f"{what} {shown(rel)} cannot be read ({reason})")
        self.rel = rel


class Stopped(Exception):
    """The worker thread saw its stop flag (the caller was cancelled)."""


def check_create_options(compression: str, zstd_threads: int) -> None:
    """Refuse (InvalidInput) a compression or a count of zstd threads an archive cannot
    be made with."""
    if compression not in ("zstd", "gzip"):
        raise InvalidInput("compression: 'zstd' or 'gzip'", field="compression")
    if not 0 <= zstd_threads <= 64:
        raise InvalidInput("zstd_threads: 0 to 64", field="zstd_threads")


def open_tar_stream(**kwargs: Any) -> tarfile.TarFile:
    """``tarfile.open`` for a stream mode (``r|``/``w|``), with arguments its type stubs
    do not know (``copybufsize``) or cannot match (a file-like object of our own)."""
    return cast(tarfile.TarFile, cast(Any, tarfile.open)(**kwargs))


def forget_members(tar: tarfile.TarFile) -> None:
    """Drop the headers a streamed ``TarFile`` keeps of every member it has passed, so
    a million-member archive takes no more memory than a small one."""
    cast(Any, tar).members.clear()


def shown(name: str) -> str:
    """A member name as a message shows it: quoted, escaped, and cut at 200 characters."""
    return repr(name if len(name) <= 200 else name[:200] + "...")


class Meter:
    """Counts bytes, tells ``progress`` about every :data:`BLOCK` of them, and raises
    :class:`Stopped` once ``stop`` is set (checked on every count)."""

    def __init__(self, progress: Progress | None, total: int, stop: threading.Event) -> None:
        self.progress = progress
        self.total = total
        self.stop = stop
        self.done = 0
        self._told = 0

    def check(self) -> None:
        if self.stop.is_set():
            raise Stopped

    def start(self) -> None:
        self.check()
        if self.progress is not None:
            self.progress(0, self.total)

    def add(self, count: int) -> None:
        self.check()
        self.done += count
        if self.progress is not None and self.done - self._told >= BLOCK:
            self._told = self.done
            self.progress(self.done, max(self.total, self.done))

    def finish(self) -> None:
        """The last call: ``done_bytes == total_bytes``."""
        if self.progress is not None:
            self.progress(self.done, self.done)

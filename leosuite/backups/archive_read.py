"""Reading an archive as a stream of tar members, with every way it can be malformed
turned into :class:`CorruptArchive`, and tar headers that would make ``tarfile`` hold
an unbounded amount in memory refused before it reads them
(:func:`leosuite._compat.tarfile.guarded_tarinfo`)."""

from __future__ import annotations

import contextlib
import gzip
import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import zstandard

from leosuite._compat.tarfile import guarded_tarinfo
from leosuite.backups.archive_io import HashingReader, decompressed_reader
from leosuite.backups.archive_types import (
    BLOCK,
    CorruptArchive,
    UnsafeArchive,
    forget_members,
    open_tar_stream,
)

__all__ = ["Reading", "open_archive"]

#: Extended headers (PAX records, GNU long names) larger than this are refused.
EXTENDED_HEADER_MAX = 1 << 20
#: Bytes after the end-of-archive marker beyond this are refused.
TRAILER_MAX = 1 << 20

_TARINFO = guarded_tarinfo(UnsafeArchive, extended_max=EXTENDED_HEADER_MAX)


class _Counting:
    """Counts the decompressed bytes tarfile reads, to find a stream that ends early."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(BLOCK if size < 0 else size)
        self.count += len(data)
        return data


_UNREADABLE = (tarfile.TarError, zstandard.ZstdError, EOFError, gzip.BadGzipFile, zlib.error)


@contextlib.contextmanager
def _readable() -> Iterator[None]:
    try:
        yield
    except _UNREADABLE as exc:
        raise CorruptArchive(f"the archive cannot be read: {exc or type(exc).__name__}") from exc


class Reading:
    """One pass over an archive: :meth:`members` in order, then :meth:`finish`."""

    def __init__(self, raw: HashingReader, counting: _Counting, tar: tarfile.TarFile) -> None:
        self.raw = raw
        self._counting = counting
        self.tar = tar
        self._end = 0  # where the last member's data ends in the tar stream

    def members(self) -> Iterator[tarfile.TarInfo]:
        while True:
            with _readable():
                info = self.tar.next()
            if info is None:
                return
            forget_members(self.tar)
            data = info.size if info.isreg() else 0
            self._end = info.offset_data + -(-data // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
            yield info

    def read(self, info: tarfile.TarInfo) -> Iterator[bytes]:
        """The content of the current member, block by block."""
        with _readable():
            content = self.tar.extractfile(info)
            if content is None:
                return
            while data := content.read(BLOCK):
                yield data

    def finish(self) -> None:
        """Read to the end: the tar end marker must be there, the compressed stream must
        end cleanly (checksums verified), and the whole file is hashed."""
        with _readable():
            while self._counting.read(BLOCK):
                if self._counting.count - self._end > TRAILER_MAX + 2 * tarfile.BLOCKSIZE:
                    raise CorruptArchive("the archive has data after its end")
            if self._counting.count < self._end + 2 * tarfile.BLOCKSIZE:
                raise CorruptArchive("the archive is truncated")
        self.raw.drain()


@contextlib.contextmanager
def open_archive(path: Path, on_read: Callable[[int], None] | None = None) -> Iterator[Reading]:
    """A pass over the archive at ``path`` (zstd or gzip, told by its magic bytes)."""
    with open(path, "rb", buffering=0) as file:
        raw = HashingReader(file, on_read)
        with _readable(), decompressed_reader(raw) as stream:
            counting = _Counting(stream)
            with open_tar_stream(
                fileobj=counting,
                mode="r|",
                bufsize=BLOCK,
                tarinfo=_TARINFO,
                encoding="utf-8",
            ) as tar:
                yield Reading(raw, counting, tar)

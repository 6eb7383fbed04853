"""Byte plumbing of the archive engine: hashing file wrappers, the compressed streams
(zstd through ``zstandard``, gzip through the standard library; a reader tells them
apart by their magic bytes) and the translation of ``OSError`` into the error tree."""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, BinaryIO, cast

import zstandard

from leosuite.backups.archive_types import BLOCK, ArchiveTooLarge, Compression, CorruptArchive
from leosuite.errors import DiskFull, InternalError, LeosuiteError

__all__ = [
    "HashingReader",
    "HashingWriter",
    "compressed_writer",
    "decompressed_reader",
    "fsync_dir",
    "os_failure",
]

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"
ZSTD_LEVEL = 3
GZIP_LEVEL = 6


class HashingWriter:
    """A write-only file that hashes (SHA-256) and counts every byte on its way to ``fd``;
    a write that would take it past ``limit`` bytes raises :class:`ArchiveTooLarge`."""

    def __init__(self, fd: int, limit: int | None = None) -> None:
        self.fd = fd
        self.size = 0
        self.limit = limit
        self._sha = hashlib.sha256()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        if self.limit is not None and self.size + len(view) > self.limit:
            raise ArchiveTooLarge(self.limit)
        self._sha.update(view)
        written = 0
        while written < len(view):
            written += os.write(self.fd, view[written:])
        self.size += written
        return written

    def flush(self) -> None:
        """Nothing is buffered here."""

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


class HashingReader:
    """A read-only file that hashes (SHA-256) and counts every byte read from ``raw``;
    ``on_read`` is told each count (for progress and the stop flag)."""

    def __init__(self, raw: BinaryIO, on_read: Callable[[int], None] | None = None) -> None:
        self.raw = raw
        self.size = 0
        self._sha = hashlib.sha256()
        self._on_read = on_read

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(BLOCK if size is None or size < 0 else size)
        self._sha.update(data)
        self.size += len(data)
        if self._on_read is not None:
            self._on_read(len(data))
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        """Read (and hash) the rest of the file."""
        while self.read(BLOCK):
            pass

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


@contextlib.contextmanager
def compressed_writer(
    out: HashingWriter, compression: Compression, *, threads: int = 0
) -> Iterator[IO[bytes]]:
    """A stream that compresses into ``out``; its end (frame, trailer) is written when the
    block ends without an error. ``threads`` zstd workers compress beside the caller
    (0: the caller compresses)."""
    if compression == "zstd":
        compressor = zstandard.ZstdCompressor(
            level=ZSTD_LEVEL, write_checksum=True, threads=threads
        )
        writer = compressor.stream_writer(cast(IO[bytes], out), closefd=False)
        yield writer
        writer.close()  # type: ignore[no-untyped-call]
    else:
        gz = gzip.GzipFile(
            filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=cast(IO[bytes], out), mtime=0
        )
        yield cast(IO[bytes], gz)
        gz.close()


@contextlib.contextmanager
def decompressed_reader(raw: HashingReader) -> Iterator[IO[bytes]]:
    """The decompressed content of ``raw``, the method taken from its first bytes."""
    magic = raw.raw.read(4)
    raw.raw.seek(0)
    if magic.startswith(_ZSTD_MAGIC):
        reader = zstandard.ZstdDecompressor().stream_reader(
            cast(IO[bytes], raw), read_size=BLOCK, read_across_frames=True, closefd=False
        )
        with reader:
            yield reader
    elif magic.startswith(_GZIP_MAGIC):
        with gzip.GzipFile(filename="", mode="rb", fileobj=cast(IO[bytes], raw)) as gz:
            yield cast(IO[bytes], gz)
    else:
        raise CorruptArchive("not a backup archive: neither zstd nor gzip compressed")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def os_failure(exc: OSError, what: str) -> LeosuiteError:
    """``exc`` in the error tree: a full disk says so, anything else is internal."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"{what} could not be written")
    return InternalError(f"{what}: {exc.strerror or exc}")

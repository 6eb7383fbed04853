"""Dropping the oldest bytes of a console file in place: punching holes.

``fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)`` frees the blocks of a range
while the file keeps its size, so every byte keeps its offset while a child appends.
A punched range reads as zeros without any error, so a reader must know where the
data starts: ``lseek(SEEK_DATA)`` from 0 tells it, block by block. That is exact only
when the data starts on a block boundary, so every punch and every sparse start is
block aligned. Not every filesystem can punch holes (vfat, some network and FUSE
filesystems): :func:`punch_supported` finds out once per directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os

__all__ = ["BLOCK", "data_start", "punch_hole", "punch_supported"]

#: Punches and sparse starts are aligned to this many bytes (a block on every
#: filesystem that punches holes; a larger block would only make punches coarser).
BLOCK = 4096

_PUNCH_HOLE = 0x02
_KEEP_SIZE = 0x01
_UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS})
_PROBE = "console.log.probe"

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
_libc.fallocate.restype = ctypes.c_int


def punch_hole(fd: int, offset: int, length: int) -> None:
    """Free ``[offset, offset + length)`` of the file open for writing on ``fd``; its
    size stays. Raises ``OSError``."""
    if _libc.fallocate(fd, _PUNCH_HOLE | _KEEP_SIZE, offset, length) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def punch_all(jobs: list[tuple[int, int, int]]) -> list[OSError]:
    """Punch each ``(descriptor, offset, length)`` and close its descriptor (run in a
    worker thread); returns what failed."""
    failed: list[OSError] = []
    for fd, offset, length in jobs:
        try:
            punch_hole(fd, offset, length)
        except OSError as exc:
            failed.append(exc)
        finally:
            os.close(fd)
    return failed


def data_start(fd: int) -> int:
    """File offset of the first byte that is not a hole (the size when there is none)."""
    try:
        return os.lseek(fd, 0, os.SEEK_DATA)
    except OSError as exc:
        if exc.errno != errno.ENXIO:
            raise
        return os.fstat(fd).st_size


def punch_supported(dir_fd: int) -> bool:
    """Whether files in the directory ``dir_fd`` can have holes punched, and their data
    start found after it (tried on a small file made and removed for the purpose).
    A full disk cannot tell: then it is taken as yes, and the first punch decides."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_PROBE, dir_fd=dir_fd)  # a leftover file, or a link planted there
    fd = os.open(_PROBE, flags, 0o600, dir_fd=dir_fd)
    try:
        try:
            written = 0
            while written < 2 * BLOCK:
                written += os.write(fd, b"\n" * (2 * BLOCK - written))
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            return True
        try:
            punch_hole(fd, 0, BLOCK)
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                return False
            raise
        return data_start(fd) == BLOCK
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_PROBE, dir_fd=dir_fd)

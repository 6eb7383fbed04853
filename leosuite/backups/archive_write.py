"""Writing an archive (in a worker thread): a tar stream over a compressed stream over
a hashing file, written to a temporary name beside the destination and renamed only
once complete and on disk."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import tarfile
import threading
from pathlib import Path

from leosuite.backups.archive_io import HashingWriter, compressed_writer, fsync_dir, os_failure
from leosuite.backups.archive_types import (
    BLOCK,
    ArchiveResult,
    Compression,
    Meter,
    Progress,
    Stopped,
    UnreadableFile,
    forget_members,
    open_tar_stream,
)
from leosuite.backups.archive_walk import Entry, link_leaves, walk
from leosuite.errors import InvalidInput, LeosuiteError

__all__ = ["partial_path", "write_archive"]

log = logging.getLogger(__name__)

_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def partial_path(dest: Path) -> Path:
    """Where an archive is written until it is complete."""
    return dest.with_name("." + dest.name + ".partial")


class _FileContent:
    """Exactly ``size`` bytes of an open file for ``TarFile.addfile``: what the file
    holds, then zeros if it shrank since its header was written (the header's size is
    the truth); every block is counted by the meter, which also stops a cancelled run.
    A failed read names the file (:class:`UnreadableFile`)."""

    def __init__(self, fd: int, size: int, meter: Meter, rel: str) -> None:
        self.fd = fd
        self.left = size
        self.meter = meter
        self.rel = rel

    def read(self, size: int) -> bytes:
        size = min(size, self.left)
        chunks = []
        got = 0
        while got < size:
            try:
                data = os.read(self.fd, size - got)
            except OSError as exc:
                raise UnreadableFile(self.rel, exc) from exc
            if not data:
                break
            chunks.append(data)
            got += len(data)
        if got < size:
            chunks.append(bytes(size - got))
        self.left -= size
        self.meter.add(size)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _info(entry: Entry, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.rel)
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = int(st.st_mtime)  # whole seconds: a float would add a PAX header per member
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_file(tar: tarfile.TarFile, entry: Entry, meter: Meter) -> int | None:
    """Store one regular file; ``None`` when it vanished or is no longer a regular file."""
    try:
        fd = os.open(entry.path, _READ_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a symbolic link since the walk
            return None
        raise UnreadableFile(entry.rel, exc) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        info = _info(entry, st)
        info.type = tarfile.REGTYPE
        info.size = st.st_size
        tar.addfile(info, _FileContent(fd, st.st_size, meter, entry.rel))  # type: ignore[arg-type]
        return st.st_size
    finally:
        os.close(fd)


def _add_entry(tar: tarfile.TarFile, entry: Entry, meter: Meter) -> int | None:
    """Store one entry; the content bytes of a regular file, else ``None``."""
    mode = entry.st.st_mode
    if stat.S_ISREG(mode):
        return _add_file(tar, entry, meter)
    if stat.S_ISDIR(mode):
        info = _info(entry, entry.st)
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif stat.S_ISLNK(mode):
        try:
            target = os.readlink(entry.path)
        except FileNotFoundError:
            return None
        if link_leaves(entry.rel, target):
            log.warning("backup: the symbolic link %r points outside; not stored", entry.rel)
            return None
        info = _info(entry, entry.st)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        tar.addfile(info)
    # FIFOs, sockets and devices are not server data: skipped
    return None


def _fill(
    out: HashingWriter,
    src: str,
    compression: Compression,
    patterns: tuple[str, ...],
    skip: frozenset[tuple[int, int]],
    meter: Meter,
    threads: int,
) -> tuple[int, int]:
    files = stored = 0
    with (
        compressed_writer(out, compression, threads=threads) as stream,
        open_tar_stream(
            fileobj=stream,
            mode="w|",
            format=tarfile.PAX_FORMAT,
            bufsize=BLOCK,
            copybufsize=BLOCK,
            encoding="utf-8",
        ) as tar,
    ):
        for entry in walk(src, patterns, skip):
            meter.check()
            size = _add_entry(tar, entry, meter)
            forget_members(tar)
            if size is not None:
                files += 1
                stored += size
    return files, stored


def write_archive(
    src: Path,
    dest: Path,
    *,
    compression: Compression,
    patterns: tuple[str, ...],
    progress: Progress | None,
    stop: threading.Event,
    threads: int = 0,
    max_size: int | None = None,
) -> ArchiveResult:
    """Archive ``src`` into ``dest`` (see :func:`leosuite.backups.archive.create_archive`)."""
    if not src.is_dir():
        raise InvalidInput("the directory to back up does not exist")
    temp = partial_path(dest)
    try:
        fd = os.open(temp, _WRITE_FLAGS, 0o600)
    except OSError as exc:
        raise os_failure(exc, "a backup archive") from exc
    done = False
    try:
        st = os.fstat(fd)
        skip = frozenset({(st.st_dev, st.st_ino)})
        meter = Meter(progress, 0, stop)
        for entry in walk(str(src), patterns, skip):
            meter.check()
            if stat.S_ISREG(entry.st.st_mode):
                meter.total += entry.st.st_size
        meter.start()
        out = HashingWriter(fd, max_size)
        files, stored = _fill(out, str(src), compression, patterns, skip, meter, threads)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.rename(temp, dest)
        done = True
        fsync_dir(dest.parent)
        meter.finish()
        return ArchiveResult(
            size=out.size, sha256=out.hexdigest(), files=files, source_bytes=stored
        )
    except (Stopped, LeosuiteError):
        raise
    except OSError as exc:
        raise os_failure(exc, "a backup archive") from exc
    finally:
        if fd >= 0:
            os.close(fd)
        if not done:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

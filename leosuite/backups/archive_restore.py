"""Checking and restoring an archive (in a worker thread). A restore reads the archive
twice: the first pass checks every member and writes nothing; the second extracts,
checking each member again (and ``tarfile``'s ``data`` filter as a second line), and
never follows a symbolic link: every directory is opened with ``O_NOFOLLOW`` relative
to its parent's descriptor and every file is created with ``O_EXCL | O_NOFOLLOW``."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path

from leosuite.backups.archive_check import Kind, Tree, member_parts
from leosuite.backups.archive_io import fsync_dir, os_failure
from leosuite.backups.archive_read import Reading, open_archive
from leosuite.backups.archive_types import (
    ArchiveResult,
    CorruptArchive,
    Meter,
    Progress,
    Stopped,
    UnsafeArchive,
    shown,
)
from leosuite.errors import Conflict, InvalidInput, LeosuiteError

__all__ = ["restore_into", "scan_archive"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DATA_FILTER = getattr(tarfile, "data_filter", None)


def scan_archive(
    path: Path,
    *,
    max_bytes: int | None,
    max_members: int,
    on_read: Callable[[int], None] | None = None,
) -> tuple[ArchiveResult, dict[str, str]]:
    """Read the whole archive and check every member; its numbers and its symbolic links."""
    tree = Tree(max_members=max_members, max_bytes=max_bytes)
    try:
        with open_archive(path, on_read) as reading:
            for info in reading.members():
                tree.add(info)
            reading.finish()
    except OSError as exc:
        raise os_failure(exc, "reading a backup archive") from exc
    tree.verify_links()
    result = ArchiveResult(
        size=reading.raw.size,
        sha256=reading.raw.hexdigest(),
        files=tree.files,
        source_bytes=tree.content,
    )
    return result, tree.links


class _Dest:
    """The destination as directory descriptors, never through a symbolic link."""

    def __init__(self, root: int) -> None:
        self.root = root
        self._cached: tuple[tuple[str, ...], int] | None = None

    def open_dir(self, parts: tuple[str, ...]) -> int:
        """A descriptor of the directory ``parts`` (made where missing); valid until the
        next call."""
        if not parts:
            return self.root
        if self._cached is not None and self._cached[0] == parts:
            return self._cached[1]
        self.close()
        fd = self.root
        for part in parts:
            try:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o700, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            finally:
                if fd != self.root:
                    os.close(fd)
            fd = child
        self._cached = (parts, fd)
        return fd

    def close(self) -> None:
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None


def _write_file(reading: Reading, info: tarfile.TarInfo, fd: int, meter: Meter) -> int:
    written = 0
    for data in reading.read(info):
        meter.check()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        written += len(data)
    os.fchmod(fd, (info.mode & 0o777) | 0o600)  # the daemon keeps reading and writing it
    os.utime(fd, (info.mtime, info.mtime))
    return written


def _extract_member(
    reading: Reading,
    info: tarfile.TarInfo,
    parts: tuple[str, ...],
    kind: Kind,
    dest: _Dest,
    meter: Meter,
    *,
    fsync: bool,
) -> int:
    parent = dest.open_dir(parts[:-1])
    name = parts[-1]
    if kind == "dir":
        fd = dest.open_dir(parts)
        os.fchmod(fd, (info.mode & 0o777) | 0o700)  # the daemon keeps entering it
        return 0
    if kind == "link":
        os.symlink(info.linkname, name, dir_fd=parent)
        return 0
    fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent)
    try:
        size = _write_file(reading, info, fd, meter)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    return size


def _extract(
    archive: Path,
    root: int,
    dest_path: str,
    checked: tuple[ArchiveResult, dict[str, str]],
    meter: Meter,
    *,
    fsync: bool,
) -> ArchiveResult:
    expected, links = checked
    dest = _Dest(root)
    files = content = 0
    try:
        with open_archive(archive, meter.add) as reading:
            for info in reading.members():
                parts, kind = member_parts(info)
                if not parts:
                    continue
                if kind == "link" and links.get("/".join(parts)) != info.linkname:
                    raise CorruptArchive("the archive changed during the restore")
                if _DATA_FILTER is not None:
                    try:
                        _DATA_FILTER(info, dest_path)
                    except tarfile.FilterError as exc:
                        raise UnsafeArchive(
                            f"unsafe archive: member {shown(info.name)}: refused by the "
                            f"data filter ({type(exc).__name__})"
                        ) from exc
                try:
                    size = _extract_member(reading, info, parts, kind, dest, meter, fsync=fsync)
                except OSError as exc:
                    if exc.errno in (errno.EEXIST, errno.ELOOP, errno.ENOTDIR):
                        raise UnsafeArchive(
                            f"unsafe archive: member {shown(info.name)}: something is"
                            " already in its place"
                        ) from exc
                    raise
                if kind == "file":
                    files += 1
                    content += size
                if files > expected.files or content > expected.source_bytes:
                    raise CorruptArchive("the archive changed during the restore")
            reading.finish()
        if reading.raw.hexdigest() != expected.sha256:
            raise CorruptArchive("the archive changed during the restore")
    finally:
        dest.close()
    return expected


def _empty(dest: Path, *, created: bool) -> None:
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    with os.scandir(dest) as listing:
        for entry in listing:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def _open_dest(dest: Path) -> tuple[int, bool]:
    """A descriptor of ``dest`` (made, mode 0700, when missing) and whether it was made;
    a ``dest`` that is not an empty directory is refused."""
    created = False
    try:
        os.mkdir(dest, 0o700)
        created = True
    except FileExistsError:
        pass
    except FileNotFoundError as exc:
        raise InvalidInput("the restore destination's parent directory does not exist") from exc
    try:
        fd = os.open(dest, _DIR_FLAGS)
    except OSError as exc:
        raise Conflict("the restore destination is not a directory") from exc
    if not created and os.listdir(fd):
        os.close(fd)
        raise Conflict("the restore destination is not empty")
    return fd, created


def restore_into(
    archive: Path,
    dest: Path,
    *,
    max_bytes: int | None,
    max_members: int,
    expect_sha256: str | None,
    progress: Progress | None,
    stop: threading.Event,
    fsync: bool,
) -> ArchiveResult:
    """See :func:`leosuite.backups.archive.restore_archive`."""
    try:
        total = 2 * archive.stat().st_size
    except FileNotFoundError as exc:
        raise InvalidInput("the backup archive does not exist") from exc
    meter = Meter(progress, total, stop)
    meter.start()
    checked = scan_archive(archive, max_bytes=max_bytes, max_members=max_members, on_read=meter.add)
    if expect_sha256 is not None and checked[0].sha256 != expect_sha256.lower():
        raise CorruptArchive("the archive's SHA-256 is not the one recorded for it")
    root, created = _open_dest(dest)
    done = False
    try:
        result = _extract(archive, root, str(dest), checked, meter, fsync=fsync)
        os.fsync(root)
        done = True
    except (Stopped, LeosuiteError):
        raise
    except OSError as exc:
        raise os_failure(exc, "a restored file") from exc
    finally:
        os.close(root)
        if not done:
            _empty(dest, created=created)
    fsync_dir(dest.parent)
    meter.finish()
    return result

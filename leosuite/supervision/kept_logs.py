"""What destroyed servers leave behind (*kept entries*): set aside, listed, removed.

A server destroyed with its files kept leaves its directory as
``servers/.destroyed/<name>-<id>`` and its console logs as
``logs/<name>.destroyed-<unix time>``; a directory found under a new server's name is
set aside as ``servers/.destroyed/<name>-<unix time>``. A second entry under the same
label gets ``.<n>`` (files) or ``-<n>`` (logs) appended. Server names have no dot, so
no server name reaches an entry, and the server an entry was is read back from its
label. An entry was set aside when its inode last changed (the move sets that time).

Nothing here follows a symbolic link: both places are opened without following one
(a place that is a link is not looked into), entries are examined and removed through
the place's descriptor, a link among the entries is an entry of its own (removing it
removes the link, never its target), and an entry is removed only while it is still
the one that was listed. A name of neither form is no entry and is left alone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Literal

import msgspec

from ..store.servers import NAME_PATTERN
from .fs import open_dir_at

__all__ = [
    "KeptEntry",
    "KeptPurge",
    "Kind",
    "list_kept",
    "remove_kept",
    "select_kept",
    "set_aside_dir",
    "set_aside_logs",
]

Kind = Literal["files", "logs"]

_NAME = NAME_PATTERN.removeprefix("^").removesuffix("$")
#: Each kind's place (relative to the data directory) and the labels of its entries.
_PLACES: dict[Kind, tuple[str, re.Pattern[str]]] = {
    "files": ("servers/.destroyed", re.compile(rf"({_NAME})-[0-9]{{1,20}}(?:\.[0-9]{{1,9}})?")),
    "logs": ("logs", re.compile(rf"({_NAME})\.destroyed-[0-9]{{1,20}}(?:-[0-9]{{1,9}})?")),
}
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_DAY = 86400.0


class KeptEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One kept entry."""

    #: The server it was.
    server: str
    kind: Kind
    #: Where it is, relative to the data directory (``servers/.destroyed/world-12``).
    path: str
    #: Bytes allocated on disk for it and everything in it (each inode counted once).
    size: int
    #: When it was set aside (unix seconds).
    since: float
    #: ``(st_dev, st_ino)`` when listed: a removal skips an entry replaced since.
    identity: tuple[int, int] = (0, 0)


class KeptPurge(msgspec.Struct, kw_only=True):
    """What a purge removed, and what it could not remove (with why)."""

    removed: list[KeptEntry] = msgspec.field(default_factory=list)
    failed: list[tuple[KeptEntry, str]] = msgspec.field(default_factory=list)


# -- setting aside ---------------------------------------------------------------------


def _free_label(dir_fd: int, label: str, separator: str) -> str:
    """``label``, or ``label<separator><n>`` for the first n that no entry has."""
    candidate, n = label, 1
    while True:
        try:
            os.stat(candidate, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return candidate
        candidate, n = f"{label}{separator}{n}", n + 1


def _open_parent(path: Path) -> int | None:
    """A descriptor of ``path``'s parent (the daemon's own), or None when it is missing."""
    try:
        return os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None


def set_aside_dir(path: Path, label: str) -> str | None:
    """Move ``path`` (if there, link or not) to ``.destroyed/<label>`` beside it; the
    label it got. A link planted as ``.destroyed`` is replaced by a directory."""
    if (parent_fd := _open_parent(path)) is None:
        return None
    try:
        try:
            os.stat(path.name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        attic_fd = open_dir_at(path.parent, ".destroyed")
        try:
            aside = _free_label(attic_fd, label, ".")
            os.rename(path.name, aside, src_dir_fd=parent_fd, dst_dir_fd=attic_fd)
            return aside
        finally:
            os.close(attic_fd)
    finally:
        os.close(parent_fd)


def set_aside_logs(path: Path, stamp: int) -> str | None:
    """Move a server's log directory ``path`` to ``<name>.destroyed-<stamp>`` beside it
    unless it is an empty directory (or missing); the label it got."""
    if (parent_fd := _open_parent(path)) is None:
        return None
    try:
        try:
            st = os.stat(path.name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if stat.S_ISDIR(st.st_mode):
            fd = os.open(path.name, _DIR_FLAGS, dir_fd=parent_fd)
            try:
                if not os.listdir(fd):
                    return None
            finally:
                os.close(fd)
        aside = _free_label(parent_fd, f"{path.name}.destroyed-{stamp}", "-")
        os.rename(path.name, aside, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
        return aside
    finally:
        os.close(parent_fd)


# -- listing and removal ---------------------------------------------------------------


def _open_place(data_dir: Path, where: str) -> int | None:
    """A descriptor of ``data_dir/where``, each part opened without following a link;
    None when a part is missing, not a directory, a link, or not ours to read."""
    fd = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    for part in where.split("/"):
        try:
            inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EACCES):
                return None
            raise
        os.close(fd)
        fd = inner
    return fd


@contextlib.contextmanager
def _place(data_dir: Path, where: str) -> Iterator[int | None]:
    fd = _open_place(data_dir, where)
    try:
        yield fd
    finally:
        if fd is not None:
            os.close(fd)


def _size(dir_fd: int, label: str, st: os.stat_result) -> int:
    """Bytes allocated for ``label`` and, for a directory, everything in it (walked
    without following links; what cannot be read is not counted)."""
    total = st.st_blocks * 512
    if not stat.S_ISDIR(st.st_mode):
        return total
    seen = {(st.st_dev, st.st_ino)}
    for _root, dirs, files, root_fd in os.fwalk(label, dir_fd=dir_fd, follow_symlinks=False):
        for name in (*dirs, *files):
            try:
                inner = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
            except OSError:
                continue
            if (key := (inner.st_dev, inner.st_ino)) not in seen:
                seen.add(key)
                total += inner.st_blocks * 512
    return total


def list_kept(data_dir: Path) -> list[KeptEntry]:
    """Every kept entry under ``data_dir``, oldest first."""
    entries: list[KeptEntry] = []
    for kind, (where, pattern) in _PLACES.items():
        with _place(data_dir, where) as fd:
            if fd is None:
                continue
            for label in os.listdir(fd):
                if (match := pattern.fullmatch(label)) is None:
                    continue
                try:
                    st = os.stat(label, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed meanwhile
                entries.append(
                    KeptEntry(
                        server=match[1],
                        kind=kind,
                        path=f"{where}/{label}",
                        size=_size(fd, label, st),
                        since=st.st_ctime,
                        identity=(st.st_dev, st.st_ino),
                    )
                )
    return sorted(entries, key=lambda e: (e.since, e.path))


def select_kept(
    entries: list[KeptEntry],
    *,
    servers: Collection[str] | None,
    older_than_days: float | None,
    now: float,
) -> list[KeptEntry]:
    """The entries of ``servers`` (any when None) set aside at least ``older_than_days``
    days before ``now`` (any age when None)."""
    before = None if older_than_days is None else now - older_than_days * _DAY
    return [
        e
        for e in entries
        if (servers is None or e.server in servers) and (before is None or e.since <= before)
    ]


def _remove_one(dir_fd: int, label: str, identity: tuple[int, int]) -> str | None:
    """Remove one entry through its place's descriptor; why not, or None when done.
    FileNotFoundError: it was removed meanwhile."""
    st = os.stat(label, dir_fd=dir_fd, follow_symlinks=False)
    if (st.st_dev, st.st_ino) != identity:
        return "replaced since it was listed; not removed"
    try:
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(label, dir_fd=dir_fd)  # by descriptors: links are removed, not followed
        else:
            os.unlink(label, dir_fd=dir_fd)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def remove_kept(data_dir: Path, entries: list[KeptEntry]) -> KeptPurge:
    """Remove ``entries`` (as :func:`list_kept` gave them); one removed meanwhile is
    in neither list of the answer."""
    result = KeptPurge()
    for entry in entries:
        where, _, label = entry.path.rpartition("/")
        with _place(data_dir, where) as fd:
            if fd is None:
                continue  # its place is gone, and the entry with it
            try:
                problem = _remove_one(fd, label, entry.identity)
            except FileNotFoundError:
                continue
        if problem is None:
            result.removed.append(entry)
        else:
            result.failed.append((entry, problem))
    return result

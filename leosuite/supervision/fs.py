"""File-system steps that a managed server cannot turn against the daemon.

A server may write anywhere in its own directory, and one that runs as the daemon's
user anywhere the daemon may. So the daemon never follows a symbolic link in a place a
server can reach: its directories are opened with ``O_NOFOLLOW`` and the files in them
relative to that directory descriptor (``openat``); a link found where the daemon keeps
a file or a directory of its own is removed (the link, never its target) and replaced.
A path a server's settings name is accepted only if it resolves, symlinks included,
inside the server's directory (:func:`resolve_inside`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from pathlib import Path

__all__ = [
    "add_search_bit",
    "open_dir_at",
    "open_file_at",
    "reown_tree",
    "replace_file_at",
    "resolve_inside",
]

log = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _remove_link(dir_fd: int, name: str) -> bool:
    """Remove ``name`` if it is a symbolic link (its target stays untouched)."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if not stat.S_ISLNK(st.st_mode):
        return False
    os.unlink(name, dir_fd=dir_fd)
    log.warning("removed a symbolic link planted where leosuite keeps %r", name)
    return True


def open_dir_at(parent: Path, name: str, *, mode: int = 0o700) -> int:
    """A descriptor of the directory ``parent/name``, made with ``mode`` if missing.

    ``parent`` is the daemon's own and trusted; ``name`` is never followed: a symbolic
    link there is removed and a directory made in its place.
    """
    parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for _ in range(2):
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, mode, dir_fd=parent_fd)
            try:
                return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
            except OSError as exc:
                if exc.errno not in (errno.ENOTDIR, errno.ELOOP) or not _remove_link(
                    parent_fd, name
                ):
                    raise
        raise OSError(errno.ELOOP, "a symbolic link keeps coming back", str(parent / name))
    finally:
        os.close(parent_fd)


def open_file_at(dir_fd: int, name: str, flags: int, mode: int = 0o600) -> int:
    """``openat(dir_fd, name)`` of a regular file, never through a symbolic link.

    With ``O_CREAT`` a link in the way is removed and the file created; without it a
    link (or any other non-regular file) is refused with ELOOP.
    """
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(name, flags, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno != errno.ELOOP or not flags & os.O_CREAT or not _remove_link(dir_fd, name):
            raise
        fd = os.open(name, flags, mode, dir_fd=dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.ELOOP, "not a regular file", name)
    return fd


def replace_file_at(dir_fd: int, name: str, data: bytes, mode: int = 0o600) -> None:
    """Write ``name`` whole: a fresh ``name.tmp`` (never an existing one), then rename."""
    tmp = name + ".tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp, dir_fd=dir_fd)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                 dir_fd=dir_fd)  # fmt: skip
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def resolve_inside(root: str, path: str) -> bool:
    """Whether ``path`` resolves, symlinks included, to ``root`` or below it.

    A missing tail is taken as written (it may appear later: the check is repeated at
    every start). A component that cannot be examined (permission denied, a loop)
    counts as outside.
    """
    real_root = os.path.realpath(root)
    try:
        real = os.path.realpath(path, strict=True)
    except FileNotFoundError:
        real = os.path.realpath(path)  # normalised paths: nothing exists past a missing part
    except OSError:
        return False
    return real == real_root or real.startswith(real_root.rstrip("/") + "/")


def add_search_bit(*directories: Path) -> None:
    """Let every user pass through ``directories`` (``o+x``: nothing can be listed)."""
    for directory in directories:
        st = os.stat(directory, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode) and not st.st_mode & stat.S_IXOTH:
            search = stat.S_IMODE(st.st_mode) | stat.S_IXOTH | stat.S_IXGRP
            os.chmod(directory, search)  # search only: nothing in it can be listed
            log.info("%s: search permission added for the users servers run as", directory)


def reown_tree(directory: Path, uid: int, gid: int) -> None:
    """Hand ``directory`` and everything in it to ``uid:gid``, when not theirs already.

    The directory itself stays in the daemon's group with mode 0710: the daemon can
    still enter it (a child changes into its working directory before it switches
    user) but not list or change it. Walks bottom-up (a directory is handed over after
    its contents, so the daemon can still enter it) by descriptor: no symbolic link is
    followed, links themselves are re-owned.
    """
    group, mode = (gid, 0o700) if uid == os.geteuid() else (os.getegid(), 0o710)
    with contextlib.suppress(FileNotFoundError):
        st = os.stat(directory, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode) and (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (
            uid,
            group,
            mode,
        ):
            return  # theirs already (the daemon may not even open it any more)
    fd = open_dir_at(directory.parent, directory.name)
    try:
        st = os.fstat(fd)
        if stat.S_IMODE(st.st_mode) != mode:
            os.fchmod(fd, mode)  # while the daemon still owns it
        if st.st_uid != uid:
            walk = os.fwalk(".", topdown=False, follow_symlinks=False, dir_fd=fd)
            for _path, dirs, files, root_fd in walk:
                for entry in (*files, *dirs):
                    os.chown(entry, uid, gid, dir_fd=root_fd, follow_symlinks=False)
        if (st.st_uid, st.st_gid) != (uid, group):
            os.fchown(fd, uid, group)
    finally:
        os.close(fd)

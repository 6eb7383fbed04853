"""The backup files on disk: each server's backup directory, the start-up sweep, the
swap of a server's directory around a restore, and reading an archive's SHA-256.
Blocking calls: run them in a worker thread.

Only what this module recognises is ever removed: files named like a backup
(:func:`~.model.is_backup_name` and an archive ending) inside a subdirectory named by a
server id, so a ``backups.dir`` pointed at the wrong place loses nothing else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
from collections.abc import Collection, Mapping
from pathlib import Path

from .model import PARTIAL_SUFFIX, SUFFIXES, is_backup_name

__all__ = [
    "Sweep",
    "make_server_dir",
    "move_aside",
    "move_back",
    "open_archive",
    "remove_quietly",
    "sweep",
]

log = logging.getLogger("leosuite.backups")


class Sweep:
    """What the start-up sweep did."""

    def __init__(self) -> None:
        self.partials_removed: list[str] = []
        self.orphans_removed: list[str] = []
        self.vanished: list[int] = []


def _backup_name_of(file: str) -> str | None:
    """The backup name a file in a backup directory belongs to: ``<name>.tar.zst``, or
    the engine's temporary name while it is written (``.<name>.tar.zst.partial``)."""
    for suffix in SUFFIXES.values():
        name, found, _rest = file.removeprefix(".").partition(suffix)
        if found and is_backup_name(name):
            return name
    return None


def make_server_dir(root: Path, server_id: int) -> Path:
    """The server's backup directory (made, mode 0700, with ``root``)."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = root / str(server_id)
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def sweep(root: Path, known: Mapping[int, Collection[tuple[int, str]]]) -> Sweep:
    """Remove leftover temporary archives and archives no row describes, and report the
    rows (``known``: server id -> (backup id, file name)) whose file is gone."""
    done = Sweep()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if (mode := stat.S_IMODE(root.stat().st_mode)) & 0o077:
        root.chmod(mode & ~0o077)  # backups hold whole worlds: no other user lists them
    for entry in os.scandir(root):
        if not entry.name.isdigit() or not entry.is_dir(follow_symlinks=False):
            continue
        wanted = {file for _id, file in known.get(int(entry.name), ())}
        for item in os.scandir(entry.path):
            if _backup_name_of(item.name) is None or item.name in wanted:
                continue
            if not item.is_file(follow_symlinks=False) and not item.is_symlink():
                continue
            remove_quietly(Path(item.path))
            relative = f"{entry.name}/{item.name}"
            partial = PARTIAL_SUFFIX in item.name or item.name.startswith(".")
            (done.partials_removed if partial else done.orphans_removed).append(relative)
    for server_id, rows in known.items():
        for backup_id, file in rows:
            path = root / str(server_id) / file
            if not os.path.lexists(path):
                done.vanished.append(backup_id)
    return done


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def open_archive(path: Path) -> tuple[int, int]:
    """An archive opened for reading without following a link: its descriptor and size."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path.name} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd, st.st_size


def move_aside(directory: Path, label: str) -> Path:
    """Rename ``directory`` to a sibling temporary name (``.<name>.<label>``); that name."""
    aside = directory.with_name(f".{directory.name}.{label}")
    os.rename(directory, aside)
    return aside


def move_back(directory: Path, aside: Path) -> None:
    """Undo :func:`move_aside`: whatever was put at ``directory`` meanwhile is removed."""
    if os.path.lexists(directory):
        if os.path.isdir(directory) and not os.path.islink(directory):
            shutil.rmtree(directory)
        else:
            os.unlink(directory)
    os.rename(aside, directory)

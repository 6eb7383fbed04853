"""The walk of a directory to archive: every entry under it, not following symbolic
links, minus the excluded ones."""

from __future__ import annotations

import fnmatch
import os
import posixpath
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from leosuite.backups.archive_types import UnreadableFile
from leosuite.errors import InvalidInput

__all__ = ["Entry", "link_leaves", "normalize_patterns", "walk"]

MAX_PATTERNS = 1000
MAX_PATTERN = 4096


@dataclass(frozen=True, slots=True)
class Entry:
    rel: str  # POSIX path relative to the walked directory
    path: str  # path to open
    st: os.stat_result  # lstat, taken during the walk


def normalize_patterns(exclude: Sequence[str]) -> tuple[str, ...]:
    """Patterns relative to the walked directory: a leading ``/`` or ``./`` and a
    trailing ``/`` are dropped; an empty or over-long pattern is refused."""
    if isinstance(exclude, str):
        raise InvalidInput("exclude: a list of patterns, not one string", field="exclude")
    if len(exclude) > MAX_PATTERNS:
        raise InvalidInput(f"exclude: more than {MAX_PATTERNS} patterns", field="exclude")
    patterns = []
    for raw in exclude:
        if not isinstance(raw, str) or "\0" in raw or len(raw) > MAX_PATTERN:
            raise InvalidInput("exclude: a pattern must be a short string", field="exclude")
        pattern = raw.strip("/")
        while pattern.startswith("./"):
            pattern = pattern[2:].lstrip("/")
        if not pattern or pattern == ".":
            raise InvalidInput(f"exclude: {raw!r} would exclude everything", field="exclude")
        patterns.append(pattern)
    return tuple(patterns)


def _excluded(rel: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(rel, pattern) for pattern in patterns)


def link_leaves(rel: str, target: str) -> bool:
    """A symbolic link at ``rel`` whose target is absolute or climbs out of the walked
    directory (judged on its text alone)."""
    if not target or target.startswith("/"):
        return True
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    return resolved == ".." or resolved.startswith("../")


def walk(root: str, patterns: tuple[str, ...], skip: frozenset[tuple[int, int]]) -> Iterator[Entry]:
    """Every entry under ``root`` (a directory before what it holds), excluded ones and
    their contents left out, as are entries whose ``(st_dev, st_ino)`` is in ``skip``
    and entries that vanish during the walk; a directory that cannot be listed raises
    :class:`UnreadableFile` naming it. Only the directories still to visit are held,
    never a whole listing."""
    pending = [("", root)]
    while pending:
        rel_dir, path_dir = pending.pop()
        try:
            listing = os.scandir(path_dir)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise UnreadableFile(rel_dir or ".", exc, directory=True) from exc
        with listing:
            for found in listing:
                rel = f"{rel_dir}/{found.name}" if rel_dir else found.name
                if _excluded(rel, patterns):
                    continue
                try:
                    st = found.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise UnreadableFile(rel, exc) from exc
                if (st.st_dev, st.st_ino) in skip:
                    continue
                yield Entry(rel, found.path, st)
                if stat.S_ISDIR(st.st_mode):
                    pending.append((rel, found.path))

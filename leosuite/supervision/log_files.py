"""The log files a server type declares: paths or globs relative to the server's directory.

A type lists them in ``log_files``, e.g. ``["logs/latest.log", "Logs/*.log"]``. An entry
may use ``{var}`` placeholders; once rendered, it is split at commas, so that one
setting may name several (the ``command`` type's ``log_files`` setting). Each path is
checked as a client's path is (:func:`~.file_paths.parse_path`: relative, no ``..``);
glob characters (``*?[``) may appear in its last component only. A glob matches the
regular files of its directory whose names it matches, except compressed ones
(``.gz``, ``.zip``, ``.zst``, ...: a game's rotated-away logs), and never a link.

This module is pure except :func:`expand`, which lists directories (blocking: run it in
a worker thread) and never follows a link.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import InvalidInput
from .file_paths import Parts, parse_path

__all__ = [
    "COMPRESSED",
    "MAX_LOG_FILES",
    "MAX_SCANNED",
    "check_log_files",
    "declared",
    "expand",
    "expand_bounded",
    "is_declared",
    "is_fixed",
    "is_regular_file",
    "open_dir",
    "placeholders",
]

#: The suffixes of compressed files, which are never followed.
COMPRESSED = (".gz", ".zip", ".zst", ".bz2", ".xz", ".lz4", ".7z")
#: The most files one server's declared log files expand to (the rest are not listed).
MAX_LOG_FILES = 64
#: The most entries of one directory a glob looks at (the rest are not listed).
MAX_SCANNED = 4096

_FIELD = "log_files"
_GLOB = re.compile(r"[*?\[]")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def placeholders(entries: Iterable[str]) -> list[str]:
    """The ``{var}`` names the entries use."""
    return [m.group(1) for e in entries for m in _PLACEHOLDER.finditer(e) if m.group(1)]


def _render(entry: str, settings: Mapping[str, object]) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return m.group(0)[0]
        value = settings.get(m.group(1))
        if value is None:
            raise InvalidInput(f"log_files: unknown setting {{{m.group(1)}}}", field=_FIELD)
        return str(value)

    return _PLACEHOLDER.sub(one, entry)


def _check(text: str) -> Parts:
    parts = parse_path(text, field=_FIELD)
    if not parts:
        raise InvalidInput(f"log_files: {text!r} names the server's directory", field=_FIELD)
    if any(_GLOB.search(part) for part in parts[:-1]):
        raise InvalidInput(
            f"log_files: {text!r}: only the last component may be a glob", field=_FIELD
        )
    if parts[-1].lower().endswith(COMPRESSED):
        raise InvalidInput(f"log_files: {text!r} is a compressed file", field=_FIELD)
    return parts


def declared(entries: Iterable[str], settings: Mapping[str, object]) -> list[Parts]:
    """The declared paths and globs, rendered with ``settings`` and checked; InvalidInput
    naming ``log_files`` for one that is not a relative path below the server's directory."""
    found: list[Parts] = []
    for entry in entries:
        for text in _render(entry, settings).split(","):
            if text.strip():
                parts = _check(text.strip())
                if parts not in found:
                    found.append(parts)
    return found


def check_log_files(entries: Iterable[str], known: Iterable[str]) -> str | None:
    """Why a type file's ``log_files`` is wrong (None: it is right): an unknown
    placeholder, or a fixed entry that escapes the server's directory."""
    names = set(known)
    for entry in entries:
        refs = placeholders([entry])
        for ref in refs:
            if ref not in names:
                return f"unknown placeholder {{{ref}}}"
        if not refs:
            try:
                declared([entry], {})
            except InvalidInput as exc:
                return exc.message
    return None


def _is_glob(parts: Parts) -> bool:
    return bool(_GLOB.search(parts[-1]))


def _matches(pattern: str, name: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern) and not name.lower().endswith(COMPRESSED)


def is_declared(patterns: Iterable[Parts], parts: Parts) -> bool:
    """Whether ``parts`` is a declared file: one of the paths, or a match of a glob."""
    if not parts or _GLOB.search(parts[-1]):
        return False  # a glob itself is no file
    for pattern in patterns:
        if pattern == parts:
            return True
        if _is_glob(pattern) and pattern[:-1] == parts[:-1] and _matches(pattern[-1], parts[-1]):
            return True
    return False


def is_fixed(patterns: Iterable[Parts], parts: Parts) -> bool:
    """Whether ``parts`` is one of the declared paths themselves (not a glob's match)."""
    return any(pattern == parts for pattern in patterns)


def is_regular_file(root: Path, parts: Parts) -> bool:
    """Whether ``parts`` below ``root`` is a regular file now (no link followed)."""
    try:
        fd = open_dir(root, parts[:-1])
    except OSError:
        return False
    try:
        return stat.S_ISREG(os.stat(parts[-1], dir_fd=fd, follow_symlinks=False).st_mode)
    except OSError:
        return False
    finally:
        os.close(fd)


def open_dir(root: Path, parts: Parts) -> int:
    """The directory ``parts`` below ``root``, opened without following any link."""
    fd = os.open(root, _DIR)
    try:
        for part in parts:
            step = os.open(part, _DIR, dir_fd=fd)
            os.close(fd)
            fd = step
    except BaseException:
        os.close(fd)
        raise
    return fd


def expand(root: Path, patterns: Iterable[Parts]) -> list[Parts]:
    """The files the patterns name (see :func:`expand_bounded`)."""
    return expand_bounded(root, patterns)[0]


def expand_bounded(root: Path, patterns: Iterable[Parts]) -> tuple[list[Parts], bool]:
    """The files the patterns name: each path as it stands (existing or not), each glob's
    matching regular files (never links), sorted; at most :data:`MAX_LOG_FILES`, from at
    most :data:`MAX_SCANNED` entries of each directory. True with them if some were left
    out (more matches, or a directory with more entries)."""
    found: list[Parts] = []
    truncated = False
    for pattern in patterns:
        if not _is_glob(pattern):
            found.append(pattern)
            continue
        try:
            fd = open_dir(root, pattern[:-1])
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EACCES):
                continue  # not there (yet), or a link: nothing matches
            raise
        try:
            names: list[str] = []
            with os.scandir(fd) as entries:
                for count, entry in enumerate(entries):
                    if count == MAX_SCANNED:
                        truncated = True
                        break
                    if _matches(pattern[-1], entry.name) and entry.is_file(follow_symlinks=False):
                        names.append(entry.name)
            found.extend((*pattern[:-1], name) for name in sorted(names))
        finally:
            os.close(fd)
    unique = list(dict.fromkeys(found))
    return unique[:MAX_LOG_FILES], truncated or len(unique) > MAX_LOG_FILES

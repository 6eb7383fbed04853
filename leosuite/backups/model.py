"""What a backup is, and the pure rules about backups: names, file names, retention and
the quota. No trio, no I/O.

A backup is one archive file of a server's directory, ``<name>.tar.zst`` or
``<name>.tar.gz`` in the server's backup directory, described by a :class:`Backup`
record. Its name is the UTC time it was taken (``2026-12-02T04-00-00Z``; ``-2``,
``-3`` ... when one was taken in the same second).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Sequence
from typing import Literal

import msgspec

__all__ = [
    "MAX_NOTE",
    "PARTIAL_SUFFIX",
    "SUFFIXES",
    "Backup",
    "Compression",
    "Phase",
    "Progress",
    "file_name",
    "is_backup_name",
    "name_at",
    "over_quota",
    "expired",
]

Compression = Literal["zstd", "gzip"]
#: What a backup or a restore is doing: before-commands, writing or reading the
#: archive, finished, failed.
Phase = Literal["commands", "archiving", "restoring", "done", "failed"]

#: The file name ending of each compression.
SUFFIXES: dict[str, str] = {"zstd": ".tar.zst", "gzip": ".tar.gz"}
#: What an archive being written ends with until it is complete (the engine's temp name
#: starts with the final name); such files are removed at start.
PARTIAL_SUFFIX = ".partial"
#: The longest note a backup may carry, in characters.
MAX_NOTE = 500

_NAME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}-[0-9]{2}Z(-[0-9]{1,6})?")


class Backup(msgspec.Struct, frozen=True, kw_only=True):
    """One stored backup (a row of ``server_backups``)."""

    id: int
    server_id: int
    name: str
    created_at: float
    size: int
    sha256: str
    files: int
    source_bytes: int
    compression: Compression
    #: The username of the account that took it, or ``schedule``.
    by: str
    note: str = ""

    @property
    def file(self) -> str:
        return file_name(self.name, self.compression)


class Progress(msgspec.Struct, kw_only=True):
    """A backup or restore under way on one server (what ``backup.status`` answers)."""

    server: str
    phase: Phase
    done_bytes: int = 0
    total_bytes: int = 0
    #: The backup being restored (None while a new one is made).
    id: int | None = None


def name_at(stamp: float, taken: Iterable[str]) -> str:
    """The name of a backup taken at unix time ``stamp``: its UTC time, with a suffix
    when a backup of that name exists (``taken``)."""
    moment = datetime.datetime.fromtimestamp(stamp, tz=datetime.UTC)
    base = moment.strftime("%Y-%m-%dT%H-%M-%SZ")
    names = set(taken)
    if base not in names:
        return base
    number = 2
    while f"{base}-{number}" in names:
        number += 1
    return f"{base}-{number}"


def is_backup_name(name: str) -> bool:
    """Whether ``name`` is one :func:`name_at` makes (never a path)."""
    return _NAME.fullmatch(name) is not None


def file_name(name: str, compression: str) -> str:
    """The archive file's name; ValueError for a name that is not a backup's."""
    if not is_backup_name(name) or compression not in SUFFIXES:
        raise ValueError(f"not a backup name: {name[:80]!r} ({compression[:20]!r})")
    return name + SUFFIXES[compression]


def expired(
    backups: Sequence[Backup], *, keep: int, keep_days: float, now: float, spare: int
) -> list[Backup]:
    """The backups retention removes: beyond the ``keep`` newest (0: no count limit),
    and those older than ``keep_days`` days (0: no age limit); never the one whose id
    is ``spare`` (the backup just made)."""
    newest_first = sorted(backups, key=lambda b: (b.created_at, b.id), reverse=True)
    drop: list[Backup] = []
    for index, backup in enumerate(newest_first):
        if backup.id == spare:
            continue
        too_many = keep > 0 and index >= keep
        too_old = keep_days > 0 and now - backup.created_at > keep_days * 86400.0
        if too_many or too_old:
            drop.append(backup)
    return drop


def over_quota(used: int, adding: int, limit: int) -> bool:
    """Whether ``used + adding`` bytes exceed ``limit`` (0: no quota)."""
    return limit > 0 and used + adding > limit

"""An empty store file: a fresh store, or one truncated after data was written?

SQLite opens a 0-byte file as an empty database, so a store truncated by a bad copy,
a full disk or a mistake would start silently with no servers, accounts or audit
entries. An empty store is taken as fresh only when the data directory holds nothing
else (``run/``, the store's own side files and empty folders aside); otherwise the
start is refused until the operator asks for a fresh store with ``leosuite serve
--init``, which in turn is refused where the store holds data.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import StoreCorrupt, StoreError

__all__ = ["check_existing_store", "earlier_data"]

#: Written by every start before the store is opened (``run``), or by the operator before
#: a first start (``templates``: their own server types): neither shows a store's data.
_FRESH_ENTRIES = frozenset({"run", "templates"})


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _empty_dir(path: str) -> bool:
    with os.scandir(path) as entries:
        return next(entries, None) is None


def earlier_data(path: Path, data_dir: Path) -> list[str]:
    """The names that show a store once held data: a non-empty ``-wal`` beside the
    store, and every entry of the data directory but ``run/``, ``templates/``, the
    store's own files and empty directories."""
    wal = path.with_name(path.name + "-wal")
    found = [wal.name] if _size(wal) else []
    own = {
        os.path.abspath(path.with_name(path.name + suffix))
        for suffix in ("", "-wal", "-shm", "-journal")
    }
    try:
        with os.scandir(data_dir) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        for entry in entries:
            if entry.name in _FRESH_ENTRIES or os.path.abspath(entry.path) in own:
                continue
            if entry.is_dir(follow_symlinks=False) and _empty_dir(entry.path):
                continue
            found.append(entry.name + ("/" if entry.is_dir(follow_symlinks=False) else ""))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StoreError(f"cannot list the data directory {data_dir}: {exc.strerror}") from exc
    return found


def check_existing_store(path: Path, data_dir: Path, *, init: bool) -> None:
    """Refuse an empty store beside earlier data (unless ``init``), and ``init`` on a
    store that holds data; the files are left as they are either way."""
    empty = _size(path) == 0 and not _size(path.with_name(path.name + "-wal"))
    if init:
        if not empty:
            raise StoreError(
                f"the database {path} holds data: start without --init (it creates a fresh "
                f"store only where there is none or the file is empty; leosuite never "
                f"replaces a store)"
            )
        return
    if _size(path) != 0:
        return
    leftovers = earlier_data(path, data_dir)
    if leftovers:
        shown = ", ".join(leftovers[:5]) + (", ..." if len(leftovers) > 5 else "")
        raise StoreCorrupt(
            f"the database {path} is empty (0 bytes) but the data directory {data_dir} "
            f"holds data of an earlier store ({shown}): it was probably truncated; stop "
            f"leosuite and restore it from a backup, or run 'leosuite serve --init' to "
            f"start with a fresh store on purpose"
        )

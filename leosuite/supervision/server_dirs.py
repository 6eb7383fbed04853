"""Where each server's files live under the data directory: ``servers/<name>/`` (its
directory), ``logs/<name>/`` (its console) and ``run/servers/<name>/`` (its stdin FIFO).

A new server always starts with an empty directory and empty logs: whatever is found
under its name is set aside first. A destroy deletes them, or sets them aside as kept
entries (:mod:`.kept_logs`), which are listed and purged from there. Blocking calls:
run them in a worker thread.
"""

from __future__ import annotations

import shutil
import stat
from collections.abc import Collection
from pathlib import Path

from .kept_logs import (
    KeptEntry,
    KeptPurge,
    list_kept,
    remove_kept,
    select_kept,
    set_aside_dir,
    set_aside_logs,
)

__all__ = ["ServerDirs"]


class ServerDirs:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def server(self, name: str) -> Path:
        return self.data_dir / "servers" / name

    def logs(self, name: str) -> Path:
        return self.data_dir / "logs" / name

    def stdin(self, name: str) -> Path:
        """The FIFO that is the server's stdin (in the daemon's own ``run/``)."""
        return self.data_dir / "run" / "servers" / name / "stdin"

    def make(self, name: str, stamp: int) -> None:
        """Empty directory and logs for a new server; ``stamp`` labels what was there."""
        # No other user may list servers/ or logs/ (every server's name); only the search
        # bit that servers run as another user need (added when one starts) is kept.
        for top in (self.server(name).parent, self.logs(name).parent):
            top.mkdir(mode=0o700, exist_ok=True)
            if (top_mode := stat.S_IMODE(top.stat().st_mode)) & 0o066:
                top.chmod(top_mode & ~0o066)
        # A directory already there (left by an older version's destroy) is not handed on,
        # and a new server's console starts at readIndex 0 showing nothing of old logs.
        set_aside_dir(self.server(name), f"{name}-{stamp}")
        self.server(name).mkdir(mode=0o700, parents=True, exist_ok=True)
        set_aside_logs(self.logs(name), stamp)
        self.logs(name).mkdir(mode=0o700, parents=True, exist_ok=True)

    def set_aside(self, name: str, label: str, stamp: int) -> None:
        """Keep a destroyed server's directory as ``servers/.destroyed/<label>`` and its
        logs as ``logs/<name>.destroyed-<stamp>``."""
        set_aside_dir(self.server(name), label)
        set_aside_logs(self.logs(name), stamp)

    def delete(self, name: str) -> None:
        for path in (self.server(name), self.logs(name)):
            shutil.rmtree(path, ignore_errors=True)

    def delete_run_dir(self, name: str) -> None:
        shutil.rmtree(self.stdin(name).parent, ignore_errors=True)

    def kept(self) -> list[KeptEntry]:
        """Every kept entry, oldest first."""
        return list_kept(self.data_dir)

    def remove_kept(
        self, now: float, *, servers: Collection[str] | None, older_than_days: float | None
    ) -> KeptPurge:
        """Remove the kept entries of ``servers`` (any when None) set aside at least
        ``older_than_days`` days before ``now`` (any age when None)."""
        chosen = select_kept(
            list_kept(self.data_dir), servers=servers, older_than_days=older_than_days, now=now
        )
        return remove_kept(self.data_dir, chosen)

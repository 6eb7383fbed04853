"""Free space on the data directory's filesystem, watched so that a full disk is seen
coming and said when it comes and goes.

Its level is ``ok``; ``low`` once the space left to the daemon is below
``daemon.disk_warn_free_bytes`` or ``daemon.disk_warn_free_percent`` of the filesystem
(0 turns either off); ``full`` once not one block is left, or a write failed for want of
space (the store's, a console's: :func:`note_disk_full`) since the last look. The watch
looks every ``daemon.disk_check_interval`` seconds, and at once after such a failure.
Each change of level is one audit entry (topic ``daemon``), which is also its one daemon
log line (warning when low, error when full, info when space is back) and its event for
``events.subscribe``. On a full disk that entry cannot be stored: it reaches the log and
the subscribers all the same.

Servers keep their directories and logs in the data directory, so each server's status
carries the level of that filesystem (:func:`disk_level`). A filesystem no watch looks at
is ``ok``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec
import trio

if TYPE_CHECKING:
    from .audit import AuditLog
    from .settings import DaemonSettings

__all__ = [
    "DiskLevel",
    "DiskWatch",
    "FreeSpace",
    "classify",
    "disk_level",
    "note_disk_full",
    "watch_free_space",
]

log = logging.getLogger("leosuite.disk")

DiskLevel = Literal["ok", "low", "full"]

#: Levels from the least to the most severe.
_SEVERITY: tuple[DiskLevel, ...] = ("ok", "low", "full")


class FreeSpace(msgspec.Struct, frozen=True, kw_only=True):
    """One look at a filesystem: what is left to an unprivileged writer, of how much."""

    free_bytes: int
    total_bytes: int
    block_bytes: int

    @classmethod
    def of(cls, path: Path) -> FreeSpace:
        """The free space of ``path``'s filesystem (``statvfs``); raises OSError."""
        st = os.statvfs(path)
        block = st.f_frsize or st.f_bsize
        return cls(
            free_bytes=st.f_bavail * block, total_bytes=st.f_blocks * block, block_bytes=block
        )

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free_bytes / self.total_bytes if self.total_bytes else 100.0


def classify(
    space: FreeSpace, *, warn_bytes: int, warn_percent: float, write_failed: bool = False
) -> DiskLevel:
    """``full`` when not one block is left or a write failed for want of space; ``low``
    below either threshold (0 turns it off); else ``ok``."""
    if write_failed or space.free_bytes < space.block_bytes:
        return "full"
    if space.free_bytes < warn_bytes or space.free_percent < warn_percent:
        return "low"
    return "ok"


class DiskWatch:
    """What one running watch knows of its filesystem: the level and the last look."""

    def __init__(self, path: Path, device: int) -> None:
        self.path = path
        self.device = device
        self.level: DiskLevel = "ok"
        self.space: FreeSpace | None = None
        #: The last look could not read the free space (the level stays as it was).
        self.unreadable = False
        self._failed = False
        self._lock = threading.Lock()  # failures are noted from worker threads too
        self._token = trio.lowlevel.current_trio_token()
        self._wake = trio.Event()

    def note_full(self) -> None:
        """A write on this filesystem failed for want of space: look again at once.
        Safe from any thread."""
        with self._lock:
            self._failed = True
        with contextlib.suppress(trio.RunFinishedError):  # the daemon has ended
            self._token.run_sync_soon(self._wake_up)

    def _wake_up(self) -> None:
        self._wake.set()

    def take_failure(self) -> bool:
        """Whether a write failed since the last call."""
        with self._lock:
            failed, self._failed = self._failed, False
        return failed

    async def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if a failed write is noted meanwhile."""
        with trio.move_on_after(seconds):
            await self._wake.wait()
        self._wake = trio.Event()


#: The running watches by filesystem (``st_dev``); each value is replaced, never changed.
_watches: dict[int, tuple[DiskWatch, ...]] = {}


def _watches_of(path: Path) -> tuple[DiskWatch, ...]:
    if not _watches:
        return ()
    try:
        device = os.stat(path).st_dev
    except OSError:
        return ()
    return _watches.get(device, ())


def disk_level(path: Path) -> DiskLevel:
    """The level of ``path``'s filesystem as the watches on it last saw it (the most
    severe if several look at it); ``ok`` when none does."""
    levels = [watch.level for watch in _watches_of(path)]
    return max(levels, key=_SEVERITY.index, default="ok")


def note_disk_full(path: Path) -> None:
    """A write under ``path`` failed for want of space: the watches of its filesystem
    say ``full`` at once. Safe from any thread; nothing happens when none runs."""
    for watch in _watches_of(path):
        watch.note_full()


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def _change_message(
    old: DiskLevel, new: DiskLevel, space: FreeSpace, settings: DaemonSettings
) -> tuple[str, str]:
    """The audit level and message of a change of level."""
    free = (
        f"{_size(space.free_bytes)} free of {_size(space.total_bytes)} ({space.free_percent:.1f}%)"
    )
    where = "the data directory's filesystem"
    if new == "full":
        cause = "" if space.free_bytes < space.block_bytes else "a write failed for want of space; "
        return "error", (
            f"disk full on {where} ({cause}{free}): the store, the consoles and the servers' "
            "own writes fail until space is freed"
        )
    if new == "low":
        was = " (no longer full)" if old == "full" else ""
        return "warning", (
            f"disk space low on {where}{was}: {free}; the warning is below "
            f"{_size(settings.disk_warn_free_bytes)} (daemon.disk_warn_free_bytes) or "
            f"{settings.disk_warn_free_percent:g}% (daemon.disk_warn_free_percent)"
        )
    return "info", f"disk space back on {where}: {free}"


async def watch_free_space(
    data_dir: Path,
    settings: DaemonSettings,
    audit: AuditLog,
    *,
    task_status: trio.TaskStatus[DiskWatch] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Watch ``data_dir``'s filesystem until cancelled (see the module doc); started
    once the first look is done, a level other than ``ok`` at start is reported too."""
    device = (await trio.to_thread.run_sync(os.stat, data_dir)).st_dev
    watch = DiskWatch(data_dir, device)
    _watches[device] = (*_watches.get(device, ()), watch)
    try:
        await _look(watch, settings, audit)
        task_status.started(watch)
        while True:
            await watch.wait(settings.disk_check_interval)
            await _look(watch, settings, audit)
    finally:
        rest = tuple(w for w in _watches.get(device, ()) if w is not watch)
        if rest:
            _watches[device] = rest
        else:
            _watches.pop(device, None)


async def _look(watch: DiskWatch, settings: DaemonSettings, audit: AuditLog) -> None:
    failed = watch.take_failure()
    try:
        space = await trio.to_thread.run_sync(FreeSpace.of, watch.path)
    except OSError as exc:
        if not watch.unreadable:  # said once, not at every look
            log.warning("cannot read the free space of %s: %s", watch.path, exc.strerror)
        watch.unreadable = True
        return
    watch.unreadable = False
    level = classify(
        space,
        warn_bytes=settings.disk_warn_free_bytes,
        warn_percent=settings.disk_warn_free_percent,
        write_failed=failed,
    )
    old, watch.level, watch.space = watch.level, level, space
    if level != old:
        audit_level, message = _change_message(old, level, space, settings)
        await audit.record_done("daemon", message, level=audit_level)

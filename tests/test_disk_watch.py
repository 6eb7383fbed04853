"""The free-space watch: its levels (pure), and on a real small filesystem: low, then
full, then ok as space is used and freed, each change one audit entry that reaches the
live subscribers (on a full disk through the daemon log, marked as not stored); a console
append that fails for want of space is DiskFull and makes the watch look at once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from leosuite.audit import AuditEvent, AuditLog
from leosuite.disk_watch import DiskWatch, FreeSpace, classify, disk_level, watch_free_space
from leosuite.errors import DiskFull
from leosuite.settings import DaemonSettings
from leosuite.store.db import Database
from leosuite.supervision.console_file import ConsoleFile
from tests.helpers.disk import MiB, filled, small_filesystem

KiB = 1 << 10


def space(free: int, total: int = 100 * MiB) -> FreeSpace:
    return FreeSpace(free_bytes=free, total_bytes=total, block_bytes=4 * KiB)


@pytest.mark.parametrize(
    ("free", "warn_bytes", "warn_percent", "failed", "level"),
    [
        (50 * MiB, 10 * MiB, 5.0, False, "ok"),
        (9 * MiB, 10 * MiB, 5.0, False, "low"),  # below the bytes
        (4 * MiB, 0, 5.0, False, "low"),  # below the percentage (bytes off)
        (4 * MiB, 1 * MiB, 0.0, False, "ok"),  # percentage off
        (4 * KiB, 0, 0.0, False, "ok"),  # one block left, both off
        (4 * KiB - 1, 0, 0.0, False, "full"),  # not one block
        (0, 10 * MiB, 5.0, False, "full"),
        (50 * MiB, 10 * MiB, 5.0, True, "full"),  # a write failed for want of space
    ],
)
def test_classify(
    free: int, warn_bytes: int, warn_percent: float, failed: bool, level: str
) -> None:
    found = classify(
        space(free), warn_bytes=warn_bytes, warn_percent=warn_percent, write_failed=failed
    )
    assert found == level


def test_free_space_of_a_real_filesystem(tmp_path: Path) -> None:
    seen = FreeSpace.of(tmp_path)
    assert 0 <= seen.free_bytes <= seen.total_bytes
    assert seen.block_bytes > 0
    assert 0.0 <= seen.free_percent <= 100.0


@asynccontextmanager
async def store_on(directory: Path) -> AsyncIterator[tuple[Database, AuditLog]]:
    db = await trio.to_thread.run_sync(Database.open, directory / "leosuite.db")
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(db.run_writer)
            yield db, AuditLog(db, lambda: 1000.0)
            nursery.cancel_scope.cancel()
    finally:
        db.close()


async def next_daemon_event(events: trio.MemoryReceiveChannel[AuditEvent]) -> AuditEvent:
    async for event in events:
        if event.topic == "daemon":
            return event
    raise AssertionError("the audit log closed")


async def test_low_full_ok_as_space_is_used_and_freed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = DaemonSettings(
        disk_warn_free_bytes=2 * MiB, disk_warn_free_percent=0, disk_check_interval=0.02
    )
    with trio.fail_after(30), small_filesystem(tmp_path / "fs") as fs:
        async with store_on(fs) as (_db, audit), trio.open_nursery() as nursery:
            events = audit.subscribe()
            watch: DiskWatch = await nursery.start(watch_free_space, fs, settings, audit)
            assert watch.level == "ok" == disk_level(fs) == disk_level(fs / "leosuite.db")
            assert disk_level(tmp_path) == "ok"  # another filesystem: no watch looks at it

            with filled(fs, leave=1 * MiB):
                low = await next_daemon_event(events)
                assert (low.level, low.id > 0) == ("warning", True)  # stored
                assert low.message.startswith("disk space low on the data directory's")
                assert disk_level(fs) == "low"

                with filled(fs, name="the-rest"):
                    full = await next_daemon_event(events)
                    assert full.level == "error"
                    assert full.message.startswith("disk full on the data directory's")
                    assert full.id == 0  # the store could not take it ...
                    assert disk_level(fs) == "full"
                    assert str(fs) not in full.message
                # ... so it went to the daemon log, marked, at the error level
                marked = [r for r in caplog.records if "audit (not stored: disk full)" in r.message]
                assert [r.levelno for r in marked] == [logging.ERROR], caplog.text
                assert "disk full on the data directory's" in marked[0].getMessage()

                low_again = await next_daemon_event(events)
                assert low_again.message.startswith("disk space low on the data directory's")
                assert "(no longer full)" in low_again.message

            back = await next_daemon_event(events)
            assert (back.level, back.id > 0) == ("info", True)
            assert back.message.startswith("disk space back on the data directory's")
            assert disk_level(fs) == "ok"
            nursery.cancel_scope.cancel()
    assert disk_level(fs) == "ok"  # the watch has ended: nothing looks at it any more


async def test_a_console_append_without_space_is_disk_full_and_seen_at_once(
    tmp_path: Path,
) -> None:
    # The watch would not look again for an hour: only the failed append can wake it.
    settings = DaemonSettings(
        disk_warn_free_bytes=0, disk_warn_free_percent=0, disk_check_interval=3600
    )
    with trio.fail_after(30), small_filesystem(tmp_path / "fs") as fs:
        (fs / "logs").mkdir()
        console = ConsoleFile(fs / "logs", retention_bytes=1 * MiB)
        try:
            async with store_on(tmp_path) as (_db, audit), trio.open_nursery() as nursery:
                events = audit.subscribe()
                watch: DiskWatch = await nursery.start(watch_free_space, fs, settings, audit)
                assert watch.level == "ok"
                with filled(fs):
                    assert watch.level == "ok"  # not looked yet
                    with pytest.raises(DiskFull) as caught:
                        console.append(b"x" * (64 * KiB))
                    assert caught.value.message.startswith("disk full: cannot write a console")
                    assert str(fs) not in caught.value.message
                    assert not caught.value.in_store
                    full = await next_daemon_event(events)
                    assert full.level == "error"
                    assert full.id > 0  # this store is on another filesystem
                    assert (watch.level, disk_level(fs / "logs")) == ("full", "full")
                    nursery.cancel_scope.cancel()
        finally:
            console.close()

"""The console watch: real children write their console files, the one inotify
descriptor wakes the readers, retention follows the writes, and a console that cannot
be watched is polled."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from inotify_simple import Event, INotify, flags

from leosuite.supervision import console_watch
from leosuite.supervision.console_file import ConsoleFile
from leosuite.supervision.console_punch import BLOCK
from leosuite.supervision.console_watch import ConsoleWatch
from tests.helpers.console import RETENTION, KiB, pattern, pattern_writer, read_all


class Observed(ConsoleFile):
    """A console that tells when a refresh (the watch's, here) has seen an index: its
    ``end_index`` is read from the file, so waiting for it shows nothing of the watch."""

    def __init__(self, directory: Path, **kw: Any) -> None:
        super().__init__(directory, retention_bytes=RETENTION, **kw)
        self.refreshed = 0
        self._waiting: list[tuple[int, trio.Event]] = []

    def refresh(self) -> bool:
        grew = super().refresh()
        self.refreshed = self.statistics().end_index
        for index, event in self._waiting:
            if self.refreshed >= index:
                event.set()
        return grew

    async def wait_refreshed(self, index: int) -> None:
        if self.refreshed < index:
            event = trio.Event()
            self._waiting.append((index, event))
            await event.wait()


def inotify_fds() -> int:
    """How many inotify descriptors this process holds."""
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            count += os.readlink(fd) == "anon_inode:inotify"
        except OSError:
            continue  # the descriptor of the listing itself
    return count


@asynccontextmanager
async def watching(*consoles: ConsoleFile, **kw: Any) -> AsyncIterator[ConsoleWatch]:
    watch = ConsoleWatch(**kw)
    for console in consoles:
        watch.add(console)
    async with trio.open_nursery() as nursery:
        await nursery.start(watch.run)
        yield watch
        nursery.cancel_scope.cancel()


async def run_child(console: ConsoleFile, argv: list[str]) -> None:
    """Run ``argv`` with its stdout and stderr on the console, as a server runs."""
    fd = console.open_for_child()
    try:
        await trio.run_process(argv, stdout=fd, stderr=fd)
    finally:
        os.close(fd)


def echo(text: str) -> list[str]:
    return ["/bin/sh", "-c", f"printf %s {text}"]


async def test_a_child_write_wakes_a_waiter(tmp_path: Path) -> None:
    console = ConsoleFile(tmp_path, retention_bytes=RETENTION)
    before = inotify_fds()
    with trio.fail_after(20):
        async with watching(console) as watch:
            assert inotify_fds() == before + 1
            assert watch.statistics().watched == 1
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_child, console, echo("hello"))
                await console.wait_beyond(0)
            assert console.read(0, 100).data == b"hello"
            await run_child(console, echo("again"))
            await console.wait_beyond(5)
            assert console.read(5, 100).data == b"again"
            assert watch.statistics().wakeups >= 1
    assert inotify_fds() == before  # closed on the way out
    console.close()


async def test_a_flood_keeps_disk_use_bounded_and_readers_exact(tmp_path: Path) -> None:
    console = Observed(tmp_path)
    total = 10 * RETENTION
    overruns = 0

    async def tail() -> None:
        nonlocal overruns
        position = 0
        while position < total:
            await console.wait_beyond(position)
            chunk = console.read(position, 16 * KiB)
            overruns += chunk.old_read_index != position
            # never zeros, nor any other byte, in place of the console's own
            assert chunk.data == pattern(chunk.old_read_index, len(chunk.data))
            position = chunk.next_read_index

    with trio.fail_after(60):
        async with watching(console), trio.open_nursery() as nursery:
            nursery.start_soon(tail)
            await run_child(console, pattern_writer(0, total, 4 * KiB))
            await console.wait_refreshed(total)  # the watch has seen the last write
    stats = console.statistics()
    assert stats.end_index == total
    assert stats.punches >= 1
    assert stats.disk_bytes <= RETENTION + BLOCK * stats.files
    oldest = console.oldest_index
    assert oldest >= total - RETENTION - BLOCK
    chunk = console.read(0, 100)
    assert (chunk.old_read_index, chunk.data) == (oldest, pattern(oldest, 100))
    assert read_all(console) == (oldest, pattern(oldest, total - oldest))
    assert 0 <= overruns <= 1 + stats.punches
    console.close()


async def test_the_watch_outlives_a_new_segment(tmp_path: Path) -> None:
    console = ConsoleFile(tmp_path, retention_bytes=RETENTION, punch=False)
    with trio.fail_after(20):
        async with watching(console):
            await run_child(console, echo("one"))
            await console.wait_beyond(2)
            console.start_segment()
            assert (tmp_path / "console.log.0").read_bytes() == b"one"
            await run_child(console, echo("two"))
            await console.wait_beyond(5)
    assert read_all(console) == (0, b"onetwo")
    console.close()


async def test_an_overflow_refreshes_every_console(tmp_path: Path) -> None:
    consoles = [ConsoleFile(tmp_path / name, retention_bytes=RETENTION) for name in "ab"]
    watch = ConsoleWatch()
    for console in consoles:
        watch.add(console)
        fd = console.open_for_child()
        os.write(fd, b"x")
        os.close(fd)
    # the event the kernel queues when its queue overflowed (no watch, no name)
    watch.handle([Event(wd=-1, mask=flags.Q_OVERFLOW, cookie=0, name="")])
    # refreshed already: without the overflow each would find its new byte now
    assert [console.refresh() for console in consoles] == [False, False]
    assert watch.statistics().overflows == 1
    for console in consoles:
        console.close()


def write_now(console: ConsoleFile, argv: list[str]) -> None:
    """Run a child to its end before the (mock) clock runs: it writes while time stands."""
    fd = console.open_for_child()
    try:
        subprocess.run(argv, stdout=fd, stderr=fd, check=True)
    finally:
        os.close(fd)


async def test_a_console_that_cannot_be_watched_is_polled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    def no_room(self: INotify, path: str, mask: int) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(INotify, "add_watch", no_room)  # the user's watch limit reached
    console = Observed(tmp_path)
    with trio.fail_after(100):
        async with watching(console, poll_interval=1.0, safety_interval=50.0) as watch:
            assert watch.statistics().polled == 1
            assert watch.statistics().watched == 0
            write_now(console, echo("polled"))
            await console.wait_refreshed(6)
            assert trio.current_time() == 1.0  # by the poll timer
    assert console.read(0, 100).data == b"polled"
    console.close()


async def test_without_inotify_every_console_is_polled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    def no_instance(**kw: Any) -> INotify:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(console_watch, "INotify", no_instance)  # the user's instance limit
    first, second = (Observed(tmp_path / name) for name in "ab")
    with trio.fail_after(100):
        async with watching(first, poll_interval=1.0, safety_interval=50.0) as watch:
            watch.add(second)
            assert (watch.statistics().polled, watch.statistics().watched) == (2, 0)
            write_now(first, echo("one"))
            write_now(second, echo("two"))
            await first.wait_refreshed(3)
            await second.wait_refreshed(3)
    for console in (first, second):
        console.close()


async def test_a_removed_console_is_refreshed_no_more(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    kept, removed = (Observed(tmp_path / name) for name in "ab")
    with trio.fail_after(100):
        async with watching(kept, removed, safety_interval=5.0) as watch:
            watch.remove(removed)
            assert watch.statistics().consoles == 1
            write_now(removed, echo("unseen"))
            write_now(kept, echo("seen"))
            await kept.wait_refreshed(4)  # the safety refresh
            await trio.sleep(30)  # several more
            assert removed.refreshed == 0
            assert removed.end_index == 6  # written, but nobody refreshed it
    for console in (kept, removed):
        console.close()

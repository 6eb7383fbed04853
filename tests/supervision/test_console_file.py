"""The console file: indexes, reads, markers, waits, retention (holes punched, or whole
files dropped where they cannot be) and failures. Real files in a temporary directory;
a real child writes through the descriptor it is given."""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.testing

from leosuite.errors import InternalError, InvalidInput
from leosuite.supervision.console_file import ConsoleFile
from leosuite.supervision.console_punch import BLOCK, punch_all, punch_supported
from tests.helpers.console import RETENTION, KiB, names, open_console, pattern, read_all


@pytest.fixture(params=[True, False], ids=["punch", "segments"])
def punch(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def console(tmp_path: Path, punch: bool) -> Iterator[ConsoleFile]:
    console = ConsoleFile(tmp_path / "logs", retention_bytes=RETENTION, punch=punch)
    yield console
    console.close()


def test_roundtrip_and_fields(console: ConsoleFile) -> None:
    assert (console.end_index, console.oldest_index) == (0, 0)
    chunk = console.read(0, 100)
    assert (chunk.old_read_index, chunk.data, chunk.next_read_index, chunk.read_index) == (
        0,
        b"",
        0,
        0,
    )
    console.append(b"hello ")
    console.append(bytearray(b"world\n"))
    console.append(memoryview(b"no newline"))
    assert console.end_index == 22
    chunk = console.read(6, 100)
    assert (chunk.old_read_index, chunk.data, chunk.next_read_index, chunk.read_index) == (
        6,
        b"world\nno newline",
        22,
        22,
    )
    assert console.read(22, 100).data == b""
    assert console.path.read_bytes() == b"hello world\nno newline"
    assert console.path.stat().st_mode & 0o777 == 0o640
    assert console.path.parent == console.directory


def test_limit_and_bad_offsets(console: ConsoleFile) -> None:
    console.append(pattern(0, 1000))
    chunk = console.read(10, 7)
    assert (chunk.old_read_index, chunk.data, chunk.next_read_index) == (10, pattern(10, 7), 17)
    assert console.read(10, 0).next_read_index == 10
    for offset, limit, field in ((-1, 10, "readIndex"), (1001, 10, "readIndex"), (0, -1, "max")):
        with pytest.raises(InvalidInput) as info:
            console.read(offset, limit)
        assert info.value.field == field
    with pytest.raises(InvalidInput, match="1000"):  # names the current end
        console.read(1001, 1)


def test_bytes_are_lossless(console: ConsoleFile) -> None:
    weird = b"\xff\xfe\x00\x00bad \xc3\x28 utf8\r\x00\x80" + bytes(range(256))
    console.append(weird)
    console.append(b"\x00")
    assert console.read(0, 10_000).data == weird + b"\x00"


def test_markers_on_their_own_line(console: ConsoleFile) -> None:
    console.marker("starting")
    console.append(b"partial")
    console.marker("exit code 1")
    console.append(b"line\n")
    console.marker("stopped \u00e9 \udcff")
    assert console.read(0, 1000).data == (
        b"[leosuite] starting\npartial\n[leosuite] exit code 1\nline\n"
        b"[leosuite] stopped \xc3\xa9 \\udcff\n"
    )


def test_marker_after_reopen_knows_the_last_byte(tmp_path: Path, punch: bool) -> None:
    console = open_console(tmp_path, punch)
    console.append(b"no newline")
    console.close()
    console = open_console(tmp_path, punch)
    console.marker("started")
    console.close()
    assert (tmp_path / "console.log").read_bytes() == b"no newline\n[leosuite] started\n"


def test_reopen_continues_the_index(tmp_path: Path, punch: bool) -> None:
    console = open_console(tmp_path, punch)
    console.append(pattern(0, 2500))
    console.start_segment()
    console.append(pattern(2500, 1000))
    console.close()
    console = open_console(tmp_path, punch)
    assert console.end_index == 3500
    console.append(pattern(3500, 10))
    assert read_all(console) == (0, pattern(0, 3510))
    console.close()


def test_punched_retention_keeps_the_disk_bounded(tmp_path: Path) -> None:
    console = open_console(tmp_path, punch=True)
    total = 0
    for _ in range(64):  # ten times the retention
        console.append(pattern(total, 10 * KiB))
        total += 10 * KiB
        # While it grows, punches wait for a quarter of the retention (each holds writes up).
        assert console.statistics().disk_bytes <= RETENTION + RETENTION // 4 + BLOCK
    assert not console.refresh()  # at rest: punched to the block
    assert console.statistics().disk_bytes <= RETENTION + BLOCK
    stats = console.statistics()
    assert (stats.end_index, stats.files, stats.punch_supported) == (total, 1, True)
    assert stats.punches > 0
    oldest = console.oldest_index
    assert oldest % BLOCK == 0
    assert total - RETENTION - BLOCK <= oldest <= total - RETENTION
    assert (tmp_path / "console.log").stat().st_size == total  # the offsets stay
    assert read_all(console) == (oldest, pattern(oldest, total - oldest))
    console.close()
    console = open_console(tmp_path)  # the retained start is found again on disk
    assert console.oldest_index == oldest
    assert read_all(console) == (oldest, pattern(oldest, total - oldest))
    console.close()


def test_a_read_behind_a_punch_never_sees_the_zeros(tmp_path: Path) -> None:
    console = open_console(tmp_path)
    console.append(pattern(0, 100 * KiB))
    position = console.oldest_index
    chunk = console.read(position, 1000)
    assert (chunk.old_read_index, chunk.data) == (position, pattern(position, 1000))
    position = chunk.next_read_index
    console.append(pattern(100 * KiB, 200 * KiB))  # punches past the reader
    assert console.oldest_index > position
    raw = os.pread(os.open(console.path, os.O_RDONLY), 1000, position)
    assert raw == bytes(1000)  # what a read that did not look first would serve
    chunk = console.read(position, 1000)
    assert chunk.old_read_index == console.oldest_index
    assert chunk.data == pattern(chunk.old_read_index, 1000)
    console.close()


def test_segments_rotate_at_each_start_and_old_files_go(tmp_path: Path) -> None:
    console = open_console(tmp_path, punch=False)
    console.start_segment()  # nothing written yet: nothing to move
    assert names(tmp_path) == ["console.log"]
    total = 0
    for _ in range(5):
        console.start_segment()
        console.append(pattern(total, 30_000))
        total += 30_000
    # 0-30000 and 30000-60000 are wholly older than the last 64 KiB
    assert names(tmp_path) == [
        "console.log",
        "console.log.60000",
        "console.log.90000",
        "console.log.start",
    ]
    assert (tmp_path / "console.log.start").read_text() == "120000\n"
    stats = console.statistics()
    assert (stats.files, stats.punches, stats.punch_supported) == (3, 0, False)
    assert console.oldest_index == 60_000
    assert read_all(console) == (60_000, pattern(60_000, total - 60_000))
    console.close()
    console = open_console(tmp_path, punch=False)
    assert (console.end_index, console.oldest_index) == (total, 60_000)
    assert read_all(console, 1000) == (60_000, pattern(60_000, total - 60_000))
    console.close()


def test_open_for_child_appends_and_a_child_writes(console: ConsoleFile) -> None:
    console.marker("starting")
    fd = console.open_for_child()
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        assert flags & os.O_ACCMODE == os.O_WRONLY
        assert flags & os.O_APPEND
        assert not flags & os.O_NONBLOCK
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        code = (
            "import sys; sys.stdout.write('out\\n'); sys.stdout.flush(); sys.stderr.write('err\\n')"
        )
        subprocess.run([sys.executable, "-c", code], stdout=fd, stderr=fd, check=True)
    finally:
        os.close(fd)
    assert console.end_index == 28  # fresh from the file, before any refresh
    assert console.refresh()
    assert not console.refresh()
    assert console.read(0, 100).data == b"[leosuite] starting\nout\nerr\n"


def test_after_close(tmp_path: Path) -> None:
    console = open_console(tmp_path)
    console.append(b"abc")
    console.close()
    console.close()
    assert console.end_index == 3
    assert not console.refresh()
    with pytest.raises(InternalError):
        console.append(b"more")
    with pytest.raises(InternalError):
        console.read(0, 10)
    with pytest.raises(InternalError):
        console.open_for_child()
    console.start_segment()
    assert console.statistics().end_index == 3


def test_bad_arguments_and_an_unusable_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="retention"):
        ConsoleFile(tmp_path, retention_bytes=RETENTION - 1)
    with pytest.raises(ValueError, match="start_index"):
        ConsoleFile(tmp_path, retention_bytes=RETENTION, start_index=-1)
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(InternalError, match="file"):
        ConsoleFile(blocker / "sub", retention_bytes=RETENTION)


def test_holes_can_be_punched_here_and_on_tmpfs(tmp_path: Path) -> None:
    def probe(directory: Path) -> bool:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return punch_supported(fd)
        finally:
            os.close(fd)

    assert probe(tmp_path)
    assert os.listdir(tmp_path) == []  # the probe file is gone
    shm = Path("/dev/shm")
    if " /dev/shm tmpfs " not in Path("/proc/self/mounts").read_text():
        pytest.skip("no tmpfs at /dev/shm")
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        assert probe(Path(tmp))
        console = ConsoleFile(Path(tmp) / "logs", retention_bytes=RETENTION)
        assert console.statistics().punch_supported
        console.append(pattern(0, 200 * KiB))
        assert console.statistics().disk_bytes <= RETENTION + BLOCK
        console.close()


def test_a_full_disk_is_an_internal_error_and_keeps_what_was_written(tmp_path: Path) -> None:
    console = open_console(tmp_path)
    console.append(b"abc")
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (10, old_limit[1]))  # as if the disk filled
    try:
        with pytest.raises(InternalError, match=os.strerror(errno.EFBIG)):
            console.append(b"0123456789")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert console.read(0, 100).data == b"abc0123456"
    console.marker("after")
    assert console.read(0, 100).data == b"abc0123456\n[leosuite] after\n"
    console.close()


async def test_wait_beyond(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    console = open_console(tmp_path)
    console.append(b"abc")
    with trio.fail_after(1):
        await console.wait_beyond(2)  # already there: returns at once
    woke: list[float] = []

    async def waiter() -> None:
        await console.wait_beyond(3)
        woke.append(trio.current_time())

    fd = console.open_for_child()
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.sleep(5)
            console.append(b"")  # nothing new: still waiting
            assert not console.refresh()
            await trio.sleep(1)
            assert woke == []
            os.write(fd, b"d")  # a child's write: seen once refreshed
            await trio.sleep(1)
            assert console.refresh()
    os.close(fd)
    assert woke == [7.0]
    with trio.move_on_after(10) as scope:
        await console.wait_beyond(4)
    assert scope.cancelled_caught
    assert trio.current_time() == 17.0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(console.wait_beyond, 4)
        await trio.sleep(1)
        console.close()  # wakes the waiter
    assert trio.current_time() == 18.0


async def test_a_flooding_wait_looks_at_the_size_itself(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A waiter that just read a batch of a flood (``flooding``) sees the child's next
    write within FLOOD_POLL, not at the watch's refresh; one waiter polls for all, and
    a flood that stopped costs FLOOD_POLLS looks, then a plain wait."""
    console = open_console(tmp_path)
    console.append(b"abc")
    fd = console.open_for_child()
    woke: dict[str, float] = {}

    async def waiter(name: str, flooding: bool) -> None:
        await console.wait_beyond(3, flooding=flooding)
        woke[name] = trio.current_time()

    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter, "poller", True)
            await trio.sleep(0.0101)  # ten looks, nothing new
            nursery.start_soon(waiter, "second", True)  # parks: one waiter polls
            nursery.start_soon(waiter, "plain", False)
            await trio.sleep(0.0001)
            assert woke == {}
            os.write(fd, b"d")  # the child's write; no refresh
        # every waiter is woken by the poller's next look, 11 ms after it began
        assert set(woke) == {"poller", "second", "plain"}
        assert max(woke.values()) == pytest.approx(0.011)
        # nothing new for FLOOD_POLLS looks: then a plain wait, until a refresh
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(console.wait_beyond, 4, flooding=True))
            await trio.sleep(5)
            assert console.waiting == 1
            os.write(fd, b"e")
            await trio.sleep(5)
            assert console.waiting == 1  # no more looks: the refresh wakes it
            assert console.refresh()
        assert trio.current_time() - start == pytest.approx(10)
    os.close(fd)
    console.close()


def test_deferred_punches_drop_the_bytes_at_once_and_free_the_disk_later(tmp_path: Path) -> None:
    console = open_console(tmp_path, punch=True)
    console.defer_punches = True
    console.append(pattern(0, 10 * RETENTION))
    console.refresh()
    oldest = console.oldest_index
    assert oldest >= 9 * RETENTION - BLOCK  # readers no longer see the dropped bytes ...
    assert read_all(console) == (oldest, pattern(oldest, 10 * RETENTION - oldest))
    assert console.statistics().disk_bytes >= 10 * RETENTION  # ... still on disk
    jobs = console.take_punches()
    assert jobs
    assert punch_all(jobs) == []  # what the watch runs in a worker thread
    assert console.statistics().disk_bytes <= RETENTION + BLOCK
    # Punches queued when the console closes leave no descriptor behind.
    console.append(pattern(10 * RETENTION, 10 * RETENTION))
    console.refresh()
    before = len(os.listdir("/proc/self/fd"))
    console.close()
    assert len(os.listdir("/proc/self/fd")) <= before - 3  # its file, its directory, a dup

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from leosuite.errors import InternalError, InvalidInput
from leosuite.supervision.console_log import ConsoleLog
from leosuite.supervision.console_ring import ConsoleRing

KiB = 1024
MiB = 1024 * 1024


def pattern(start: int, n: int) -> bytes:
    """Bytes whose value depends on their absolute offset, so misplaced data shows."""
    period = bytes(range(251))  # a prime period: no alignment hides a shift
    reps = (start % 251 + n) // 251 + 2
    return (period * reps)[start % 251 : start % 251 + n]


def read_all(log: ConsoleLog, offset: int = 0, limit: int = 64 * KiB) -> tuple[int, bytes]:
    first = None
    out = bytearray()
    while True:
        chunk = log.read(offset, limit)
        if first is None:
            first = chunk.old_read_index
        else:
            assert chunk.old_read_index == offset  # no gaps after the first answer
        out += chunk.data
        offset = chunk.next_read_index
        if offset == chunk.read_index:
            return first, bytes(out)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[ConsoleLog]:
    log = ConsoleLog(tmp_path)
    yield log
    log.close()


def test_roundtrip_and_fields(log: ConsoleLog, tmp_path: Path) -> None:
    assert (log.end_index, log.oldest_index) == (0, 0)
    chunk = log.read(0, 100)
    assert (chunk.old_read_index, chunk.data, chunk.next_read_index, chunk.read_index) == (
        0,
        b"",
        0,
        0,
    )
    log.append(b"hello ")
    log.append(bytearray(b"world\n"))
    log.append(memoryview(b"no newline"))
    assert log.end_index == 22
    chunk = log.read(0, 100)
    assert chunk.data == b"hello world\nno newline"
    assert (chunk.old_read_index, chunk.next_read_index, chunk.read_index) == (0, 22, 22)
    chunk = log.read(6, 100)
    assert (chunk.old_read_index, chunk.data, chunk.next_read_index) == (6, chunk.data, 22)
    assert chunk.data == b"world\nno newline"
    assert log.read(22, 100).data == b""
    assert (tmp_path / "console.log").read_bytes() == b"hello world\nno newline"
    assert (tmp_path / "console.log").stat().st_mode & 0o777 == 0o640


def test_limit_honoured(log: ConsoleLog) -> None:
    log.append(pattern(0, 1000))
    chunk = log.read(10, 7)
    assert chunk.data == pattern(10, 7)
    assert (chunk.old_read_index, chunk.next_read_index, chunk.read_index) == (10, 17, 1000)
    assert log.read(10, 0).data == b""
    assert log.read(10, 0).next_read_index == 10


def test_bad_offsets_rejected(log: ConsoleLog) -> None:
    log.append(b"abc")
    with pytest.raises(InvalidInput) as info:
        log.read(-1, 10)
    assert info.value.field == "readIndex"
    with pytest.raises(InvalidInput) as info:
        log.read(4, 10)
    assert info.value.field == "readIndex"
    assert "3" in info.value.message  # names the current end
    with pytest.raises(InvalidInput) as info:
        log.read(0, -1)
    assert info.value.field == "max"


def test_bytes_are_lossless(log: ConsoleLog) -> None:
    weird = b"\xff\xfe\x00\x00bad \xc3\x28 utf8\r\x00\x80" + bytes(range(256))
    log.append(weird)
    log.append(b"\x00")
    assert log.read(0, 10_000).data == weird + b"\x00"


def test_markers_on_their_own_line(log: ConsoleLog) -> None:
    log.marker("starting")
    log.append(b"partial")
    log.marker("exit code 1")
    log.append(b"line\n")
    log.marker("stopped \u00e9")
    assert log.read(0, 1000).data == (
        b"[leosuite] starting\npartial\n[leosuite] exit code 1\nline\n[leosuite] stopped \xc3\xa9\n"
    )


def test_marker_after_reopen_knows_the_last_byte(tmp_path: Path) -> None:
    log = ConsoleLog(tmp_path)
    log.append(b"no newline")
    log.close()
    log = ConsoleLog(tmp_path)
    log.marker("started")
    log.close()
    assert (tmp_path / "console.log").read_bytes() == b"no newline\n[leosuite] started\n"


def test_reads_across_ring_and_files(tmp_path: Path) -> None:
    log = ConsoleLog(tmp_path, ring_bytes=100 * KiB, file_max_bytes=64 * KiB, keep_files=100)
    total = 0
    for n in (5000, 70 * KiB, 1, 3 * KiB, 200 * KiB, 17, 40 * KiB):
        log.append(pattern(total, n))
        total += n
    stats = log.statistics()
    assert stats.rotations == 4  # 325 530 bytes in 64 KiB files
    assert stats.ring_bytes < total  # some bytes only on disk
    assert log.oldest_index == 0
    assert read_all(log) == (0, pattern(0, total))
    # one read spanning several rotated files, the current file and the ring
    chunk = log.read(1000, total)
    assert chunk.data == pattern(1000, total - 1000)
    # reads that start at every interesting boundary
    for start in (64 * KiB - 1, 64 * KiB, 128 * KiB + 3, total - stats.ring_bytes - 1):
        chunk = log.read(start, 70 * KiB)
        assert chunk.old_read_index == start
        assert chunk.data == pattern(start, min(70 * KiB, total - start))
    for f in sorted(tmp_path.glob("console.log.[0-9]*")):
        start = int(f.name.rsplit(".", 1)[1])
        assert f.read_bytes() == pattern(start, f.stat().st_size)
        assert f.stat().st_size == 64 * KiB  # rotated files are exactly full
    log.close()


def test_files_only_without_ring(tmp_path: Path) -> None:
    log = ConsoleLog(tmp_path, ring_bytes=0, file_max_bytes=1000)
    log.append(pattern(0, 2500))
    assert log.statistics().ring_bytes == 0
    assert read_all(log, 0, 333) == (0, pattern(0, 2500))
    log.close()


def test_overrun_after_rotation_and_keep_files(tmp_path: Path) -> None:
    log = ConsoleLog(tmp_path, ring_bytes=1000, file_max_bytes=10_000, keep_files=2)
    total = 0
    for _ in range(12):
        log.append(pattern(total, 4000))
        total += 4000
    rotated = sorted(int(p.name.rsplit(".", 1)[1]) for p in tmp_path.glob("console.log.[0-9]*"))
    assert rotated == [20_000, 30_000]  # keep_files=2: older ones deleted
    assert log.statistics().files_kept == 2
    assert log.oldest_index == 20_000
    chunk = log.read(5, 100)
    assert chunk.old_read_index == 20_000  # the client sees the overrun
    assert chunk.data == pattern(20_000, 100)
    assert chunk.next_read_index == 20_100
    assert read_all(log, 0) == (20_000, pattern(20_000, total - 20_000))
    log.close()


def test_ring_older_than_files(tmp_path: Path) -> None:
    """keep_files=0 and a ring larger than a file: the ring answers the old bytes."""
    log = ConsoleLog(tmp_path, ring_bytes=5000, file_max_bytes=1000, keep_files=0)
    log.append(pattern(0, 10_500))
    assert list(tmp_path.glob("console.log.[0-9]*")) == []
    assert log.oldest_index == 10_500 - 5000
    chunk = log.read(0, 10_000)
    assert (chunk.old_read_index, chunk.data) == (5500, pattern(5500, 5000))
    log.close()


def test_reopen_continues_the_index(tmp_path: Path) -> None:
    log = ConsoleLog(tmp_path, file_max_bytes=1000, keep_files=3)
    log.append(pattern(0, 2500))
    log.close()
    log = ConsoleLog(tmp_path, file_max_bytes=1000, keep_files=3)
    assert log.end_index == 2500
    assert log.read(100, 3000).data == pattern(100, 2400)  # from the files: ring empty
    log.append(pattern(2500, 1000))
    assert read_all(log) == (0, pattern(0, 3500))
    log.close()
    # a larger saved index wins; the bytes in between are lost, the rest still readable
    log = ConsoleLog(tmp_path, file_max_bytes=1000, keep_files=3, start_index=5000)
    assert log.end_index == 5000
    log.append(b"after")
    chunk = log.read(3400, 1000)
    assert (chunk.old_read_index, chunk.data) == (3400, pattern(3400, 100))
    chunk = log.read(3500, 1000)
    assert (chunk.old_read_index, chunk.data) == (5000, b"after")
    log.close()
    # a smaller saved index never takes the log back
    log = ConsoleLog(tmp_path, file_max_bytes=1000, keep_files=3, start_index=10)
    assert log.end_index == 5005
    log.close()


def test_start_index_on_a_new_log(tmp_path: Path) -> None:
    log = ConsoleLog(tmp_path / "new" / "dir", start_index=777)
    assert (log.end_index, log.oldest_index) == (777, 777)
    log.append(b"x")
    assert log.read(0, 10).old_read_index == 777
    log.close()
    assert ConsoleLog(tmp_path / "new" / "dir").end_index == 778


def test_crash_between_rename_and_sidecar(tmp_path: Path) -> None:
    log = ConsoleLog(tmp_path, file_max_bytes=1000)
    log.append(pattern(0, 2500))  # files at 0, 1000 and console.log from 2000
    log.close()
    # simulate a crash right after "rename console.log away": sidecar stale, no console.log
    os.replace(tmp_path / "console.log", tmp_path / "console.log.2000")
    (tmp_path / "console.log.start").write_text("1000\n")
    log = ConsoleLog(tmp_path, file_max_bytes=1000)
    assert log.end_index == 2500
    assert read_all(log) == (0, pattern(0, 2500))
    log.close()
    assert (tmp_path / "console.log.start").read_text().strip() == "2500"
    # a lost or garbled sidecar falls back to the newest rotated file
    (tmp_path / "console.log.start").write_text("garbage")
    log = ConsoleLog(tmp_path, file_max_bytes=1000)
    assert log.end_index == 2500
    log.close()


def test_file_deleted_from_outside_reads_as_overrun(tmp_path: Path) -> None:
    log = ConsoleLog(tmp_path, ring_bytes=0, file_max_bytes=1000)
    log.append(pattern(0, 3500))
    (tmp_path / "console.log.1000").unlink()
    chunk = log.read(0, 5000)
    assert (chunk.old_read_index, chunk.data) == (0, pattern(0, 1000))  # stops at the gap
    chunk = log.read(1000, 5000)
    assert (chunk.old_read_index, chunk.data) == (2000, pattern(2000, 1500))
    log.close()


def test_huge_line_keeps_the_ring_bounded(tmp_path: Path) -> None:
    ring = 256 * KiB
    log = ConsoleLog(tmp_path, ring_bytes=ring, file_max_bytes=4 * MiB, keep_files=1)
    block = b"x" * (MiB - 1) + b"y"
    peak = 0
    for _ in range(50):
        log.append(block)
        peak = max(peak, log.statistics().ring_bytes)
    assert peak <= ring + MiB
    assert log.statistics().ring_bytes >= ring
    assert log.end_index == 50 * MiB
    assert log.read(log.end_index - 2, 10).data == b"xy"
    log.append(b"z" * (3 * MiB))  # one append bigger than the ring
    assert log.statistics().ring_bytes == ring
    assert log.read(log.end_index - ring - 1, 10).old_read_index == log.end_index - ring - 1
    log.close()


def test_ring_coalesces_small_appends_and_stays_exact() -> None:
    ring = ConsoleRing(10_000, start=5)
    expected = bytearray()
    for i in range(3000):
        line = b"line %d\n" % i
        ring.append(line)
        expected += line
    assert ring.end == 5 + len(expected)
    assert 10_000 <= ring.held < 10_000 + 64 * KiB
    start = ring.start
    assert ring.read(start, 1 << 30) == bytes(expected[start - 5 :])
    assert ring.read(ring.end - 9, 3) == bytes(expected[-9:-6])
    assert len(ring._chunks) < 10  # coalesced, not one object per line
    with pytest.raises(ValueError, match="outside"):
        ring.read(start - 1, 1)


def test_ring_keeps_at_least_capacity_over_many_chunks() -> None:
    ring = ConsoleRing(100_000)
    for i in range(20):
        ring.append(pattern(i * 30_000, 30_000))
    assert 100_000 <= ring.held < 130_000
    assert ring.start == 600_000 - ring.held
    assert ring.read(ring.start, 1 << 30) == pattern(ring.start, ring.held)
    assert ring.read(500_000 - 7, 30_010) == pattern(500_000 - 7, 30_010)  # spans 3 chunks


def test_append_after_close_fails_and_statistics(tmp_path: Path) -> None:
    log = ConsoleLog(tmp_path, file_max_bytes=100, keep_files=1)
    log.append(b"a" * 250)
    stats = log.statistics()
    assert (stats.bytes_written, stats.rotations, stats.files_kept) == (250, 2, 1)
    assert stats.file_bytes == 150
    assert stats.end_index == 250
    log.close()
    with pytest.raises(InternalError):
        log.append(b"more")
    assert log.read(200, 10).data == b"a" * 10  # reads still work


def test_unwritable_directory_is_internal_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(InternalError, match="file"):
        ConsoleLog(blocker / "sub")


async def test_wait_beyond(log: ConsoleLog, autojump_clock: trio.testing.MockClock) -> None:
    log.append(b"abc")
    with trio.fail_after(1):
        await log.wait_beyond(2)  # already there: returns at once
    woke: list[float] = []

    async def waiter() -> None:
        await log.wait_beyond(3)
        woke.append(trio.current_time())

    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.sleep(5)
            assert woke == []
            log.append(b"")  # nothing new: still waiting
            await trio.sleep(1)
            assert woke == []
            log.append(b"d")
    assert woke == [6.0]

    with trio.move_on_after(10) as scope:
        await log.wait_beyond(4)
    assert scope.cancelled_caught
    assert trio.current_time() == 16.0


async def test_wait_beyond_returns_when_closed(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    log = ConsoleLog(tmp_path)
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(log.wait_beyond, 0)
            await trio.sleep(1)
            log.close()
    assert trio.current_time() == 1.0

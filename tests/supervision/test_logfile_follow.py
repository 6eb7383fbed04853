"""Following a log file through what games and logrotate do to it: a reader always
makes progress below the end (bytes, or an overrun to the oldest readable byte), and
no byte written before or after a rotation is lost or read twice."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from leosuite.supervision.logfile_follow import LogFollower
from leosuite.supervision.logfile_stream import LogStream

LOG = ("logs", "latest.log")


def make(tmp_path: Path) -> tuple[Path, LogFollower]:
    (tmp_path / "logs").mkdir()
    follower = LogFollower(tmp_path, LOG, threads=trio.CapacityLimiter(2))
    return tmp_path / "logs" / "latest.log", follower


async def read_all(follower: LogFollower, index: int) -> tuple[bytes, int]:
    """Everything from ``index`` to the end, checking that each answer makes progress;
    the bytes and the index of the first one."""
    got = b""
    first = -1
    await follower.refresh()
    while index < follower.end_index:
        chunk = await follower.read(index, 7)
        assert chunk.next_read_index > index, chunk  # no answer without progress
        if first < 0:
            first = chunk.old_read_index
        else:
            assert chunk.old_read_index == index  # no gap after the first answer
        got += chunk.data
        index = chunk.next_read_index
    return got, first


async def test_a_rotated_away_file_emptied_is_skipped_not_spun_on(tmp_path: Path) -> None:
    path, follower = make(tmp_path)
    path.write_bytes(b"first\n" * 10)
    with follower.using():
        await follower.refresh()
        os.rename(path, tmp_path / "logs" / "old.log")
        path.write_bytes(b"second\n")
        await follower.refresh()
        assert follower.oldest_index == 0
        (tmp_path / "logs" / "old.log").write_bytes(b"")  # emptied: its bytes are gone
        got, first = await read_all(follower, 0)
        assert (got, first) == (b"second\n", 60)
        with trio.move_on_after(0.2) as waited:
            await follower.wait_beyond(follower.end_index)
        assert waited.cancelled_caught  # nothing new: the wait waits


async def test_a_renamed_away_file_truncated_begins_again(tmp_path: Path) -> None:
    path, follower = make(tmp_path)
    path.write_bytes(b"A" * 100)
    with follower.using():
        assert (await follower.read(0, 40)).next_read_index == 40
        os.rename(path, tmp_path / "logs" / "old.log")
        os.truncate(tmp_path / "logs" / "old.log", 0)
        await follower.wait_beyond(40)  # the end is 100: at once
        chunk = await follower.read(40, 1000)
        assert (chunk.old_read_index, chunk.data) == (100, b"")  # 60 bytes lost, said so
        with (tmp_path / "logs" / "old.log").open("ab") as game:
            game.write(b"again\n")
        assert await read_all(follower, chunk.next_read_index) == (b"again\n", 100)


async def test_writes_to_the_old_file_until_the_new_one_has_a_byte_are_read(tmp_path: Path) -> None:
    path, follower = make(tmp_path)
    with follower.using(), path.open("ab", buffering=0) as old:
        old.write(b"A" * 10)
        await follower.refresh()
        os.rename(path, tmp_path / "logs" / "latest.log.1")
        path.write_bytes(b"")  # logrotate's create
        await follower.refresh()
        old.write(b"B" * 5)  # the game writes to the old file until it reopens its log
        await follower.refresh()
        with path.open("ab", buffering=0) as new:
            new.write(b"C" * 3)
            await follower.refresh()
            old.write(b"late")  # after the new file's first byte: not part of the stream
            assert await read_all(follower, 0) == (b"A" * 10 + b"B" * 5 + b"C" * 3, 0)


async def test_a_copy_truncate_that_regrew_past_the_old_size_begins_again(tmp_path: Path) -> None:
    path, follower = make(tmp_path)
    path.write_bytes(b"old line\n")
    assert (await follower.read(0, 100)).data == b"old line\n"
    with path.open("r+b") as game:  # truncated and written again between two looks
        game.truncate(0)
        game.write(b"a new, longer first line\n")
    chunk = await follower.read(9, 100)
    assert (chunk.old_read_index, chunk.data) == (9, b"a new, longer first line\n")
    assert follower.statistics().rotations == 1


async def test_a_file_deleted_while_nobody_reads_is_not_read_from_nothing(tmp_path: Path) -> None:
    path, follower = make(tmp_path)
    path.write_bytes(b"x" * 50)
    await follower.refresh()  # a listing: nobody holds the file
    path.unlink()
    chunk = await follower.read(0, 100)
    assert (chunk.old_read_index, chunk.data, chunk.read_index) == (50, b"", 50)


class RewrittenDuringALook(LogStream):
    """A stream whose file (at ``path``) the game truncates and writes again with
    ``rewrite`` after a look's stat, just before the file's first bytes are compared."""

    path = Path()
    rewrite = b""

    def _same_head(self, fd: int, head: bytes) -> bool:
        if self.rewrite:
            with self.path.open("r+b") as game:
                game.truncate(0)
                game.write(self.rewrite)
            self.rewrite = b""
        return super()._same_head(fd, head)


@pytest.mark.parametrize("renamed", [False, True], ids=["at-its-path", "renamed-away"])
def test_a_copy_truncate_between_a_stat_and_the_compare_is_read_once(
    tmp_path: Path, renamed: bool
) -> None:
    """The size the stat gave before the rewrite is not the new bytes' size: taken for
    it, the stream skipped that many bytes past the new ones (a reader got an overrun).
    ``renamed``: the path names nothing, so the held descriptor is looked at."""
    (tmp_path / "logs").mkdir()
    stream = RewrittenDuringALook(tmp_path, LOG)
    stream.path = tmp_path / "logs" / "latest.log"
    stream.path.write_bytes(b"an old line\n" * 25)  # 300 bytes
    try:
        assert stream.read(0, 1000).data == b"an old line\n" * 25
        if renamed:
            stream.path = stream.path.rename(tmp_path / "logs" / "latest-1.log")
        stream.rewrite = b"new\n" * 7
        stream.refresh()
        assert stream.end_index == 300 + 28
        chunk = stream.read(300, 1000)
        assert (chunk.old_read_index, chunk.data, chunk.read_index) == (300, b"new\n" * 7, 328)
    finally:
        stream.let_go()

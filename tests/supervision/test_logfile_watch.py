"""Log-file followers on the daemon's one inotify watch: a waiter wakes on a real write
and after real rotations (both ways) with the file I/O in worker threads; followers
share the watch's one inotify descriptor; a watch limit reached (ENOSPC) falls back to
polling; a forgotten server's waiters wake with the reason; a file on another
filesystem (a mount inside the server's directory) is refused."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from inotify_simple import INotify

from leosuite.errors import InvalidInput, NotFound
from leosuite.supervision.console_watch import ConsoleWatch
from leosuite.supervision.logfile_follow import LogFollower
from leosuite.supervision.logfile_registry import LogFollowers

LOG = ("logs", "latest.log")


def inotify_fds() -> int:
    """How many inotify descriptors this process holds."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            count += os.readlink(fd) == "anon_inode:inotify"
        except OSError:
            continue  # the descriptor of the listing itself
    return count


@asynccontextmanager
async def running(**kw: float) -> AsyncIterator[ConsoleWatch]:
    watch = ConsoleWatch(**kw)
    async with trio.open_nursery() as nursery:
        await nursery.start(watch.run)
        yield watch
        nursery.cancel_scope.cancel()


def write(path: Path, data: bytes) -> None:
    """A real child process appends ``data`` to ``path``, as a game writes its log."""
    with path.open("ab") as out:
        subprocess.run(["printf", "%s", data.decode()], stdout=out, check=True)


async def wait_until_watched(follower: LogFollower, watch: ConsoleWatch) -> None:
    while not watch.watched(follower):
        await trio.sleep(0.01)


async def test_waiters_wake_on_writes_and_rotations_on_one_inotify(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    path = tmp_path / "logs" / "latest.log"
    path.write_bytes(b"")
    before = inotify_fds()
    # Intervals long past the test's deadline: only inotify can wake the waiter.
    with trio.fail_after(60):
        async with running(safety_interval=3600.0, poll_interval=3600.0) as watch:
            followers = LogFollowers(watch=watch, threads=2)
            follower = followers.get(1, tmp_path, LOG)
            other = followers.get(1, tmp_path, ("logs", "debug.log"))
            got = b""

            async def follow(target: LogFollower, index: int, want: int) -> None:
                while index < want:
                    await target.wait_beyond(index)
                    chunk = await target.read(index, 100)
                    nonlocal got
                    got += chunk.data if target is follower else b""
                    index = chunk.next_read_index

            async with trio.open_nursery() as nursery:
                nursery.start_soon(follow, follower, 0, 6 + 7 + 6)
                nursery.start_soon(follow, other, 0, 1)
                await wait_until_watched(follower, watch)
                await wait_until_watched(other, watch)
                assert inotify_fds() == before + 1  # one descriptor for both (and consoles)
                assert followers.watching() == 2
                write(path, b"first\n")
                while len(got) < 6:
                    await trio.sleep(0.01)
                os.rename(path, tmp_path / "logs" / "old.log")  # rename-and-create
                write(path, b"second\n")
                while len(got) < 13:
                    await trio.sleep(0.01)
                os.truncate(path, 0)  # copy-truncate
                write(path, b"third\n")
                write(tmp_path / "logs" / "debug.log", b"x")
            assert got == b"first\nsecond\nthird\n"
            assert follower.statistics().rotations == 2
            assert followers.watching() == 0  # nobody waits: nothing watched
            assert watch.statistics().files == 0


async def test_a_watch_limit_reached_falls_back_to_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_room(self: INotify, path: str, mask: int) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(INotify, "add_watch", no_room)  # the user's watch limit reached
    (tmp_path / "logs").mkdir()
    path = tmp_path / "logs" / "latest.log"
    with trio.fail_after(60):
        async with running(poll_interval=0.05, safety_interval=3600.0) as watch:
            follower = LogFollower(
                tmp_path, LOG, threads=trio.CapacityLimiter(1), watch=watch, missing_poll=3600.0
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(follower.wait_beyond, 0)
                while watch.statistics().polled != 1:
                    await trio.sleep(0.01)
                assert not watch.watched(follower)
                write(path, b"polled\n")  # the watch's poll timer wakes the waiter
            assert (await follower.read(0, 100)).data == b"polled\n"
            assert watch.statistics().files == 0


async def test_a_forgotten_server_wakes_its_waiters_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    with trio.fail_after(60):
        async with running(safety_interval=3600.0, poll_interval=3600.0) as watch:
            followers = LogFollowers(watch=watch)
            follower = followers.get(7, tmp_path, LOG)
            errors: list[str] = []

            async def waiter() -> None:
                try:
                    await follower.wait_beyond(0)
                except NotFound as exc:
                    errors.append(exc.message)

            async with trio.open_nursery() as nursery:
                for _ in range(3):  # a leader and two parked waiters
                    nursery.start_soon(waiter)
                await wait_until_watched(follower, watch)
                followers.forget_server(7, "server 'game' was destroyed")
                assert not watch.watched(follower)  # the watch goes at once
            assert errors == ["server 'game' was destroyed"] * 3
            assert followers.count(7) == 0
            assert follower.statistics().users == 0
            with pytest.raises(NotFound, match="was destroyed"):
                await follower.read(0, 0)
            assert watch.statistics().files == 0


async def test_a_file_on_another_filesystem_is_refused(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(logs)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        (logs / "latest.log").write_bytes(b"bytes from another filesystem\n")
        follower = LogFollower(tmp_path, LOG, threads=trio.CapacityLimiter(1))
        with pytest.raises(InvalidInput, match="another filesystem") as refused:
            await follower.read(0, 100)
        assert refused.value.message.startswith("file: logs/latest.log")
        assert "bytes" not in refused.value.message
        with pytest.raises(InvalidInput, match="another filesystem"):
            await follower.wait_beyond(0)
        assert follower.statistics().users == 0
    finally:
        subprocess.run(["umount", str(logs)], check=True)

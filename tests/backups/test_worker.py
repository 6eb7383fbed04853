"""Archive jobs in a child process (``python -m leosuite.backups.worker``): the same
archives, progress and errors as the engine run in a thread; the child runs at a lower
priority; a cancel stops it and leaves nothing behind, as does the end of its input (a
daemon that died); a child that dies is an error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import msgspec
import psutil  # type: ignore[import-untyped]
import pytest
import trio

from leosuite.backups import worker
from leosuite.backups.archive import (
    ArchiveTooLarge,
    InvalidInput,
    UnsafeArchive,
    partial_path,
)
from leosuite.errors import InternalError

MiB = 1 << 20


def children() -> list[psutil.Process]:
    """This process's live archive worker children."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "leosuite.backups.worker" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:  # gone, or a zombie not reaped yet
            continue
    return found


def server_dir(root: Path, noise_mib: int = 0) -> Path:
    (root / "world" / "region").mkdir(parents=True)
    (root / "world" / "level.dat").write_bytes(b"level\n" * 1000)
    (root / "world" / "region" / "r.0.0.mca").write_bytes(bytes(range(256)) * 400)
    (root / "server.properties").write_text("motd=hello\n")
    os.symlink("world/level.dat", root / "level-link")
    if noise_mib:
        (root / "noise.bin").write_bytes(os.urandom(noise_mib * MiB))
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def test_a_round_trip_with_progress(tmp_path: Path) -> None:
    src = server_dir(tmp_path / "src", noise_mib=3)
    seen: list[tuple[int, int]] = []
    with trio.fail_after(60):
        made = await worker.create_archive(
            src,
            tmp_path / "a.tar.zst",
            exclude=["server.properties"],
            progress=lambda done, total: seen.append((done, total)),
        )
        assert made.files == 3
        assert seen[0] == (0, made.source_bytes)
        assert seen[-1] == (made.source_bytes, made.source_bytes)
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)
        restored = await worker.restore_archive(
            tmp_path / "a.tar.zst", tmp_path / "dest", expect_sha256=made.sha256
        )
    assert restored == made
    expected = tree(src)
    del expected["server.properties"]
    assert tree(tmp_path / "dest") == expected
    assert os.readlink(tmp_path / "dest" / "level-link") == "world/level.dat"
    assert children() == []


async def test_the_child_runs_at_the_lowest_priority(tmp_path: Path) -> None:
    src = server_dir(tmp_path / "src", noise_mib=4)
    seen: list[tuple[int, int, int]] = []

    def look(done: int, total: int) -> None:
        if not seen:
            for child in children():
                seen.append((os.sched_getscheduler(child.pid), child.nice(), os.getsid(child.pid)))

    with trio.fail_after(60):
        await worker.create_archive(src, tmp_path / "a.tar.zst", progress=look)
    # Idle scheduling, in the daemon's session (so in its scheduling group).
    assert seen == [(os.SCHED_IDLE, min(os.nice(0) + worker.NICE, 19), os.getsid(0))]


async def test_errors_cross_from_the_child(tmp_path: Path) -> None:
    src = server_dir(tmp_path / "src", noise_mib=2)
    dest = tmp_path / "a.tar.zst"
    with trio.fail_after(60):
        with pytest.raises(ArchiveTooLarge) as too_large:
            await worker.create_archive(src, dest, max_size=MiB)
        assert too_large.value.limit == MiB
        assert too_large.value.http_status == 409
        assert not dest.exists()
        assert not partial_path(dest).exists()
        with pytest.raises(InvalidInput, match="does not exist"):
            await worker.create_archive(tmp_path / "missing", dest)
        with pytest.raises(InvalidInput, match="exclude"):
            await worker.create_archive(src, dest, exclude=["/"])
        hostile = tmp_path / "hostile.tar.zst"
        escape = server_dir(tmp_path / "escape")
        os.symlink("../../outside", escape / "world" / "out")
        await worker.create_archive(escape, hostile)  # the link is left out when writing
        garbage = tmp_path / "garbage.tar.zst"
        garbage.write_bytes(b"\x28\xb5\x2f\xfd" + b"not zstd" * 100)
        with pytest.raises(UnsafeArchive, match="cannot be read"):
            await worker.restore_archive(garbage, tmp_path / "d1")
        assert not (tmp_path / "d1").exists()
    assert children() == []


async def test_a_cancel_stops_the_child_and_leaves_nothing(tmp_path: Path) -> None:
    src = server_dir(tmp_path / "src", noise_mib=64)
    dest = tmp_path / "a.tar.zst"
    with trio.fail_after(60):
        with trio.CancelScope() as scope:

            def cancel_once_started(done: int, total: int) -> None:
                if done > 0:
                    scope.cancel()

            await worker.create_archive(src, dest, progress=cancel_once_started)
        assert scope.cancelled_caught
        assert children() == []
        assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
        # A restore cancelled half way removes the destination it made.
        made = await worker.create_archive(src, dest)
        with trio.CancelScope() as scope:

            def cancel_half_way(done: int, total: int) -> None:
                if done > total // 2 + MiB:
                    scope.cancel()

            await worker.restore_archive(dest, tmp_path / "dest", progress=cancel_half_way)
        assert scope.cancelled_caught
        assert made.size > 0
        assert not (tmp_path / "dest").exists()
        # A destination that holds something (which the restore would refuse) is never
        # cleaned after a cancel.
        (tmp_path / "busy").mkdir()
        (tmp_path / "busy" / "mine.txt").write_bytes(b"mine")
        with trio.CancelScope() as scope:

            def cancel_at_once(done: int, total: int) -> None:
                scope.cancel()

            await worker.restore_archive(dest, tmp_path / "busy", progress=cancel_at_once)
        assert scope.cancelled_caught
        assert tree(tmp_path / "busy") == {"mine.txt": b"mine"}
        assert children() == []


async def test_a_child_that_dies_is_an_internal_error(tmp_path: Path) -> None:
    src = server_dir(tmp_path / "src", noise_mib=64)
    dest = tmp_path / "a.tar.zst"

    def kill_it(done: int, total: int) -> None:
        for child in children():
            os.kill(child.pid, signal.SIGKILL)

    with trio.fail_after(60):
        with pytest.raises(InternalError, match="exited with -9"):
            await worker.create_archive(src, dest, progress=kill_it)
    assert children() == []
    assert not dest.exists()


async def test_the_child_stops_when_its_input_ends(tmp_path: Path) -> None:
    # What a daemon that dies leaves its child: the end of its stdin.
    src = server_dir(tmp_path / "src", noise_mib=64)
    dest = tmp_path / "a.tar.zst"
    job = worker.CreateJob(src=str(src), dest=str(dest), compression="zstd", patterns=())
    with trio.fail_after(60):
        child = await trio.lowlevel.open_process(
            [sys.executable, "-m", "leosuite.backups.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            assert child.stdin is not None
            assert child.stdout is not None
            await child.stdin.send_all(msgspec.json.encode(job) + b"\n")
            first = await child.stdout.receive_some(65536)
            assert first.startswith(b'{"type":"progress"')
            await child.stdin.aclose()
            while await child.stdout.receive_some(65536):
                pass
            assert await child.wait() == 1
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
            await child.stdout.aclose()  # type: ignore[union-attr]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]

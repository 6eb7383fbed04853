"""The archive engine on real trees: a round trip keeps content, modes, links and
unicode names in both compressions; excludes, special files, progress, a file that
shrinks while read, cancelled creates and restores, and where a restore may go."""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import socket
import stat
import subprocess
from pathlib import Path

import pytest
import trio
import trio.testing

from leosuite.backups.archive import (
    ArchiveResult,
    Compression,
    check_archive,
    create_archive,
    partial_path,
    restore_archive,
)
from leosuite.errors import Conflict, InvalidInput

MiB = 1 << 20
COMPRESSIONS: list[Compression] = ["zstd", "gzip"]


def snapshot(root: Path) -> dict[str, tuple[str, int, str]]:
    """Every entry under ``root``: kind, permission bits, and content hash or link target."""
    seen: dict[str, tuple[str, int, str]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        st = path.lstat()
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            seen[rel] = ("link", 0, os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            seen[rel] = ("dir", mode, "")
        else:
            seen[rel] = ("file", mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return seen


def make_tree(root: Path) -> None:
    (root / "world" / "region").mkdir(parents=True)
    (root / "world" / "region" / "r.0.0.mca").write_bytes(os.urandom(64 * 1024))
    (root / "world" / "level.dat").write_bytes(b"level" * 1000)
    (root / "world" / "empty.dat").write_bytes(b"")
    (root / "logs").mkdir()
    (root / "logs" / "latest.log").write_text("started\n" * 100)
    (root / "plugins" / "data").mkdir(parents=True)
    (root / "wörld ✓ 日本語").mkdir()
    (root / "wörld ✓ 日本語" / "ñame.txt").write_text("unicode\n")
    (root / "start.sh").write_text("#!/bin/sh\nexec java\n")
    (root / "start.sh").chmod(0o755)
    (root / "secret.properties").write_text("rcon=1\n")
    (root / "secret.properties").chmod(0o600)
    (root / "shared.txt").write_text("g\n")
    (root / "shared.txt").chmod(0o640)
    (root / "plugins").chmod(0o750)
    (root / "current").symlink_to("world/level.dat")
    (root / "world" / "up").symlink_to("../logs")
    with open(root / "big.bin", "wb") as big:
        for _ in range(20):
            big.write(os.urandom(MiB // 2) + bytes(MiB // 2))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("compression", COMPRESSIONS)
async def test_round_trip_keeps_everything(tmp_path: Path, compression: Compression) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    archive = tmp_path / "backups" / "b1.tar"
    archive.parent.mkdir()
    with trio.fail_after(120):
        made = await create_archive(src, archive, compression=compression)
    files = [p for p in src.rglob("*") if p.is_file() and not p.is_symlink()]
    assert made.files == len(files)
    assert made.source_bytes == sum(p.stat().st_size for p in files)
    assert made.size == archive.stat().st_size
    assert made.sha256 == sha256_of(archive)
    assert not partial_path(archive).exists()
    assert check_archive(archive) == made

    dest = tmp_path / "restored"
    with trio.fail_after(120):
        restored = await restore_archive(archive, dest, expect_sha256=made.sha256)
    assert restored == made
    assert snapshot(dest) == snapshot(src)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    level = dest / "world" / "level.dat"
    assert int(level.stat().st_mtime) == int((src / "world" / "level.dat").stat().st_mtime)
    assert (dest / "current").read_bytes() == b"level" * 1000


async def test_compression_is_told_by_magic_not_name(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_text("a\n")
    for compression, magic in (("zstd", b"\x28\xb5\x2f\xfd"), ("gzip", b"\x1f\x8b")):
        archive = tmp_path / f"misnamed-{compression}.tar.gz.zst"
        await create_archive(src, archive, compression=compression)  # type: ignore[arg-type]
        assert archive.read_bytes().startswith(magic)
        await restore_archive(archive, tmp_path / f"out-{compression}")
        assert (tmp_path / f"out-{compression}" / "a").read_text() == "a\n"


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar is not installed")
async def test_gnu_tar_reads_ours_and_we_read_gnu_tar(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    archive = tmp_path / "ours.tar.gz"
    await create_archive(src, archive, compression="gzip")
    (tmp_path / "by-tar").mkdir()
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(tmp_path / "by-tar")], check=True)
    assert snapshot(tmp_path / "by-tar") == snapshot(src)

    theirs = tmp_path / "theirs.tar.gz"
    subprocess.run(["tar", "-czf", str(theirs), "-C", str(src), "."], check=True)
    await restore_archive(theirs, tmp_path / "from-tar")
    assert snapshot(tmp_path / "from-tar") == snapshot(src)


async def test_exclude_patterns(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    (src / "cache").mkdir()
    (src / "cache" / "x").write_text("x")
    (src / "world" / "session.lock").write_text("lock")
    (src / "a.tmp").write_text("t")
    (src / "world" / "b.tmp").write_text("t")
    archive = tmp_path / "b.tar.zst"
    patterns = ["logs", "*.tmp", "world/session.lock", "./cache/", "/big.bin"]
    made = await create_archive(src, archive, exclude=patterns)
    await restore_archive(archive, tmp_path / "out")
    kept = set(snapshot(tmp_path / "out"))
    for gone in ("logs", "logs/latest.log", "a.tmp", "world/b.tmp", "world/session.lock"):
        assert gone not in kept
    assert not {"cache", "cache/x", "big.bin"} & kept
    assert {"world/level.dat", "world/up", "start.sh", "wörld ✓ 日本語/ñame.txt"} <= kept
    assert made.source_bytes == sum(
        (tmp_path / "out" / rel).stat().st_size
        for rel, (kind, _, _) in snapshot(tmp_path / "out").items()
        if kind == "file"
    )


@pytest.mark.parametrize("bad", [[""], ["."], ["/"], ["a\0b"], "logs", ["x" * 5000]])
async def test_hostile_exclude_patterns_are_refused(tmp_path: Path, bad: object) -> None:
    (tmp_path / "src").mkdir()
    with pytest.raises(InvalidInput, match="exclude"):
        await create_archive(tmp_path / "src", tmp_path / "b", exclude=bad)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == [tmp_path / "src"]


async def test_unknown_compression_and_missing_source_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="compression"):
        await create_archive(tmp_path, tmp_path / "b", compression="xz")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="does not exist"):
        await create_archive(tmp_path / "missing", tmp_path / "b")
    assert not (tmp_path / "b").exists()
    assert not partial_path(tmp_path / "b").exists()


async def test_special_files_and_outward_links_are_left_out(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "plain").write_text("p")
    os.mkfifo(src / "stdin")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(src / "control.sock"))
    (src / "etc").symlink_to("/etc")
    (src / "parent").symlink_to("../..")
    (src / "inside").symlink_to("plain")
    archive = tmp_path / "b.tar.zst"
    try:
        with trio.fail_after(60):
            made = await create_archive(src, archive)
    finally:
        sock.close()
    await restore_archive(archive, tmp_path / "out")
    assert set(snapshot(tmp_path / "out")) == {"plain", "inside"}
    assert made.files == 1


async def test_archive_inside_the_source_does_not_archive_itself(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "backups").mkdir(parents=True)
    (src / "data").write_bytes(os.urandom(3 * MiB))
    archive = src / "backups" / "b.tar.zst"
    await create_archive(src, archive)
    await restore_archive(archive, tmp_path / "out")
    assert set(snapshot(tmp_path / "out")) == {"backups", "data"}


async def test_progress_reaches_total(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    calls: list[tuple[int, int]] = []
    made = await create_archive(
        src, tmp_path / "b.tar.zst", progress=lambda done, total: calls.append((done, total))
    )
    assert calls[0] == (0, made.source_bytes)
    assert calls[-1] == (made.source_bytes, made.source_bytes)
    assert len(calls) >= 10  # about one call per MiB of the 20 MiB file
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(calls))
    assert all(done <= total for done, total in calls)

    calls.clear()
    await restore_archive(
        tmp_path / "b.tar.zst",
        tmp_path / "out",
        progress=lambda done, total: calls.append((done, total)),
    )
    total = 2 * made.size
    assert calls[0] == (0, total)
    assert calls[-1] == (total, total)
    assert all(done <= total for done, total in calls)


async def test_file_shrinking_while_read_gives_a_valid_archive(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    original = os.urandom(8 * MiB)
    (src / "growing.log").write_bytes(original)
    cut = MiB + MiB // 2

    def shrink(done: int, total: int) -> None:
        if done > 0 and (src / "growing.log").stat().st_size > cut:
            os.truncate(src / "growing.log", cut)

    archive = tmp_path / "b.tar.zst"
    made = await create_archive(src, archive, progress=shrink)
    assert (src / "growing.log").stat().st_size == cut  # it did shrink during the read
    assert made.source_bytes == 8 * MiB
    assert check_archive(archive) == made
    await restore_archive(archive, tmp_path / "out")
    restored = (tmp_path / "out" / "growing.log").read_bytes()
    assert restored == original[:cut] + bytes(8 * MiB - cut)


async def test_cancelled_create_leaves_no_partial_file_and_no_archive(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "big", "wb") as big:
        for _ in range(64):
            big.write(os.urandom(MiB))
    archive = tmp_path / "backups" / "b.tar.zst"
    archive.parent.mkdir()
    cancelled_at: list[int] = []
    token = trio.lowlevel.current_trio_token()
    with trio.fail_after(120):
        with trio.CancelScope() as scope:

            def cancel_at_first_block(done: int, total: int) -> None:
                if done > 0:
                    cancelled_at.append(done)
                    if len(cancelled_at) == 1:
                        trio.from_thread.run_sync(scope.cancel)
                        # Every task the cancel woke has run (the one that raises the
                        # stop flag among them) before this block's thread goes on; the
                        # token runs the wait outside the cancelled caller.
                        trio.from_thread.run(trio.testing.wait_all_tasks_blocked, trio_token=token)

            await create_archive(src, archive, progress=cancel_at_first_block)
    assert scope.cancelled_caught
    assert cancelled_at == [MiB]  # the thread stopped at the next count after the flag
    assert list(archive.parent.iterdir()) == []


async def test_cancelled_restore_removes_what_it_wrote(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for n in range(8):
        (src / f"f{n}").write_bytes(os.urandom(4 * MiB))
    archive = tmp_path / "b.tar.zst"
    made = await create_archive(src, archive)
    dest = tmp_path / "out"
    asked: list[int] = []
    with trio.fail_after(120):
        with trio.CancelScope() as scope:

            def cancel_in_second_pass(done: int, total: int) -> None:
                if done > made.size and not asked:
                    asked.append(done)
                    trio.from_thread.run_sync(scope.cancel)

            await restore_archive(archive, dest, progress=cancel_in_second_pass)
    assert scope.cancelled_caught
    assert not dest.exists()

    dest.mkdir()  # an empty directory given is emptied again, not removed
    asked.clear()
    with trio.CancelScope() as scope:
        await restore_archive(archive, dest, progress=cancel_in_second_pass)
    assert scope.cancelled_caught
    assert dest.is_dir()
    assert list(dest.iterdir()) == []


async def test_restore_only_into_a_missing_or_empty_directory(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_text("a")
    archive = tmp_path / "b.tar.zst"
    await create_archive(src, archive)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep").write_text("mine")
    with pytest.raises(Conflict, match="not empty"):
        await restore_archive(archive, full)
    assert snapshot(full) == {"keep": ("file", 0o644, hashlib.sha256(b"mine").hexdigest())}
    (tmp_path / "afile").write_text("f")
    with pytest.raises(Conflict, match="not a directory"):
        await restore_archive(archive, tmp_path / "afile")
    (tmp_path / "alink").symlink_to(full)
    with pytest.raises(Conflict, match="not a directory"):
        await restore_archive(archive, tmp_path / "alink")
    with pytest.raises(InvalidInput, match="parent"):
        await restore_archive(archive, tmp_path / "no" / "such")
    with pytest.raises(InvalidInput, match="does not exist"):
        await restore_archive(tmp_path / "missing.tar.zst", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    result = await restore_archive(archive, tmp_path / "empty-ok")
    assert isinstance(result, ArchiveResult)


async def test_zstd_threads(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    archive = tmp_path / "b.tar.zst"
    made = await create_archive(src, archive, zstd_threads=1)
    assert check_archive(archive) == made
    await restore_archive(archive, tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(src)
    for bad in (-1, 65):
        with pytest.raises(InvalidInput, match="zstd_threads"):
            await create_archive(src, tmp_path / "x", zstd_threads=bad)
    assert not (tmp_path / "x").exists()


async def test_cancel_while_waiting_for_the_limiter(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a").write_text("a")
    limiter = trio.CapacityLimiter(1)
    archive = tmp_path / "b.tar.zst"
    with trio.fail_after(60):
        async with limiter, trio.open_nursery() as nursery:
            scope = trio.CancelScope()

            async def create() -> None:
                with scope:
                    await create_archive(tmp_path / "src", archive, limiter=limiter)

            nursery.start_soon(create)
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()
    assert scope.cancelled_caught
    assert not archive.exists()
    assert not partial_path(archive).exists()
    assert (await create_archive(tmp_path / "src", archive, limiter=limiter)).files == 1

"""The console file's repair: a start index beyond the files, an older release's
layout and each step of converting it cut short by a crash, lost sidecars, files
removed from outside, and links or files planted by a server in place of the
console's own. Real files in a temporary directory, built by hand as each case left
them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from leosuite.supervision.console_punch import BLOCK
from tests.helpers.console import names, open_console, pattern, read_all

SECRET = b"TOP SECRET of another program\n"


@pytest.fixture(params=[True, False], ids=["punch", "segments"])
def punch(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.mark.parametrize("target", [5000, 8192])
def test_start_index_beyond_the_end(tmp_path: Path, punch: bool, target: int) -> None:
    console = open_console(tmp_path, punch)
    console.append(pattern(0, 3000))
    console.close()
    console = open_console(tmp_path, punch, start_index=target)
    assert console.end_index == target
    console.append(b"after")
    chunk = console.read(2900, 1000)  # the old bytes stay readable
    assert (chunk.old_read_index, chunk.data) == (2900, pattern(2900, 100))
    chunk = console.read(3000, 1000)  # the ones in between are lost
    assert (chunk.old_read_index, chunk.data) == (target, b"after")
    console.close()
    # a smaller saved index never takes the console back
    console = open_console(tmp_path, punch, start_index=10)
    assert console.end_index == target + 5
    console.close()


def test_start_index_on_a_new_console(tmp_path: Path, punch: bool) -> None:
    console = open_console(tmp_path / "new" / "dir", punch, start_index=777)
    assert (console.end_index, console.oldest_index) == (777, 777)
    console.append(b"x")
    assert console.read(0, 10).old_read_index == 777
    console.start_segment()
    console.close()
    assert open_console(tmp_path / "new" / "dir", punch).end_index == 778


def test_a_file_deleted_from_outside_reads_as_lost(tmp_path: Path) -> None:
    console = open_console(tmp_path, punch=False)
    for start in (0, 1000, 2000):
        console.start_segment()
        console.append(pattern(start, 1000))
    (tmp_path / "console.log.1000").unlink()
    chunk = console.read(0, 5000)
    assert (chunk.old_read_index, chunk.data) == (0, pattern(0, 1000))  # stops at the gap
    chunk = console.read(1000, 5000)
    assert (chunk.old_read_index, chunk.data) == (2000, pattern(2000, 1000))
    console.close()


def legacy_directory(directory: Path) -> None:
    """An older release's files: rotated files at 0 and 4000, console.log from 10000."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "console.log.0").write_bytes(pattern(0, 4000))
    (directory / "console.log.4000").write_bytes(pattern(4000, 6000))
    (directory / "console.log").write_bytes(pattern(10_000, 5000))
    (directory / "console.log.start").write_text("10000\n")


def test_an_older_layout_is_read_then_converted_at_a_start(tmp_path: Path) -> None:
    legacy_directory(tmp_path)
    console = open_console(tmp_path)
    assert (console.end_index, console.oldest_index) == (15_000, 0)
    assert read_all(console) == (0, pattern(0, 15_000))
    console.append(pattern(15_000, 10))  # appended at the old end
    assert (tmp_path / "console.log.start").exists()  # a child may be writing: kept so
    console.start_segment()  # nobody writes now: console.log's byte 0 becomes index 0
    assert names(tmp_path) == [
        "console.log",
        "console.log.0",
        "console.log.10000",
        "console.log.4000",
    ]
    current = tmp_path / "console.log"
    assert current.stat().st_size == 15_010
    assert current.stat().st_blocks * 512 <= BLOCK  # sparse, but for its last block
    console.append(pattern(15_010, 5000))
    assert read_all(console) == (0, pattern(0, 20_010))
    console.close()
    # the last block was copied: without the older file its bytes still read right
    (tmp_path / "console.log.10000").unlink()
    console = open_console(tmp_path)
    chunk = console.read(11_000, 100_000)
    assert (chunk.old_read_index, chunk.data) == (12_288, pattern(12_288, 20_010 - 12_288))
    console.close()


def test_an_older_layout_stays_where_holes_cannot_be_punched(tmp_path: Path) -> None:
    legacy_directory(tmp_path)
    console = open_console(tmp_path, punch=False)
    console.append(pattern(15_000, 10))
    assert (tmp_path / "console.log").read_bytes() == pattern(10_000, 5010)
    console.start_segment()
    assert (tmp_path / "console.log.start").read_text() == "15010\n"
    assert read_all(console) == (0, pattern(0, 15_010))
    console.close()


def cut_short(directory: Path, state: str) -> None:
    """The files as a crash left them at one step of converting ``legacy_directory``."""
    legacy_directory(directory)
    os.replace(directory / "console.log", directory / "console.log.10000")
    if state == "renamed":
        return
    (directory / "console.log.start").unlink()
    if state == "sidecar removed":
        return
    with open(directory / "console.log.new", "wb") as f:  # the sparse file being made
        if state != "created":
            f.truncate(12_288)
        if state == "copying":
            f.seek(12_288)
            f.write(pattern(12_288, 1000))


@pytest.mark.parametrize("state", ["renamed", "sidecar removed", "created", "truncated", "copying"])
def test_each_crash_point_of_the_conversion(tmp_path: Path, state: str) -> None:
    cut_short(tmp_path, state)
    console = open_console(tmp_path)
    assert console.end_index == 15_000
    assert read_all(console) == (0, pattern(0, 15_000))
    console.append(pattern(15_000, 10))
    console.close()
    assert names(tmp_path) == [
        "console.log",
        "console.log.0",
        "console.log.10000",
        "console.log.4000",
    ]
    assert (tmp_path / "console.log").stat().st_size == 15_010
    (tmp_path / "console.log.10000").unlink()
    console = open_console(tmp_path)
    assert read_all(console, 11_000) == (12_288, pattern(12_288, 15_010 - 12_288))
    console.close()


def test_a_sidecar_beyond_every_file_is_kept(tmp_path: Path) -> None:
    """An older release that kept no rotated file: only the sidecar knows the index."""
    (tmp_path / "console.log").write_bytes(b"")
    (tmp_path / "console.log.start").write_text("70000\n")
    console = open_console(tmp_path)
    console.start_segment()
    assert (console.end_index, (tmp_path / "console.log.start").read_text()) == (70_000, "70000\n")
    console.close()
    (tmp_path / "console.log").unlink()
    console = open_console(tmp_path)
    assert console.end_index == 70_000
    console.close()


def test_a_lost_or_garbled_sidecar_follows_the_older_files(tmp_path: Path) -> None:
    console = open_console(tmp_path, punch=False)
    for start, n in ((0, 1000), (1000, 500)):
        console.start_segment()
        console.append(pattern(start, n))
    console.close()
    (tmp_path / "console.log.start").write_text("garbage")
    console = open_console(tmp_path, punch=False)
    assert read_all(console) == (0, pattern(0, 1500))
    console.close()
    (tmp_path / "console.log.start").unlink()  # console.log is shorter than the older end
    console = open_console(tmp_path, punch=False)
    assert read_all(console) == (0, pattern(0, 1500))
    console.close()


def test_a_planted_link_or_hard_link_at_console_log_is_replaced(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    logs = tmp_path / "logs"
    logs.mkdir()
    for plant in (os.symlink, os.link):
        plant(secret, logs / "console.log")
        console = open_console(logs, start_index=50)
        console.append(b"mine")
        fd = console.open_for_child()
        os.write(fd, b" too")
        os.close(fd)
        assert not (logs / "console.log").is_symlink()
        assert read_all(console) == (50, b"mine too")
        console.close()
        assert secret.read_bytes() == SECRET
        (logs / "console.log").unlink()


def test_a_log_directory_that_is_a_link_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "logs").symlink_to(target)
    console = open_console(tmp_path / "logs")
    console.append(b"x")
    console.close()
    assert not (tmp_path / "logs").is_symlink()
    assert list(target.iterdir()) == []


def test_a_link_planted_at_an_older_file_or_the_sidecar_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    logs = tmp_path / "logs"
    console = open_console(logs, punch=False)
    console.append(pattern(0, 100))
    console.start_segment()
    console.append(pattern(100, 100))
    (logs / "console.log.0").unlink()
    (logs / "console.log.0").symlink_to(secret)
    (logs / "console.log.start.tmp").symlink_to(secret)
    chunk = console.read(0, 1000)
    assert (chunk.old_read_index, chunk.data) == (100, pattern(100, 100))
    console.start_segment()  # rewrites the sidecar: not through the link
    console.close()
    console = open_console(logs, punch=False)
    assert read_all(console) == (100, pattern(100, 100))
    console.close()
    assert secret.read_bytes() == SECRET


def test_console_log_replaced_while_open_is_made_again(tmp_path: Path, punch: bool) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    logs = tmp_path / "logs"
    console = open_console(logs, punch)
    console.append(pattern(0, 5000))
    (logs / "console.log").unlink()
    (logs / "console.log").symlink_to(secret)
    fd = console.open_for_child()
    os.write(fd, pattern(5000, 100))
    os.close(fd)
    console.refresh()
    assert console.end_index == 5100
    chunk = console.read(5000, 1000)
    assert (chunk.old_read_index, chunk.data) == (5000, pattern(5000, 100))
    assert secret.read_bytes() == SECRET
    assert not (logs / "console.log").is_symlink()
    console.close()
    console = open_console(logs, punch)
    assert console.end_index == 5100
    console.close()

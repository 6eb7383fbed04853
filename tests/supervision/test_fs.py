"""The file-system steps that never follow a planted link: where a path resolves, how a
link in place of a directory or file of the daemon is treated, and how a directory is
handed to another owner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from leosuite.errors import InvalidInput
from leosuite.supervision.fs import open_dir_at, open_file_at, replace_file_at, resolve_inside
from leosuite.supervision.spec import LaunchSpec, check_launch


def test_resolve_inside_follows_links_and_takes_a_missing_tail_as_written(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    (root / "sub").mkdir(parents=True)
    (root / "up").symlink_to(tmp_path)
    (root / "inner").symlink_to(root / "sub")
    (root / "loop").symlink_to(root / "loop")
    assert resolve_inside(str(root), str(root))
    assert resolve_inside(str(root), str(root / "sub" / "not-yet" / "there.jar"))
    assert resolve_inside(str(root), str(root / "inner" / "x"))
    assert not resolve_inside(str(root), str(root / "up" / "x"))
    assert not resolve_inside(str(root), str(root / "loop"))
    assert not resolve_inside(str(root), str(tmp_path / "srv2"))  # a prefix is not inside


def test_check_launch_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "world").symlink_to("/")
    spec = LaunchSpec(
        argv=["x"],
        cwd=str(tmp_path / "world"),
        server_dir=str(tmp_path),
        confined={"working_dir": str(tmp_path / "world")},
    )
    with pytest.raises(InvalidInput) as info:
        check_launch(spec)
    assert info.value.field == "working_dir"
    assert check_launch(LaunchSpec(argv=["x"], cwd=str(tmp_path))) is None
    with pytest.raises(InvalidInput) as info:
        check_launch(LaunchSpec(argv=["x"], cwd=str(tmp_path), user="no-such-user-here"))
    assert info.value.field == "user"


def test_a_link_in_place_of_a_directory_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "logs").symlink_to(target)
    fd = open_dir_at(tmp_path, "logs")
    try:
        replace_file_at(fd, "file", b"data")
    finally:
        os.close(fd)
    assert not (tmp_path / "logs").is_symlink()
    assert (tmp_path / "logs" / "file").read_bytes() == b"data"
    assert list(target.iterdir()) == []


def test_files_are_never_opened_through_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep")
    (tmp_path / "reader").symlink_to(outside)
    (tmp_path / "writer").symlink_to(outside)
    (tmp_path / "writer.tmp").symlink_to(outside)
    os.mkfifo(tmp_path / "fifo")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in ("reader", "fifo"):
            with pytest.raises(OSError, match=r"symbolic links|not a regular file"):
                open_file_at(fd, name, os.O_RDONLY)
        os.close(open_file_at(fd, "writer", os.O_WRONLY | os.O_CREAT))  # the link is replaced
        replace_file_at(fd, "writer", b"new")  # its temporary file is never followed
    finally:
        os.close(fd)
    assert outside.read_bytes() == b"keep"
    assert (tmp_path / "writer").read_bytes() == b"new"
    assert (tmp_path / "reader").is_symlink()

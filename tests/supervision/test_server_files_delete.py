"""A recursive delete in a server's directory: everything in the tree goes, a link
inside is removed as a link (what it points to stays), a FIFO is unlinked, never
opened; and a FIFO or a link swapped in for a directory while the delete runs fails
at once instead of being followed or waited on."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from leosuite.supervision import server_files
from leosuite.supervision.server_files import ServerFiles


def test_a_tree_with_links_and_fifos_is_deleted_and_nothing_outside(tmp_path: Path) -> None:
    root, outside = tmp_path / "server", tmp_path / "outside"
    (root / "tree" / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    (root / "tree" / "a" / "b" / "file.txt").write_text("x")
    os.mkfifo(root / "tree" / "a" / "pipe")
    (root / "tree" / "a" / "link").symlink_to(outside)
    (root / "tree" / "dirlink").symlink_to(outside, target_is_directory=True)

    assert ServerFiles(root).delete(("tree",), recursive=True) == "directory"

    assert list(root.iterdir()) == []
    assert (outside / "keep.txt").read_text() == "keep"


@pytest.mark.parametrize("swapped_in", ["fifo", "link"])
def test_what_is_swapped_in_for_a_directory_fails_at_once(tmp_path: Path, swapped_in: str) -> None:
    """As if the server replaced a listed directory between the listing and its open:
    the open refuses it (ENOTDIR or ELOOP) without blocking on the FIFO."""
    (tmp_path / "outside").mkdir()
    if swapped_in == "fifo":
        os.mkfifo(tmp_path / "entry")
    else:
        (tmp_path / "entry").symlink_to(tmp_path / "outside")
    parent = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError, match=r"Not a directory|Too many levels") as refused:
            server_files._remove_tree(parent, "entry", ("entry",))
    finally:
        os.close(parent)
    assert refused.value.errno in (errno.ENOTDIR, errno.ELOOP)
    assert (tmp_path / "outside").is_dir()

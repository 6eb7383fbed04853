"""A real small filesystem for full-disk tests: a tmpfs mounted for the block (the test
is skipped where mounting is not permitted), and a filler file that takes its space."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

MiB = 1 << 20


@contextmanager
def small_filesystem(where: Path, size: int = 4 * MiB) -> Iterator[Path]:
    """A ``size``-byte tmpfs mounted on ``where`` (made if missing), always unmounted on
    the way out; skips the test when this process may not mount one."""
    where.mkdir(parents=True, exist_ok=True)
    mount = shutil.which("mount")
    if os.geteuid() != 0 or mount is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", str(where)], check=True)  # still busy: detach it


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(filler: Path, *, leave: int = 0) -> None:
    """Append to ``filler`` until at most ``leave`` bytes are free on its filesystem
    (``leave=0``: until a write fails with ENOSPC)."""
    chunk = b"\0" * (64 * 1024)
    with open(filler, "ab", buffering=0) as out:
        while (free := free_bytes(filler.parent)) > leave:
            size = min(len(chunk), free - leave) if leave else len(chunk)
            try:
                out.write(chunk[: max(size, 1)])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return
                chunk = chunk[: len(chunk) // 2]


@contextmanager
def filled(directory: Path, *, leave: int = 0, name: str = "filler") -> Iterator[Path]:
    """A filler file ``name`` in ``directory`` that leaves ``leave`` bytes free (0: none)
    for the block, removed on the way out so the space is back."""
    filler = directory / name
    try:
        fill(filler, leave=leave)
        yield filler
    finally:
        filler.unlink(missing_ok=True)

"""Creating and restoring an archive of a 200 MiB file does not raise the peak memory
of the process by more than about 50 MB: blocks stream through, nothing is held whole.
Measured in a child process of its own (a ratio, not a timing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MiB = 1 << 20

# getrusage's ru_maxrss keeps the peak of the process that forked the child (a large
# test runner) across exec, so the peak of the child's own memory is read (VmHWM, the
# number ru_maxrss takes for a process's own memory) after a reset through clear_refs.
CHILD = r"""
import os, sys
from pathlib import Path
import trio
from leosuite.backups.archive import create_archive, restore_archive

def reset_peak():
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")

def peak_kib():
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmHWM:")).split()[1])

async def main(root):
    warm = root / "warm"
    warm.mkdir()
    (warm / "a").write_bytes(os.urandom(64 * 1024))
    await create_archive(warm, root / "warm.tar.zst")
    await restore_archive(root / "warm.tar.zst", root / "warm-out")
    try:
        reset_peak()
    except OSError:
        print("no-reset")
        return
    before = peak_kib()
    made = await create_archive(root / "src", root / "big.tar.zst")
    create = peak_kib() - before
    reset_peak()
    before = peak_kib()
    await restore_archive(root / "big.tar.zst", root / "out", fsync=False)
    restore = peak_kib() - before
    print(create, restore, made.source_bytes)

trio.run(main, Path(sys.argv[1]))
"""


@pytest.mark.slow
def test_archiving_200_mib_does_not_hold_it_in_memory(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    size = 200 * MiB
    with open(src / "world.bin", "wb") as sparse:
        sparse.truncate(size)  # sparse, but not zero: 16 KiB of noise every MiB
        for offset in range(0, size, MiB):
            sparse.seek(offset)
            sparse.write(os.urandom(16 * 1024))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    if done.stdout.strip() == "no-reset":
        pytest.skip("the kernel cannot reset a process's peak memory (/proc/self/clear_refs)")
    create_kib, restore_kib, stored = map(int, done.stdout.split())
    assert stored == size
    assert (tmp_path / "out" / "world.bin").stat().st_size == size
    print(f"peak RSS growth: create {create_kib} KiB, restore {restore_kib} KiB")
    assert create_kib < 50 * 1024
    assert restore_kib < 50 * 1024

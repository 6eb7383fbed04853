"""Freed heap memory goes back to the system (glibc's malloc_trim), in a real process
whose heap is fragmented as a long-running daemon's is."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from leosuite.memory_trim import trimmer

PROGRAM = textwrap.dedent(
    """
    import gc, sys, trio, psutil
    from leosuite.memory_trim import release_free_memory

    def rss():
        return psutil.Process().memory_info().rss

    # 300 MB of 2 KiB buffers (above CPython's small-object size, so from the C heap, as
    # console chunks and frames are), then all but each 64th freed: the survivors are
    # spread over the heap, so nothing can be given back from its top alone.
    objects = [bytes(2048) + i.to_bytes(8, "little") for i in range(150_000)]
    kept = objects[::64]
    del objects
    gc.collect()
    before = rss()
    returned = trio.run(release_free_memory)
    after = rss()
    print(before, after, returned, len(kept))
    """
)


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's; elsewhere a no-op"
)
def test_freed_memory_is_returned_to_the_system() -> None:
    assert trimmer() is not None
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    before, after, returned = int(out[0]), int(out[1]), out[2]
    assert returned == "True"
    # Most of the ~250 MB freed comes back (the survivors keep at most a page each).
    assert after < before - 100 * 1024 * 1024, (before, after)

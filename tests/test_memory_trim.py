"""Freed heap memory goes back to the system (glibc's malloc_trim), in a real process
whose heap is fragmented as a long-running daemon's is."""

from __future__ import annotations

import gc
import os
import platform
import subprocess
import sys
import textwrap

import pytest
import trio
import trio.testing

from leosuite.memory_trim import ARENAS, CollectorPause, trimmer

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


# Eight threads alive at once, each allocating from the C heap, then glibc's own count
# of its arenas (the <heap nr=...> elements of malloc_info).
ARENAS_PROGRAM = textwrap.dedent(
    """
    import ctypes, ctypes.util, os, sys, tempfile, threading
    from leosuite.memory_trim import cap_arenas

    capped = cap_arenas(os.environ)
    barrier = threading.Barrier(8)
    kept = []

    def work():
        kept.append(bytes(4096))  # above CPython's small-object size: glibc's malloc
        barrier.wait()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    with tempfile.NamedTemporaryFile() as f:
        fp = libc.fopen(f.name.encode(), b"w")
        libc.malloc_info(0, fp)
        libc.fclose(fp)
        print(capped, open(f.name).read().count("<heap nr="))
    """
)


def _arenas(extra_env: dict[str, str]) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | extra_env
    out = subprocess.run(
        [sys.executable, "-c", ARENAS_PROGRAM],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="arenas are glibc's")
def test_worker_threads_share_the_capped_arenas() -> None:
    capped, arenas = _arenas({})
    assert capped == "True"
    assert arenas <= ARENAS


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="arenas are glibc's")
def test_an_operators_arena_count_is_left_alone() -> None:
    # The same threads under the operator's own (glibc's default) count: one arena each.
    capped, arenas = _arenas({"MALLOC_ARENA_MAX": "16"})
    assert capped == "False"
    assert arenas > ARENAS


def test_the_collector_settles_after_start_up() -> None:
    # In a process of its own: freezing and thresholds are the whole interpreter's.
    program = (
        "import gc\n"
        "from leosuite.memory_trim import settle_collector\n"
        "kept = [[i] for i in range(5000)]\n"
        "before = gc.get_threshold()\n"
        "settle_collector()\n"
        "print(gc.get_freeze_count(), gc.get_threshold() == before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert int(out[0]) > 5000  # what start-up made is no longer walked
    assert out[1] == "True"  # how often it collects the rest is CPython's own


async def test_collector_pauses_nest_and_end(autojump_clock: trio.testing.MockClock) -> None:
    assert gc.isenabled()
    with CollectorPause() as outer:
        assert not gc.isenabled()
        with CollectorPause():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds it
        outer.end()
        assert gc.isenabled()  # ended early: the collector runs
        outer.end()  # again: nothing
        assert gc.isenabled()
    assert gc.isenabled()
    started = trio.current_time()
    with CollectorPause() as pause:
        await pause.end_after(2.5)  # a burst that lasts too long
        assert gc.isenabled()
        assert trio.current_time() - started == 2.5
    # Overlapping pauses hold it PAUSE_LIMIT in a row at most, from the first one.
    async with trio.open_nursery() as nursery:
        first = CollectorPause().__enter__()
        nursery.start_soon(first.end_after, 10)
        await trio.sleep(6)
        second = CollectorPause().__enter__()
        nursery.start_soon(second.end_after, 10)
        await trio.sleep(3.9)
        assert not gc.isenabled()
        third = CollectorPause().__enter__()  # without a limit of its own
        await trio.sleep(0.2)  # 10 s after the first began: both limited pauses end
        assert gc.isenabled()  # and the collector runs although the third holds
        fourth = CollectorPause().__enter__()  # no new hold while the third is in effect
        assert gc.isenabled()
        fourth.end()
        third.end()
    assert gc.isenabled()
    with CollectorPause():  # all ended: a new burst holds it again
        assert not gc.isenabled()
    # A cancelled limit ends its pause at once.
    with CollectorPause() as pause:
        with trio.move_on_after(1):
            await pause.end_after(10)
        assert gc.isenabled()
    gc.disable()  # someone else's choice is left alone
    try:
        with CollectorPause():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()

"""Process-group stats: the pure arithmetic, and one pass over real process groups."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from leosuite.supervision import stats as stats_mod
from leosuite.supervision.stats import (
    GroupStats,
    ProcSample,
    StatsSampler,
    compute_group_stats,
    parse_proc_stat,
    read_processes,
)
from tests.fixtures import fixture_path
from tests.helpers.servers import read_until

linux_only = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")


def sample(pid: int, pgid: int, cpu: float, rss: int = 100, threads: int = 1) -> ProcSample:
    return ProcSample(
        pid=pid, start=1.0, pgid=pgid, cpu_seconds=cpu, rss_bytes=rss, threads=threads
    )


def test_first_pass_reports_zero_cpu_then_deltas() -> None:
    first = [sample(10, 10, 5.0, 1000, 2), sample(11, 10, 1.0, 500, 1), sample(20, 20, 3.0)]
    stats, prev = compute_group_stats(first, {}, known_groups=(), elapsed=0.0)
    assert stats == {10: GroupStats(0.0, 1500, 3, 2, 6.0), 20: GroupStats(0.0, 100, 1, 1, 3.0)}
    # 2 s later: pid 10 used 1 s, pid 11 exited, pid 12 was born and used 0.5 s
    second = [sample(10, 10, 6.0), sample(12, 10, 0.5), sample(20, 20, 3.0)]
    stats, prev = compute_group_stats(second, prev, known_groups={10, 20}, elapsed=2.0)
    assert stats[10].cpu_percent == 75.0
    assert stats[10].processes == 2
    assert stats[20].cpu_percent == 0.0
    assert set(prev) == {(10, 1.0), (12, 1.0), (20, 1.0)}


def test_reused_pid_and_clock_oddities() -> None:
    prev = {(10, 1.0): 50.0}
    reused = [ProcSample(pid=10, start=9.0, pgid=10, cpu_seconds=0.2, rss_bytes=1, threads=1)]
    stats, _ = compute_group_stats(reused, prev, known_groups={10}, elapsed=1.0)
    assert stats[10].cpu_percent == 20.0  # a new process, not a 49.8 s drop
    went_back = [sample(10, 10, 40.0)]
    stats, _ = compute_group_stats(went_back, prev, known_groups={10}, elapsed=1.0)
    assert stats[10].cpu_percent == 0.0  # never negative
    stats, _ = compute_group_stats(went_back, prev, known_groups={10}, elapsed=0.0)
    assert stats[10].cpu_percent == 0.0  # no division by zero


def test_parse_proc_stat_with_a_hostile_name() -> None:
    fields = ["S", "1", "4242", "4242"] + ["0"] * 7 + ["300", "100", "50", "50"]
    fields += ["20", "0", "7", "0", "123456", "999", "25"]
    raw = b"4243 (evil) (name ) " + " ".join(fields).encode() + b" 0 0\n"
    s = parse_proc_stat(4243, raw)
    clk = os.sysconf("SC_CLK_TCK")
    assert (s.pid, s.pgid, s.threads, s.start) == (4243, 4242, 7, 123456.0)
    assert s.cpu_seconds == pytest.approx(500 / clk)
    assert s.rss_bytes == 25 * os.sysconf("SC_PAGE_SIZE")


@asynccontextmanager
async def group(*argv: str) -> AsyncIterator[trio.Process]:
    proc = await trio.lowlevel.open_process(
        [sys.executable, *argv], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        yield proc
    finally:
        with trio.CancelScope(shield=True):
            os.killpg(proc.pid, 9)
            await proc.wait()
            assert proc.stdout is not None
            await proc.stdout.aclose()


@linux_only
async def test_one_pass_covers_the_whole_group() -> None:
    with trio.fail_after(10):
        async with group(str(fixture_path("forker")), "3") as a, group("-c", "print('x')") as b:
            out = await read_until(a, b"ready")
            kids = {int(line.split()[1]) for line in out.splitlines() if line.startswith(b"child")}
            samples = read_processes([a.pid, 999_999_999])
            assert {s.pid for s in samples} == {a.pid, *kids}
            assert {s.pgid for s in samples} == {a.pid}
            psutil_samples = stats_mod._read_psutil([a.pid])
            assert {s.pid for s in psutil_samples} == {a.pid, *kids}
            assert read_processes([]) == []
            del b


@linux_only
async def test_sampler_measures_cpu_rss_threads_of_a_group() -> None:
    burn = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"  # a grandchild that burns CPU
        "    print('burning', flush=True)\n"
        "    while time.process_time() < 0.3: pass\n"
        "    print('burned', flush=True)\n"
        "    time.sleep(3600)\n"
        "time.sleep(3600)\n"
    )
    sampler = StatsSampler()
    with trio.fail_after(10):
        async with group("-c", burn) as proc:
            await read_until(proc, b"burning")
            t0 = trio.current_time()
            first = sampler.sample([proc.pid], t0)
            assert first[proc.pid].cpu_percent == 0.0  # no baseline yet
            await read_until(proc, b"burned")
            t1 = trio.current_time()
            second = await trio.to_thread.run_sync(sampler.sample, [proc.pid], t1)
            # The span the sampler divides by: the thread's start, late under load, is not in it.
            elapsed = t1 - t0
            g = second[proc.pid]
            assert g.processes == 2
            assert g.threads >= 2
            assert g.rss_bytes > 1_000_000
            assert g.cpu_percent > 0
            assert g.cpu_percent <= 100.0 * (0.3 + 0.1) / elapsed + 20  # one busy process

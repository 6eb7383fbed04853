"""The kept stats samples: at most an hour of them (and at most MAX_SAMPLES) per server,
recorded by the fleet's sampler, forgotten with the server."""

from __future__ import annotations

import tracemalloc
from itertools import pairwise
from pathlib import Path

import trio
from trio.testing import MockClock

from leosuite.supervision.console_file import ConsoleFile
from leosuite.supervision.stats import GroupStats
from leosuite.supervision.stats_history import MAX_SAMPLES, SPAN, StatsHistory
from tests.helpers.servers import fixture, make_spec, running_fleet


def stats(cpu: float, memory: int = 1000, threads: int = 1) -> GroupStats:
    return GroupStats(cpu_percent=cpu, rss_bytes=memory, threads=threads, processes=1)


def test_an_hour_of_samples_at_the_interval() -> None:
    clock = MockClock()
    history = StatsHistory(600, clock.current_time)
    assert history.max_samples == 6
    for i in range(10):
        history.record("a", stats(float(i)))
        clock.jump(600)
    kept = history.samples("a")
    # The newest six: one sample per interval over the last hour, oldest first.
    assert [s.cpu for s in kept] == [4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    assert [round(b.t - a.t) for a, b in pairwise(kept)] == [600] * 5
    assert kept[-1].memory == 1000
    assert kept[-1].threads == 1
    assert history.samples("nobody") == []


def test_samples_older_than_an_hour_are_dropped() -> None:
    clock = MockClock()
    history = StatsHistory(2, clock.current_time)
    for cpu in (1.0, 2.0, 3.0):
        history.record("a", stats(cpu))
        clock.jump(2)
    # A pause (the server stopped): the kept samples age out even without new ones.
    clock.jump(SPAN - 6 + 1)
    assert [s.cpu for s in history.samples("a")] == [2.0, 3.0]
    clock.jump(SPAN)
    assert history.samples("a") == []
    history.record("a", stats(4.0))
    assert [s.cpu for s in history.samples("a")] == [4.0]


def test_a_short_interval_keeps_at_most_max_samples() -> None:
    clock = MockClock()
    history = StatsHistory(0.01, clock.current_time)
    assert history.max_samples == MAX_SAMPLES
    for i in range(MAX_SAMPLES + 50):
        history.record("a", stats(float(i)))
        clock.jump(0.01)
    kept = history.samples("a")
    assert len(kept) == MAX_SAMPLES
    assert kept[0].cpu == 50.0


def test_the_ring_wraps_grows_and_ages_out_in_order() -> None:
    clock = MockClock()
    history = StatsHistory(SPAN / 40, clock.current_time)  # 40 kept: grown 16, 32, 40
    assert history.max_samples == 40
    for i in range(100):
        history.record("a", stats(float(i), memory=(1 << 40) + i, threads=i))
        clock.jump(SPAN / 40)
        if i in (15, 16, 33, 60):
            kept = history.samples("a")
            assert [s.cpu for s in kept] == [float(c) for c in range(max(0, i - 39), i + 1)]
    kept = history.samples("a")
    assert [s.memory for s in kept] == [(1 << 40) + i for i in range(60, 100)]
    assert [s.threads for s in kept] == list(range(60, 100))
    assert all(b.t > a.t for a, b in pairwise(kept))
    # Aging out starts at the oldest slot, wherever the ring starts: the last ten stay.
    clock.jump(SPAN - 10 * SPAN / 40)
    assert [s.threads for s in history.samples("a")] == list(range(90, 100))
    history.record("a", stats(7.25, threads=1))
    assert [s.cpu for s in history.samples("a")][-2:] == [99.0, 7.25]


def test_the_figures_come_back_as_recorded() -> None:
    clock = MockClock()
    history = StatsHistory(1, clock.current_time)
    history.record(
        "a", GroupStats(cpu_percent=312.3456, rss_bytes=(1 << 63) + 5, threads=70000, processes=3)
    )
    (sample,) = history.samples("a")
    # CPU to two decimals; memory and threads whole.
    assert sample == (0.0, 312.35, (1 << 63) + 5, 70000)
    assert isinstance(sample.cpu, float)
    assert isinstance(sample.memory, int)


def test_an_hour_of_many_servers_costs_about_24_bytes_a_sample() -> None:
    clock = MockClock()
    history = StatsHistory(2, clock.current_time)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(history.max_samples):
            for server in range(20):
                cpu = (i * 7 + server) / 13
                memory = (512 << 20) + server * 4096 + i
                history.record(f"s{server}", stats(cpu, memory=memory, threads=40))
            clock.jump(2)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    count = sum(len(history.samples(f"s{server}")) for server in range(20))
    assert count == 20 * 1800
    # A record per sample (a tuple and three number objects) would be over 150 bytes.
    assert kept / count < 32, kept / count


def test_forget_and_servers_apart() -> None:
    clock = MockClock()
    history = StatsHistory(2, clock.current_time)
    history.record("a", stats(1.0))
    history.record("b", stats(2.0))
    history.forget("a")
    history.forget("never")
    assert history.samples("a") == []
    assert [s.cpu for s in history.samples("b")] == [2.0]
    assert len(history) == 1


async def test_the_fleet_records_running_servers_and_forgets_removed_ones(
    tmp_path: Path,
) -> None:
    with trio.fail_after(20):
        async with running_fleet(stats_interval=0.05) as (fleet, consoles):
            logdir = tmp_path / "logs"
            logdir.mkdir()
            console = ConsoleFile(logdir, retention_bytes=1 << 20)
            consoles.append(console)
            spec = make_spec(tmp_path, fixture("echo"), ready_pattern="ready")
            sup = await fleet.add("e", spec, console)
            assert fleet.history.samples("e") == []  # stopped: nothing sampled
            await sup.request("start")
            while len(fleet.history.samples("e")) < 3:
                await trio.sleep(0.05)
            kept = fleet.history.samples("e")
            assert all(s.memory > 0 and s.threads == 1 for s in kept)
            assert [s.t for s in kept] == sorted(s.t for s in kept)
            await fleet.remove("e")
            assert fleet.history.samples("e") == []
            assert len(fleet.history) == 0

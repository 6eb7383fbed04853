"""The stats passes: every stats interval only while someone watches the live figures,
every IDLE_FACTOR intervals otherwise (the history's spacing); the first watcher gets a
pass at once. Trio's MockClock: no real time passes."""

from __future__ import annotations

import itertools

import trio
import trio.testing

from leosuite.supervision.fleet import IDLE_FACTOR
from leosuite.supervision.spec import StateChange
from leosuite.supervision.states import State
from tests.helpers.servers import running_fleet

INTERVAL = 2.0


async def test_passes_follow_the_watchers(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(3600):
        async with running_fleet(stats_interval=INTERVAL, raise_fd_limit=False) as (fleet, _):
            passes: list[float] = []
            cgroup_passes: list[bool] = []

            async def counted(*, cgroups: bool = True) -> None:
                passes.append(trio.current_time())
                cgroup_passes.append(cgroups)

            fleet.sample_stats_once = counted  # type: ignore[method-assign]
            assert fleet.history.interval == INTERVAL * IDLE_FACTOR
            await trio.sleep(INTERVAL * IDLE_FACTOR * 3 + 0.5)
            assert len(passes) == 3  # nobody watches: one pass per history interval
            gaps = [b - a for a, b in itertools.pairwise(passes)]
            assert all(abs(gap - INTERVAL * IDLE_FACTOR) < 0.01 for gap in gaps), gaps
            assert cgroup_passes == [False] * 3  # nobody watches: no cgroup files read

            passes.clear()
            cgroup_passes.clear()
            start = trio.current_time()
            with fleet.watching_stats():
                await trio.sleep(0.001)
                assert passes == [start]  # the first watcher: a pass at once
                with fleet.watching_stats():  # a second one changes nothing
                    await trio.sleep(INTERVAL * 4 + 0.5)
                assert len(passes) == 5
                assert cgroup_passes == [True] * 5  # watched: the cgroups' own figures
                gaps = [b - a for a, b in itertools.pairwise(passes)]
                assert all(abs(gap - INTERVAL) < 0.01 for gap in gaps), gaps
            passes.clear()
            await trio.sleep(INTERVAL * IDLE_FACTOR * 2 + 0.5)
            assert 1 <= len(passes) <= 3  # back to the history's spacing
            await trio.sleep(INTERVAL * IDLE_FACTOR * 4)
            gaps = [b - a for a, b in itertools.pairwise(passes)]
            assert all(gap >= INTERVAL * IDLE_FACTOR - 0.01 for gap in gaps[1:]), gaps


async def test_a_scrape_gets_fresh_figures_and_the_idle_passes_count_from_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(3600):
        async with running_fleet(stats_interval=INTERVAL, raise_fd_limit=False) as (fleet, _):
            passes: list[tuple[float, bool]] = []

            async def counted(*, cgroups: bool = True) -> None:
                passes.append((trio.current_time(), cgroups))
                await trio.sleep(0.1)  # a pass takes time: scrapes meanwhile wait for it

            fleet.sample_stats_once = counted  # type: ignore[method-assign]
            await trio.sleep(INTERVAL * IDLE_FACTOR + 0.5)
            assert len(passes) == 1  # the idle pass
            passes.clear()
            await trio.sleep(INTERVAL * 3)
            scraped = trio.current_time()
            async with trio.open_nursery() as nursery:  # three scrapes at once: one pass
                for _ in range(3):
                    nursery.start_soon(fleet.fresh_stats)
            assert passes == [(scraped, True)]  # the cgroups' own figures, as when watched
            await fleet.fresh_stats()  # within the interval: the figures are fresh
            assert len(passes) == 1
            await trio.sleep(INTERVAL)
            await fleet.fresh_stats()  # an interval later: a new pass
            assert len(passes) == 2
            # The idle pass due a minute after the last one moved with the scrapes'.
            second = passes[-1][0]
            passes.clear()
            await trio.sleep(second + INTERVAL * IDLE_FACTOR - 0.5 - trio.current_time())
            assert passes == []
            await trio.sleep(1)
            assert [t for t, _ in passes] == [second + INTERVAL * IDLE_FACTOR]


async def test_a_server_that_begins_running_has_figures_one_interval_later(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(3600):
        async with running_fleet(stats_interval=INTERVAL, raise_fd_limit=False) as (fleet, _):
            passes: list[float] = []

            async def counted(*, cgroups: bool = True) -> None:
                passes.append(trio.current_time())

            fleet.sample_stats_once = counted  # type: ignore[method-assign]
            await trio.sleep(INTERVAL * IDLE_FACTOR + 0.5)
            assert len(passes) == 1  # the idle pass
            began = trio.current_time()
            for n, new in enumerate([State.STARTING, State.RUNNING, State.STARTING]):
                # Three servers begin within a second: one pass serves them all.
                change = StateChange(
                    server=f"s{n}", old=State.STOPPED, new=new, reason="", timestamp=0.0
                )
                fleet.changes.publish(change)
                await trio.sleep(0.4)
            await trio.sleep(INTERVAL)
            assert passes[1:] == [began + INTERVAL]
            # Then the minute's spacing again, counted from that pass.
            await trio.sleep(INTERVAL * IDLE_FACTOR)
            assert passes[2:] == [began + INTERVAL + INTERVAL * IDLE_FACTOR]
            # A server that stops asks for nothing.
            stop = StateChange(
                server="s0", old=State.RUNNING, new=State.STOPPED, reason="", timestamp=0.0
            )
            fleet.changes.publish(stop)
            await trio.sleep(INTERVAL * 2)
            assert len(passes) == 3

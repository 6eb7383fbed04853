"""The Fleet: membership, autostart, events, stats sampling and parallel shutdown."""

from __future__ import annotations

import re
import resource
from pathlib import Path

import pytest
import trio

from leosuite.errors import Conflict, NotFound
from leosuite.supervision.console_file import ConsoleFile
from leosuite.supervision.states import State
from tests.helpers.servers import fixture, make_spec, running_fleet, text, wait_gone

S = State


def new_console(tmp_path: Path, consoles: list[ConsoleFile], name: str) -> ConsoleFile:
    logdir = tmp_path / "logs" / name
    logdir.mkdir(parents=True)
    console = ConsoleFile(logdir, retention_bytes=1 << 20)
    consoles.append(console)
    return console


async def test_membership(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with running_fleet() as (fleet, consoles):
            spec = make_spec(tmp_path, fixture("echo"), stop_command="stop")
            a = await fleet.add("a", spec, new_console(tmp_path, consoles, "a"))
            await fleet.add("b", spec, new_console(tmp_path, consoles, "b"))
            with pytest.raises(Conflict, match="exists"):
                await fleet.add("a", spec, consoles[0])
            assert fleet.get("a") is a
            assert fleet.names() == ["a", "b"]
            assert [s.name for s in fleet] == ["a", "b"]
            assert "a" in fleet
            assert len(fleet) == 2
            with pytest.raises(NotFound):
                fleet.get("zzz")
            await a.request("start")
            pid = a.status().pid
            assert pid is not None
            await fleet.remove("a")  # stops it first
            assert a.state is S.STOPPED
            assert a.status().exit_code == 0  # graceful: the stop command
            await wait_gone([pid])
            assert fleet.names() == ["b"]
            with pytest.raises(NotFound):
                await fleet.remove("a")


async def test_autostart_and_events(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with running_fleet() as (fleet, consoles):
            events = fleet.subscribe()
            for name, auto in (("on1", True), ("off", False), ("on2", True)):
                spec = make_spec(tmp_path, fixture("echo"), autostart=auto, ready_pattern="ready")
                await fleet.add(name, spec, new_console(tmp_path, consoles, name))
            assert await fleet.start_autostart() == ["on1", "on2"]
            assert fleet.get("off").state is S.STOPPED
            seen: set[tuple[str, State]] = set()
            async for change in events:
                seen.add((change.server, change.new))
                if {("on1", S.RUNNING), ("on2", S.RUNNING)} <= seen:
                    break
            assert not any(server == "off" for server, _ in seen)


async def test_shutdown_stops_all_servers_in_parallel(tmp_path: Path) -> None:
    n = 5
    timeout = 0.5
    with trio.fail_after(20):
        async with running_fleet() as (fleet, consoles):
            # ignores SIGTERM: each stop takes one full stop_timeout, then SIGKILL
            spec = make_spec(
                tmp_path, fixture("unkillable"), ready_pattern="ready", stop_timeout=timeout
            )
            sups = [
                await fleet.add(f"s{i}", spec, new_console(tmp_path, consoles, f"s{i}"))
                for i in range(n)
            ]
            async with trio.open_nursery() as nursery:
                for sup in sups:
                    nursery.start_soon(sup.request, "start")
            for sup in sups:
                await sup.wait_state(S.RUNNING)
            pids = [sup.status().pid for sup in sups]
            t0 = trio.current_time()
            await fleet.shutdown()
            elapsed = trio.current_time() - t0
            assert timeout <= elapsed < timeout * n * 0.6  # ~ one stop timeout, not n
            assert all(sup.state is S.STOPPED for sup in sups)
            await wait_gone([p for p in pids if p is not None])
            with pytest.raises(Conflict, match="shutting down"):
                await sups[0].request("start")


async def test_stats_for_a_group_with_grandchildren(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with running_fleet(stats_interval=3600) as (fleet, consoles):
            console = new_console(tmp_path, consoles, "f")
            spec = make_spec(tmp_path, fixture("forker"), "2", ready_pattern="ready")
            sup = await fleet.add("f", spec, console)
            idle = await fleet.add("idle", spec, new_console(tmp_path, consoles, "idle"))
            await sup.request("start")
            await sup.wait_state(S.RUNNING)
            assert len(re.findall(r"child \d+", text(console))) == 2
            assert sup.status().memory is None  # not sampled yet
            await fleet.sample_stats_once()
            await fleet.sample_stats_once()
            status = sup.status()
            assert status.cpu is not None
            assert status.cpu >= 0
            assert status.memory is not None
            assert status.memory > 3 * 1_000_000  # three Python processes
            assert status.threads is not None
            assert status.threads >= 3
            assert idle.status().memory is None  # not running: nothing sampled
            await sup.request("stop")
            assert sup.status().memory is None


async def test_stats_loop_samples_every_tick(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with running_fleet(stats_interval=0.05) as (fleet, consoles):
            spec = make_spec(tmp_path, fixture("echo"), ready_pattern="ready")
            sup = await fleet.add("e", spec, new_console(tmp_path, consoles, "e"))
            await sup.request("start")
            while sup.status().memory is None:
                await trio.sleep(0.05)  # the sampler's own tick
            assert sup.status().threads == 1


async def test_nofile_soft_limit_is_raised(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        lowered = min(soft, 256)
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
        with trio.fail_after(10):
            async with running_fleet() as (fleet, _consoles):
                now_soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
                assert fleet.nofile_limit == now_soft
                if hard != resource.RLIM_INFINITY:
                    assert now_soft == hard
                else:
                    assert now_soft > lowered
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

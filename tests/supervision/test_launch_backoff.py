"""A start that cannot launch its program is a crash like any other: the restart policy
backs it off, retries, and gives up after ``max_restarts`` quick failures."""

from __future__ import annotations

from pathlib import Path

import trio

from leosuite.supervision.spec import LaunchSpec
from leosuite.supervision.states import Backoff, State
from leosuite.supervision.supervisor import Supervisor
from tests.helpers.servers import text, watched_console


async def test_a_launch_failure_backs_off_then_gives_up(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-binary")
    spec = LaunchSpec(argv=[missing], cwd=str(tmp_path), restart="on-failure", max_restarts=2)
    seen: list[tuple[State, str]] = []
    with trio.fail_after(20):
        async with watched_console(tmp_path / "log") as console, trio.open_nursery() as nursery:
            sup = Supervisor("srv", spec, console, backoff=Backoff(initial=0.05))
            await nursery.start(sup.run)
            changes = sup.subscribe()
            assert await sup.request("start") is State.BACKOFF
            status = sup.status()
            assert status.last_error is not None
            assert status.last_error.startswith("command not found:")
            assert status.restart_in is not None
            async for change in changes:
                seen.append((change.new, change.reason))
                if sup.state is State.CRASHED and "gave up" in text(console):
                    break
            assert sup.status().restarts == 2
            # After the start and after the first retry; the second retry gives up.
            assert [s for s, _ in seen].count(State.BACKOFF) == 2
            assert "restart in 0.05 s (attempt 1 of 2)" in text(console)
            assert "not restarting: gave up after 2 quick restarts" in text(console)
            assert text(console).count("failed to start: command not found") == 3
            sup.close()


async def test_a_launch_failure_under_never_stays_crashed(tmp_path: Path) -> None:
    spec = LaunchSpec(argv=[str(tmp_path / "gone")], cwd=str(tmp_path), restart="never")
    with trio.fail_after(10):
        async with watched_console(tmp_path / "log") as console, trio.open_nursery() as nursery:
            sup = Supervisor("srv", spec, console, backoff=Backoff(initial=0.05))
            await nursery.start(sup.run)
            assert await sup.request("start") is State.CRASHED
            assert sup.status().restart_in is None
            assert "not restarting: restart policy is never" in text(console)
            sup.close()

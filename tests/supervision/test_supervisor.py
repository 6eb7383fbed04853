"""One Supervisor driving real child processes (small Python scripts)."""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from leosuite.errors import Conflict, InvalidInput, TooLarge
from leosuite.supervision.console_file import ConsoleFile
from leosuite.supervision.spec import LaunchSpec, StateChange
from leosuite.supervision.states import Backoff, State
from leosuite.supervision.supervisor import Supervisor
from tests.helpers.servers import all_gone, fixture, make_spec, text, wait_gone, watched_console

PY = sys.executable
S = State


def script(tmp_path: Path, name: str, source: str) -> str:
    path = tmp_path / name
    path.write_text(source)
    return str(path)


@asynccontextmanager
async def supervised(
    tmp_path: Path, spec: LaunchSpec, **kw: Any
) -> AsyncIterator[tuple[Supervisor, ConsoleFile]]:
    async with (
        watched_console(tmp_path / "log") as console,
        trio.open_nursery() as nursery,
    ):
        sup = Supervisor("srv", spec, console, **kw)
        await nursery.start(sup.run)
        try:
            yield sup, console
        finally:
            with trio.CancelScope(shield=True), trio.fail_after(10):
                await sup.shutdown()
            sup.close()


async def wait_output(console: ConsoleFile, needle: str) -> str:
    """Wait until ``needle`` is in the console; return the whole console text."""
    while needle not in (current := text(console)):
        await console.wait_beyond(console.end_index)
    return current


async def collect(channel: trio.MemoryReceiveChannel[StateChange], into: list[State]) -> None:
    async for change in channel:
        into.append(change.new)


# ---------------------------------------------------------------- start and ready


async def test_ready_pattern_split_across_reads(tmp_path: Path) -> None:
    src = (
        "import sys\n"
        "print('loading', flush=True)\n"
        "sys.stdin.readline()\n"  # wait for the test to say go
        "sys.stdout.write('Do'); sys.stdout.flush()\n"
        "sys.stdin.readline()\n"  # the rest only once the test has looked
        "sys.stdout.write('ne (3.2s)!\\n'); sys.stdout.flush()\n"
        "sys.stdin.readline()\n"
    )
    spec = make_spec(tmp_path, script(tmp_path, "slow.py", src), ready_pattern=r"Done \(")
    with trio.fail_after(10):
        async with supervised(tmp_path, spec) as (sup, console):
            assert await sup.request("start") is S.STARTING
            await wait_output(console, "loading")
            assert sup.state is S.STARTING
            await sup.send_command("go")
            await wait_output(console, "Do")
            # The ready search woken by the same bytes has read them: the split is real.
            await trio.testing.wait_all_tasks_blocked()
            assert sup.state is S.STARTING
            await sup.send_command("on")
            assert await sup.wait_state(S.RUNNING) is S.RUNNING
            status = sup.status()
            assert status.pid is not None
            assert status.started_at is not None
            assert status.uptime is not None
            assert status.uptime >= 0
            out = text(console)
            assert f"[leosuite] starting: {PY}" in out
            assert f"[leosuite] started pid {status.pid}\n" in out


async def test_no_ready_pattern_runs_at_once(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, fixture("echo"), stop_command="stop")
    with trio.fail_after(10):
        async with supervised(tmp_path, spec) as (sup, console):
            assert await sup.request("start") is S.RUNNING
            await sup.send_command("say hello")
            await wait_output(console, "echo: say hello")


# ---------------------------------------------------------------- stopping


async def test_graceful_stop_via_stop_command(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, fixture("echo"), stop_command="stop", ready_pattern="ready")
    with trio.fail_after(10):
        async with supervised(tmp_path, spec) as (sup, console):
            states: list[State] = []
            async with trio.open_nursery() as n:
                n.start_soon(collect, sup.subscribe(), states)
                await sup.request("start")
                await sup.wait_state(S.RUNNING)
                assert await sup.request("stop") is S.STOPPED
                sup.close()
            assert states == [S.STARTING, S.RUNNING, S.STOPPING, S.STOPPED]
            status = sup.status()
            assert status.exit_code == 0
            assert status.pid is None
            assert status.last_error is None
            assert status.stop_requested == "stop requested"
            out = text(console)
            assert "[leosuite] stopping (stop requested)\n" in out
            assert out.endswith("stopping\n[leosuite] exited with code 0\n")
            assert "SIGTERM" not in out


async def test_ignoring_sigterm_escalates_to_sigkill(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, fixture("unkillable"), ready_pattern="ready", stop_timeout=0.4)
    with trio.fail_after(10):
        async with supervised(tmp_path, spec) as (sup, console):
            await sup.request("start")
            await sup.wait_state(S.RUNNING)
            t0 = trio.current_time()
            assert await sup.request("stop") is S.STOPPED
            elapsed = trio.current_time() - t0
            # No stop command: TERM, 0.4 s, KILL (and the exit's reaping, slower under load).
            assert 0.4 <= elapsed < 5.0
            assert sup.status().exit_code == -signal.SIGKILL
            out = text(console)
            assert "sending SIGTERM to the process group" in out
            assert "stop timeout: sending SIGKILL" in out
            assert out.endswith("[leosuite] killed by SIGKILL\n")


async def test_forked_grandchildren_die_with_the_group(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, fixture("forker"), "3", ready_pattern="ready")
    with trio.fail_after(10):
        async with supervised(tmp_path, spec) as (sup, console):
            await sup.request("start")
            await sup.wait_state(S.RUNNING)
            leader = sup.status().pid
            assert leader is not None
            pids = [int(p) for p in re.findall(r"child (\d+)", text(console))]
            assert len(pids) == 3
            assert not all_gone(pids)
            await sup.request("stop")
            await wait_gone([leader, *pids])


async def test_grandchildren_die_when_the_leader_crashes(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, fixture("forker"), "2", ready_pattern="ready")
    with trio.fail_after(10):
        async with supervised(tmp_path, spec) as (sup, console):
            await sup.request("start")
            await sup.wait_state(S.RUNNING)
            leader = sup.status().pid
            assert leader is not None
            pids = [int(p) for p in re.findall(r"child (\d+)", text(console))]
            os.kill(leader, signal.SIGKILL)  # from outside: nobody asked
            assert await sup.wait_state(S.CRASHED) is S.CRASHED
            assert sup.status().last_error == "killed by SIGKILL"
            await wait_gone(pids)


async def test_kill_sends_sigterm_and_is_a_stop(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, fixture("echo"), ready_pattern="ready", restart="always")
    with trio.fail_after(10):
        async with supervised(tmp_path, spec) as (sup, console):
            await sup.request("start")
            await sup.wait_state(S.RUNNING)
            assert await sup.request("kill") is S.STOPPED
            assert sup.status().exit_code == -signal.SIGTERM
            assert sup.status().stop_requested == "kill requested"
            assert "killed by SIGTERM" in text(console)


async def test_force_kill_preempts_a_graceful_stop(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path, fixture("unkillable"), ready_pattern="ready", stop_command="stop", stop_timeout=60
    )
    with trio.fail_after(30):
        async with supervised(tmp_path, spec) as (sup, _console):
            await sup.request("start")
            await sup.wait_state(S.RUNNING)
            results: list[State] = []

            async def stop() -> None:
                results.append(await sup.request("stop"))

            t0 = trio.current_time()
            async with trio.open_nursery() as n:
                n.start_soon(stop)
                await sup.wait_state(S.STOPPING)
                with pytest.raises(Conflict, match="busy: stop"):
                    await sup.request("stop")
                assert await sup.request("force_kill") is S.STOPPED
            assert trio.current_time() - t0 < 20  # well before the 60 s stop timeout
            assert results == [S.STOPPED]
            assert sup.status().exit_code == -signal.SIGKILL
            assert sup.status().stop_requested == "force kill"


async def test_force_kill_is_always_allowed(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, fixture("echo"))
    with trio.fail_after(10):
        async with supervised(tmp_path, spec) as (sup, _console):
            assert await sup.request("force_kill") is S.STOPPED  # nothing to kill: fine
            await sup.request("start")
            assert await sup.request("force_kill") is S.STOPPED


async def test_typed_stop_command_is_a_stop_not_a_crash(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path, fixture("echo"), stop_command="stop", ready_pattern="ready", restart="always"
    )
    with trio.fail_after(10):
        async with supervised(tmp_path, spec) as (sup, _console):
            states: list[State] = []
            async with trio.open_nursery() as n:
                n.start_soon(collect, sup.subscribe(), states)
                await sup.request("start")
                await sup.wait_state(S.RUNNING)
                await sup.send_command("stop")
                await sup.wait_state(S.STOPPED)
                sup.close()
            assert states == [S.STARTING, S.RUNNING, S.STOPPING, S.STOPPED]
            assert sup.status().stop_requested == "stop command typed"
            assert sup.status().exit_code == 0


async def test_typed_stop_escalates_when_ignored(tmp_path: Path) -> None:
    # unkillable never reads stdin nor honours SIGTERM: wait, TERM, wait, KILL
    spec = make_spec(
        tmp_path,
        fixture("unkillable"),
        stop_command="stop",
        ready_pattern="ready",
        stop_timeout=0.3,
    )
    with trio.fail_after(10):
        async with supervised(tmp_path, spec) as (sup, _console):
            await sup.request("start")
            await sup.wait_state(S.RUNNING)
            await sup.send_command("stop")
            assert sup.state is S.STOPPING
            with pytest.raises(Conflict, match="busy"):
                await sup.request("stop")
            await sup.wait_state(S.STOPPED)
            assert sup.status().exit_code == -signal.SIGKILL


# ---------------------------------------------------------------- conflicts and races


async def test_start_while_running_and_stop_while_stopped(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, fixture("echo"), stop_command="stop")
    with trio.fail_after(10):
        async with supervised(tmp_path, spec) as (sup, _console):
            with pytest.raises(Conflict, match="not running"):
                await sup.request("stop")
            with pytest.raises(Conflict, match="not running"):
                await sup.request("kill")
            with pytest.raises(Conflict, match="not running"):
                await sup.send_command("hello")
            await sup.request("start")
            with pytest.raises(Conflict, match="already running"):
                await sup.request("start")
            with pytest.raises(InvalidInput):
                await sup.request("explode")  # type: ignore[arg-type]


async def test_start_and_stop_racing(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, fixture("echo"), stop_command="stop", ready_pattern="ready")
    with trio.fail_after(20):
        async with supervised(tmp_path, spec) as (sup, _console):
            for _ in range(5):
                outcomes: list[str] = []

                async def act(action: Any, outcomes: list[str] = outcomes) -> None:
                    try:
                        await sup.request(action)
                        outcomes.append(f"{action}:ok")
                    except Conflict as exc:
                        outcomes.append(f"{action}:{exc}")

                async with trio.open_nursery() as n:
                    for action in ("start", "stop", "restart", "start", "stop"):
                        n.start_soon(act, action)
                assert len(outcomes) == 5
                assert any(o.endswith(":ok") for o in outcomes)
                # never a broken state: a process exists exactly when the state says so
                assert sup.busy is None
                assert (sup.status().pid is not None) == (
                    sup.state in {S.STARTING, S.RUNNING, S.STOPPING}
                )
                assert sup.state in {S.STOPPED, S.STARTING, S.RUNNING}
                if sup.state is not S.STOPPED:
                    await sup.request("stop")
                assert sup.state is S.STOPPED


# ---------------------------------------------------------------- console input


async def test_bad_commands_are_rejected(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, fixture("echo"), stop_command="stop")
    with trio.fail_after(10):
        async with supervised(tmp_path, spec, command_max_bytes=4096) as (sup, console):
            await sup.request("start")
            for bad in ("say\nstop", "say\rhi", "a\0b", "\n", "\ud800"):
                with pytest.raises(InvalidInput):
                    await sup.send_command(bad)
            for big in ("x" * 4097, "y" * 1_000_000):
                with pytest.raises(TooLarge):
                    await sup.send_command(big)
            await sup.send_command("z" * 4096)
            await sup.send_command("")
            await wait_output(console, "echo: " + "z" * 4096 + "\necho: \n")
            assert sup.state is S.RUNNING


async def test_closed_stdin_is_a_conflict_not_a_hang(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, fixture("closes_stdin"), ready_pattern="stdin closed")
    with trio.fail_after(10):
        async with supervised(tmp_path, spec) as (sup, _console):
            await sup.request("start")
            await sup.wait_state(S.RUNNING)
            for _ in range(2):
                with pytest.raises(Conflict, match="closed its console input"):
                    await sup.send_command("hello")
            assert sup.state is S.RUNNING


async def test_stdin_not_read_is_a_conflict_after_the_deadline(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, fixture("unkillable"), ready_pattern="ready")
    with trio.fail_after(10):
        async with supervised(tmp_path, spec, command_deadline=0.2) as (sup, _console):
            await sup.request("start")
            await sup.wait_state(S.RUNNING)

            async def flood() -> None:
                for _ in range(1000):  # fills the stdin pipe, then blocks
                    await sup.send_command("x" * 4000)

            with pytest.raises(Conflict, match="not reading"):
                await flood()


# ---------------------------------------------------------------- crashes and restarts


async def test_crash_loop_backs_off_then_stays_crashed(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, fixture("crash"), "3", restart="on-failure", max_restarts=2)
    backoff = Backoff(initial=0.05, factor=2, cap=0.1)
    with trio.fail_after(10):
        async with supervised(tmp_path, spec, backoff=backoff) as (sup, console):
            channel = sup.subscribe()
            await sup.request("start")
            changes: list[StateChange] = []
            async for change in channel:
                changes.append(change)
                if sum(c.new is S.CRASHED for c in changes) == 3:
                    break
            assert sup.state is S.CRASHED  # no BACKOFF after the third crash
            once = [S.STARTING, S.RUNNING, S.CRASHED]
            assert [c.new for c in changes] == [*once, S.BACKOFF, *once, S.BACKOFF, *once]
            assert changes[3].reason == "restart in 0.05 s (attempt 1 of 2)"
            assert changes[7].reason == "restart in 0.1 s (attempt 2 of 2)"
            assert all(c.server == "srv" and c.timestamp > 0 for c in changes)
            status = sup.status()
            assert status.restarts == 2
            assert status.exit_code == 3
            assert status.last_error == "exited with code 3"
            out = await wait_output(console, "not restarting")
            assert out.count("exited with code 3") == 3
            assert "not restarting: gave up after 2 quick restarts" in out
            # a manual start gives it a fresh set of restarts
            await sup.request("start")
            await sup.wait_state(S.BACKOFF)


async def test_stop_and_start_during_backoff(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, fixture("crash"), restart="always", max_restarts=5)
    with trio.fail_after(10):
        async with supervised(tmp_path, spec, backoff=Backoff(initial=30)) as (sup, _console):
            await sup.request("start")
            await sup.wait_state(S.BACKOFF)
            assert sup.status().restart_in is not None
            assert await sup.request("stop") is S.STOPPED  # cancels the 30 s timer
            assert sup.status().restart_in is None
            await sup.request("start")
            await sup.wait_state(S.BACKOFF)
            t0 = trio.current_time()
            assert await sup.request("start") in {S.RUNNING, S.CRASHED, S.BACKOFF}
            assert trio.current_time() - t0 < 5  # started at once, not after 30 s
            assert sup.status().restarts == 0  # manual starts are not restarts


async def test_missing_binary_is_crashed_with_reason(tmp_path: Path) -> None:
    spec = LaunchSpec(argv=[str(tmp_path / "no-such-binary")], cwd=str(tmp_path), restart="never")
    with trio.fail_after(10):
        async with supervised(tmp_path, spec) as (sup, console):
            assert await sup.request("start") is S.CRASHED
            status = sup.status()
            assert status.last_error is not None
            assert status.last_error.startswith("command not found:")
            assert status.pid is None
            assert "[leosuite] failed to start: command not found:" in text(console)


async def test_missing_working_dir_is_crashed_with_reason(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, fixture("echo"))
    spec = LaunchSpec(argv=spec.argv, cwd=str(tmp_path / "gone"), restart="never")
    with trio.fail_after(10):
        async with supervised(tmp_path, spec) as (sup, console):
            assert await sup.request("start") is S.CRASHED
            assert sup.status().last_error == f"working directory does not exist: {tmp_path}/gone"
            assert "failed to start: working directory" in text(console)


async def test_update_spec_applies_on_next_start(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, fixture("echo"), stop_command="stop", ready_pattern="ready")
    with trio.fail_after(10):
        async with supervised(tmp_path, spec) as (sup, console):
            await sup.request("start")
            await sup.wait_state(S.RUNNING)
            sup.update_spec(make_spec(tmp_path, fixture("crash"), "7"))
            await sup.send_command("still echo")
            await wait_output(console, "echo: still echo")
            assert await sup.request("restart") is not S.STOPPED
            await sup.wait_state(S.CRASHED)
            assert sup.status().exit_code == 7
            with pytest.raises(InvalidInput):
                sup.update_spec(make_spec(tmp_path, "x", restart="sometimes"))


async def test_closing_the_supervisor_kills_the_group(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, fixture("forker"), "2", ready_pattern="ready", stop_timeout=0.3)
    with trio.fail_after(10):
        async with watched_console(tmp_path / "log") as console, trio.open_nursery() as nursery:
            sup = Supervisor("srv", spec, console)
            await nursery.start(sup.run)
            await sup.request("start")
            await sup.wait_state(S.RUNNING)
            leader = sup.status().pid
            assert leader is not None
            pids = [leader, *(int(p) for p in re.findall(r"child (\d+)", text(console)))]
            nursery.cancel_scope.cancel()
        await wait_gone(pids)
        assert sup.state is S.STOPPED
        with pytest.raises(Conflict, match="not running"):
            await sup.request("start")


async def test_slow_subscribers_drop_events_and_closed_ones_are_dropped(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, fixture("echo"), stop_command="stop")
    with trio.fail_after(10):
        async with supervised(tmp_path, spec) as (sup, _console):
            slow = sup.subscribe(max_buffer=1)
            gone = sup.subscribe()
            await gone.aclose()
            seen: list[StateChange] = []
            sup.changes.add_listener(seen.append)
            await sup.request("start")  # STARTING, RUNNING
            await sup.request("stop")  # STOPPING, STOPPED
            assert [c.new for c in seen] == [S.STARTING, S.RUNNING, S.STOPPING, S.STOPPED]
            assert [c.old for c in seen] == [S.STOPPED, S.STARTING, S.RUNNING, S.STOPPING]
            assert seen[-1].reason == "exited with code 0 (stop requested)"
            first = slow.receive_nowait()
            assert (first.old, first.new) == (S.STOPPED, S.STARTING)
            with pytest.raises(trio.WouldBlock):
                slow.receive_nowait()
            assert sup.changes.dropped == 3


async def test_flood_is_captured_whole_and_status_stays_responsive(tmp_path: Path) -> None:
    size = 64 * 1024 * 1024
    spec = make_spec(tmp_path, fixture("no_newline"), str(size), ready_pattern="never matches")
    with trio.fail_after(30):
        async with supervised(tmp_path, spec) as (sup, console):
            await sup.request("start")
            worst = 0.0
            await wait_output(console, "started pid")
            head = console.read(0, 4096).data
            start = head.index(b"\n", head.index(b"started pid")) + 1
            while console.end_index < start + size:
                t0 = trio.current_time()
                assert sup.status().state is S.STARTING  # the pattern search runs all along
                await trio.lowlevel.checkpoint()  # the capture loop yields between reads
                worst = max(worst, trio.current_time() - t0)
            assert worst < 0.5
            assert console.read(start, 10).data == b"x" * 10
            assert console.read(start + size - 10, 100).data == b"x" * 10


async def test_shutdown_while_the_tree_recovers_from_a_fault_returns(tmp_path: Path) -> None:
    """A shutdown asked for while a task's error is unwinding the server's tree waits for
    the recovery (with checkpoints) instead of spinning."""
    spec = make_spec(tmp_path, fixture("echo"), stop_command="stop", stop_timeout=2)

    async def boom() -> None:
        raise RuntimeError("injected fault")

    with trio.fail_after(10):
        async with supervised(tmp_path, spec) as (sup, _console):
            await sup.request("start")
            pid = sup.status().pid
            assert pid is not None
            sup._require_nursery().start_soon(boom)
            while sup._nursery is not None and not sup._nursery.cancel_scope.cancel_called:
                await trio.sleep(0)
            await sup.shutdown()  # the tree is unwinding: its process is being stopped
            assert sup.state in (S.CRASHED, S.STOPPED)
            await wait_gone([pid])

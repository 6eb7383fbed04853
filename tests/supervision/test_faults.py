"""Faults injected into the supervision of real processes: the cleanup of one child
always waits for it, and an internal error ends only the server it happened in."""

from __future__ import annotations

import errno
import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
import trio

from leosuite.errors import ProcessError
from leosuite.supervision.child import Child, run_child
from leosuite.supervision.console_file import ConsoleFile
from leosuite.supervision.fleet import Fleet
from leosuite.supervision.states import FAULT_STATE, STARTABLE_STATES, STOPPED_STATES, State
from tests.helpers.servers import fixture, make_spec, running_fleet, text, watched_console

S = State


async def wait_output(console: ConsoleFile, needle: str) -> None:
    while needle not in text(console):
        await console.wait_beyond(console.end_index)


def refuse_signals(monkeypatch: pytest.MonkeyPatch, *, sig: int | None, times: int) -> list[int]:
    """Make ``os.killpg`` fail with EPERM for ``sig`` (None: every signal), ``times``
    times; returns the list of refused process groups."""
    real_killpg = os.killpg
    refused: list[int] = []

    def killpg(pgid: int, signum: int) -> None:
        if (sig is None or signum == sig) and len(refused) < times:
            refused.append(pgid)
            raise PermissionError(errno.EPERM, "Operation not permitted")
        real_killpg(pgid, signum)

    monkeypatch.setattr(os, "killpg", killpg)
    return refused


def ignore_ready() -> None:
    pass


# ---------------------------------------------------------------- run_child cleanup


async def test_on_spawn_that_raises_leaves_no_child(tmp_path: Path) -> None:
    spawned: list[int] = []

    def on_spawn(child: Child) -> None:
        spawned.append(child.pid)
        raise RuntimeError("injected fault in on_spawn")

    spec = make_spec(tmp_path, fixture("echo"))
    with trio.fail_after(10):
        async with watched_console(tmp_path / "log") as console:
            with pytest.raises(RuntimeError, match="injected fault"):
                await run_child(spec, console, on_spawn=on_spawn, on_ready=ignore_ready)
    [pid] = spawned
    assert not psutil.pid_exists(pid)  # ended and reaped: no process, no zombie


async def test_a_refused_stop_signal_in_cleanup_still_kills_and_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = refuse_signals(monkeypatch, sig=signal.SIGTERM, times=1)
    spec = make_spec(tmp_path, fixture("echo"))
    with trio.fail_after(10):
        async with watched_console(tmp_path / "log") as console:
            async with trio.open_nursery() as nursery:
                child: Child = await nursery.start(
                    partial(
                        run_child, spec, console, on_spawn=lambda c: None, on_ready=ignore_ready
                    )
                )
                await wait_output(console, "ready")
                nursery.cancel_scope.cancel()
            assert refused == [child.pid]
            assert child.returncode == -signal.SIGKILL
            assert not psutil.pid_exists(child.pid)
            expected = f"cannot signal process group {child.pid}: the daemon needs CAP_KILL"
            assert expected in text(console)


async def test_cleanup_waits_for_a_child_it_cannot_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "late.py"
    source.write_text("import time\nprint('ready', flush=True)\ntime.sleep(1.2)\n")
    refused = refuse_signals(monkeypatch, sig=None, times=10)
    spec = make_spec(tmp_path, str(source), stop_timeout=1.0)
    with trio.fail_after(10):
        async with watched_console(tmp_path / "log") as console, trio.open_nursery() as nursery:
            child: Child = await nursery.start(
                partial(run_child, spec, console, on_spawn=lambda c: None, on_ready=ignore_ready)
            )
            await wait_output(console, "ready")
            nursery.cancel_scope.cancel()
        assert refused[:2] == [child.pid, child.pid]  # the stop signal, then SIGKILL
        assert child.returncode == 0  # it exited on its own, and was waited for
        assert not psutil.pid_exists(child.pid)


# ---------------------------------------------------------------- one server's fault


def test_the_fault_state_is_at_rest_and_startable() -> None:
    assert FAULT_STATE in STOPPED_STATES
    assert FAULT_STATE in STARTABLE_STATES


@asynccontextmanager
async def two_echo_servers(tmp_path: Path) -> AsyncIterator[tuple[Fleet, list[ConsoleFile]]]:
    """A fleet with servers ``a`` and ``b`` (echo, ready pattern), ``b`` running."""
    async with running_fleet(raise_fd_limit=False) as (fleet, consoles):
        spec = make_spec(tmp_path, fixture("echo"), stop_command="stop", ready_pattern="ready")
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            consoles.append(ConsoleFile(tmp_path / name, retention_bytes=1 << 20))
            await fleet.add(name, spec, consoles[-1])
        await fleet.get("b").request("start")
        await fleet.get("b").wait_state(S.RUNNING)
        yield fleet, consoles


async def assert_still_serving(
    tmp_path: Path, fleet: Fleet, consoles: list[ConsoleFile], word: str
) -> None:
    """``b`` still runs and answers; the fleet still adds and starts a server."""
    b = fleet.get("b")
    assert b.state is S.RUNNING
    await b.send_command(word)
    await wait_output(consoles[1], f"echo: {word}")
    (tmp_path / "c").mkdir()
    consoles.append(ConsoleFile(tmp_path / "c", retention_bytes=1 << 20))
    c = await fleet.add("c", b.spec, consoles[-1])
    await c.request("start")
    await c.wait_state(S.RUNNING)


async def test_an_exception_in_one_server_stops_only_that_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="leosuite.supervision")

    def fault() -> None:
        raise RuntimeError("injected fault")

    with trio.fail_after(15):
        async with two_echo_servers(tmp_path) as (fleet, consoles):
            a = fleet.get("a")
            events = fleet.subscribe()
            monkeypatch.setattr(a, "_on_ready", fault)  # raises in a's capture task
            await a.request("start")
            pid = a.status().pid
            assert pid is not None
            await a.wait_state(S.CRASHED)
            status = a.status()
            assert status.last_error == "internal error (RuntimeError): the server was stopped"
            assert status.pid is None
            assert status.stop_requested is None
            assert not psutil.pid_exists(pid)
            [logged] = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert logged.levelno == logging.ERROR
            assert logged.getMessage() == f"server a: {status.last_error}"
            assert logged.exc_info is not None  # the traceback, once
            assert "injected fault" in caplog.text
            while (change := events.receive_nowait()).new is not S.CRASHED:
                pass
            assert change.server == "a"
            assert change.reason == status.last_error
            assert "the server was stopped" in text(consoles[0])

            await assert_still_serving(tmp_path, fleet, consoles, "hello")

            monkeypatch.undo()  # its owner starts it again
            await a.request("start")
            await a.wait_state(S.RUNNING)
            assert a.status().last_error is None


async def test_a_stop_that_cannot_signal_stops_only_that_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(15):
        async with two_echo_servers(tmp_path) as (fleet, consoles):
            a = fleet.get("a")
            await a.request("start")
            await a.wait_state(S.RUNNING)
            pid = a.status().pid
            assert pid is not None
            refused = refuse_signals(monkeypatch, sig=signal.SIGTERM, times=1)
            with pytest.raises(ProcessError, match="cannot signal process group"):
                await a.request("kill")
            assert refused == [pid]
            await a.wait_state(S.CRASHED)  # not left STOPPING with nobody escalating
            last_error = a.status().last_error
            assert last_error is not None
            assert last_error.startswith(f"internal error (cannot signal process group {pid}")
            assert not psutil.pid_exists(pid)

            await assert_still_serving(tmp_path, fleet, consoles, "still here")
            await a.request("start")
            await a.wait_state(S.RUNNING)

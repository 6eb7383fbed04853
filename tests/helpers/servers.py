"""Game servers under test: settings of servers that run the tests/fixtures programs,
launch specs for a bare Supervisor, and waiting on their processes."""

from __future__ import annotations

import shlex
import sys
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import trio

from leosuite.supervision.console_file import ConsoleFile
from leosuite.supervision.console_watch import ConsoleWatch
from leosuite.supervision.fleet import Fleet
from leosuite.supervision.spec import LaunchSpec
from tests.fixtures import fixture_argv, fixture_path

FAST_DEMO = {"ready_delay": 0.1, "player_interval": 0, "stop_timeout": 1}


def command_settings(name: str, *args: object, **extra: Any) -> dict[str, Any]:
    """Settings of a ``command`` server running a tests/fixtures program."""
    return {"command": shlex.join(fixture_argv(name, *args)), "stop_timeout": 1, **extra}


def fixture(name: str) -> str:
    """The path of a tests/fixtures program, as a launch argument."""
    return str(fixture_path(name))


def make_spec(tmp_path: Path, *argv: str, **kw: Any) -> LaunchSpec:
    """A spec running ``python *argv`` in ``tmp_path``: half a second to stop, no restarts
    unless ``kw`` says otherwise."""
    kw.setdefault("stop_timeout", 0.5)
    kw.setdefault("restart", "never")
    return LaunchSpec(argv=[sys.executable, *argv], cwd=str(tmp_path), **kw)


def text(console: ConsoleFile) -> str:
    """The whole console so far, decoded."""
    return console.read(0, 1 << 24).data.decode("utf-8", "replace")


@asynccontextmanager
async def watched_console(directory: Path, **kw: Any) -> AsyncIterator[ConsoleFile]:
    """A console in ``directory`` (made if missing) whose waiters a running
    :class:`ConsoleWatch` wakes, as the fleet's does; closed on the way out."""
    directory.mkdir(parents=True, exist_ok=True)
    kw.setdefault("retention_bytes", 64 << 20)
    console = ConsoleFile(directory, **kw)
    try:
        async with trio.open_nursery() as nursery:
            watch = ConsoleWatch()
            await nursery.start(watch.run)
            watch.add(console)
            try:
                yield console
            finally:
                watch.remove(console)
                nursery.cancel_scope.cancel()
    finally:
        console.close()


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def all_gone(pids: Iterable[int]) -> bool:
    return not any(pid_alive(pid) for pid in pids)


async def wait_gone(pids: Iterable[int]) -> None:
    """Poll until every process has exited (callers bound it with fail_after): a
    SIGKILL is delivered at once but the exit takes a moment."""
    pids = list(pids)
    while not all_gone(pids):
        await trio.sleep(0.02)


async def read_until(proc: trio.Process, needle: bytes) -> bytes:
    """A child's stdout up to (at least) ``needle``; fails if it ends first."""
    assert proc.stdout is not None
    data = b""
    while needle not in data:
        chunk = await proc.stdout.receive_some(65536)
        assert chunk, data
        data += chunk
    return data


@asynccontextmanager
async def running_fleet(**kw: object) -> AsyncIterator[tuple[Fleet, list[ConsoleFile]]]:
    """A running :class:`Fleet` (``kw`` to its constructor) and a list of the consoles to
    close after it; every server is shut down on the way out."""
    consoles: list[ConsoleFile] = []
    try:
        async with trio.open_nursery() as nursery:
            fleet = await nursery.start(Fleet(**kw).run)  # type: ignore[arg-type]
            try:
                yield fleet, consoles
            finally:
                with trio.CancelScope(shield=True), trio.fail_after(10):
                    await fleet.shutdown()
                nursery.cancel_scope.cancel()
    finally:
        for console in consoles:
            console.close()

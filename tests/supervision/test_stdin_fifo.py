"""A server's console input through a named pipe: each command through a fresh open
reaches the child in order and the child never sees end-of-file; a restarted daemon
reaches it again by path; a full pipe or a server gone is a Conflict at once, never a
blocked daemon; a planted symbolic link is never followed. Real processes throughout."""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trio
import trio.testing

from leosuite.errors import Conflict
from leosuite.supervision.handle import ProcessHandle
from leosuite.supervision.stdin_fifo import PIPE_BUF, StdinFifo
from tests.fixtures import fixture_argv
from tests.helpers.child_processes import killed_at_end, output_pipe, spawn_handle

CLOSED = "the server has closed its console input (stdin)"
NOT_READING = "the server is not reading its console input"
F_GETPIPE_SZ = 1032

# Reads N bytes of stdin, then prints how many and their sha256.
COUNT_BYTES = """
import hashlib, os, sys
want, data = int(sys.argv[1]), b""
while len(data) < want:
    data += os.read(0, 65536)
print(len(data), hashlib.sha256(data).hexdigest(), flush=True)
"""


@pytest.fixture
def fifo(tmp_path: Path) -> StdinFifo:
    stdin = StdinFifo(tmp_path / "run" / "servers" / "game" / "stdin")
    stdin.create()
    return stdin


@contextmanager
def child_on(
    fifo: StdinFifo, argv: list[str], stdout: int = subprocess.DEVNULL
) -> Iterator[ProcessHandle]:
    """A child with the FIFO as its stdin (the daemon keeps no descriptor of it)."""
    child_end = fifo.open_child_end()
    try:
        handle = spawn_handle(argv, stdin=child_end, stdout=stdout)
    finally:
        os.close(child_end)
    with killed_at_end(handle):
        yield handle


def test_create_makes_a_private_fifo_in_a_private_directory(fifo: StdinFifo) -> None:
    info = os.lstat(fifo.path)
    assert stat.S_ISFIFO(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(fifo.path.parent).st_mode) == 0o700
    stale = os.open(fifo.path, os.O_RDWR)  # a FIFO someone still holds is replaced too
    try:
        fifo.create()
        assert os.fstat(stale).st_nlink == 0
        assert os.lstat(fifo.path).st_ino != os.fstat(stale).st_ino
    finally:
        os.close(stale)
    fifo.remove()
    assert not os.path.lexists(fifo.path)
    fifo.remove()
    fifo.path.write_text("a regular file\n")
    fifo.create()
    assert stat.S_ISFIFO(os.lstat(fifo.path).st_mode)


async def test_commands_reach_the_child_in_order_and_it_never_sees_eof(fifo: StdinFifo) -> None:
    with (
        trio.fail_after(20),
        output_pipe() as (out, write_end),
        child_on(fifo, fixture_argv("echo"), stdout=write_end) as handle,
    ):
        os.close(write_end)
        assert await out.line() == b"ready"
        for i in range(20):
            await fifo.send(f"command {i}\n".encode(), deadline=5)
        for i in range(20):
            assert await out.line() == f"echo: command {i}".encode()
        # Twenty writers came and went: a child that saw EOF would have exited.
        restarted = StdinFifo(fifo.path)
        await restarted.send(b"from a restarted daemon\n", deadline=5)
        assert await out.line() == b"echo: from a restarted daemon"
        await restarted.send(b"stop\n", deadline=5)
        assert await out.line() == b"stopping"
        assert await handle.wait() == 0


async def test_a_large_command_arrives_whole(fifo: StdinFifo) -> None:
    data = bytes(range(256)) * 390 + b"0123456789" * 16  # 100000 bytes
    assert len(data) == 100_000
    with trio.fail_after(20), output_pipe() as (out, write_end):
        argv = [sys.executable, "-c", COUNT_BYTES, str(len(data))]
        with child_on(fifo, argv, stdout=write_end) as handle:
            os.close(write_end)
            await fifo.send(data, deadline=10)
            assert await out.line() == f"100000 {hashlib.sha256(data).hexdigest()}".encode()
            assert await handle.wait() == 0


async def test_concurrent_large_commands_are_never_interleaved(fifo: StdinFifo) -> None:
    first, second = b"a" * 99_999 + b"\n", b"b" * 99_999 + b"\n"
    with trio.fail_after(20), output_pipe() as (out, write_end):
        argv = [sys.executable, "-c", COUNT_BYTES, "200000"]
        with child_on(fifo, argv, stdout=write_end) as handle:
            os.close(write_end)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(lambda: fifo.send(first, deadline=10))
                nursery.start_soon(lambda: fifo.send(second, deadline=10))
            line = await out.line()
            assert line in (
                f"200000 {hashlib.sha256(first + second).hexdigest()}".encode(),
                f"200000 {hashlib.sha256(second + first).hexdigest()}".encode(),
            )
            assert await handle.wait() == 0


async def test_a_child_that_never_reads_gets_a_conflict_not_a_blocked_daemon(
    fifo: StdinFifo,
) -> None:
    command = b"x" * 4000 + b"\n"
    # The deadlines are far beyond the test's own bound: only a refusal at once passes.
    with trio.fail_after(10), child_on(fifo, ["sleep", "1000"]):
        probe = os.open(fifo.path, os.O_WRONLY | os.O_NONBLOCK)
        try:
            capacity = fcntl.fcntl(probe, F_GETPIPE_SZ)
        finally:
            os.close(probe)
        written = 0
        refused: Conflict | None = None
        while refused is None and written <= capacity:
            try:
                await fifo.send(command, deadline=3600)
            except Conflict as exc:
                refused = exc
            else:
                written += len(command)
        assert refused is not None
        assert refused.message == NOT_READING
        assert capacity - PIPE_BUF < written <= capacity
        with pytest.raises(Conflict, match=NOT_READING):
            await fifo.send(b"y" * 100_000, deadline=3600)  # nothing fits: refused at once


async def test_a_large_command_to_a_child_that_stops_reading_gives_up_at_the_deadline(
    fifo: StdinFifo, autojump_clock: trio.testing.MockClock
) -> None:
    with child_on(fifo, ["sleep", "1000"]):
        with trio.fail_after(60), pytest.raises(Conflict) as refused:
            await fifo.send(b"z" * 200_000, deadline=5)  # a part fits, the rest never does
        assert refused.value.message == NOT_READING
        assert trio.current_time() >= 5


async def test_a_dead_child_gives_a_conflict(fifo: StdinFifo) -> None:
    with trio.fail_after(10):
        with child_on(fifo, ["sh", "-c", "exit 0"]) as handle:
            assert await handle.wait() == 0
        with pytest.raises(Conflict) as refused:
            await fifo.send(b"anyone?\n", deadline=5)
        assert refused.value.message == CLOSED


async def test_a_child_that_dies_during_a_large_command_gives_a_conflict(
    fifo: StdinFifo,
) -> None:
    """The writer already holds the FIFO open when the last reader goes: EPIPE."""
    with trio.fail_after(10), child_on(fifo, [sys.executable, "-c", "import os; os.read(0, 10)"]):
        with pytest.raises(Conflict) as refused:
            await fifo.send(b"w" * 300_000, deadline=5)
        assert refused.value.message == CLOSED


async def test_a_missing_fifo_gives_a_conflict(tmp_path: Path) -> None:
    with pytest.raises(Conflict, match=r"closed its console input \(stdin\)"):
        await StdinFifo(tmp_path / "nothing" / "stdin").send(b"x\n", deadline=5)


async def test_a_grandchild_that_inherited_stdin_keeps_the_fifo_open(fifo: StdinFifo) -> None:
    """The FIFO accepting commands is no sign of the server's life: the pidfd is."""
    with (
        trio.fail_after(10),
        output_pipe() as (out, write_end),
        child_on(fifo, fixture_argv("forker", 1), stdout=write_end) as handle,
    ):
        os.close(write_end)
        assert (await out.line()).startswith(b"child ")
        assert await out.line() == b"ready"
        assert handle.signal_leader(signal.SIGKILL)  # the grandchild lives on
        assert await handle.wait() == -signal.SIGKILL
        await fifo.send(b"still open\n", deadline=5)


async def test_a_planted_symbolic_link_is_never_followed(tmp_path: Path, fifo: StdinFifo) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    fifo.path.unlink()
    fifo.path.symlink_to(target)
    fifo.create()
    assert stat.S_ISFIFO(os.lstat(fifo.path).st_mode)
    assert target.read_text() == "keep me\n"

    # A link to another FIFO that has a reader: following it would deliver the command.
    elsewhere = tmp_path / "elsewhere"
    os.mkfifo(elsewhere, 0o600)
    reader = os.open(elsewhere, os.O_RDONLY | os.O_NONBLOCK)
    try:
        fifo.path.unlink()
        fifo.path.symlink_to(elsewhere)
        with pytest.raises(Conflict, match="not a named pipe"):
            await fifo.send(b"stop\n", deadline=5)
        assert os.read(reader, 100) == b""  # no writer came and nothing was written
        with pytest.raises(OSError, match="Too many levels of symbolic links"):
            fifo.open_child_end()
    finally:
        os.close(reader)
    fifo.path.unlink()
    fifo.path.write_text("a regular file\n")
    with pytest.raises(Conflict, match="not a named pipe"):
        await fifo.send(b"stop\n", deadline=5)
    with pytest.raises(OSError, match="not a named pipe"):
        fifo.open_child_end()
    assert fifo.path.read_text() == "a regular file\n"

"""Real child processes for the process-handle and console-input tests: spawning one
as a server is spawned (a session of its own) and reading its output line by line."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

import trio

from leosuite.supervision.handle import ProcessHandle


class LineReader:
    """The read end of a pipe a child writes its output to, read a line at a time."""

    def __init__(self, fd: int) -> None:
        self._stream = trio.lowlevel.FdStream(fd)
        self._buffer = b""

    async def line(self) -> bytes:
        """The next line without its newline; EOFError at the end of the output."""
        while b"\n" not in self._buffer:
            data = await self._stream.receive_some()
            if not data:
                raise EOFError(self._buffer)
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def close(self) -> None:
        self._stream.close()


@contextmanager
def output_pipe() -> Iterator[tuple[LineReader, int]]:
    """A pipe: a reader for the test and the write end for a child (closed by the
    caller once the child has it)."""
    read_fd, write_fd = os.pipe()
    reader = LineReader(read_fd)
    try:
        yield reader, write_fd
    finally:
        reader.close()
        with suppress(OSError):
            os.close(write_fd)


def spawn_handle(
    argv: Sequence[str], *, stdin: int = subprocess.DEVNULL, stdout: int = subprocess.DEVNULL
) -> ProcessHandle:
    """Spawn ``argv`` the way a server is spawned (a new session) and take it over."""
    popen = subprocess.Popen(
        list(argv), stdin=stdin, stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True
    )
    return ProcessHandle.for_child(popen)


@contextmanager
def killed_at_end(handle: ProcessHandle) -> Iterator[ProcessHandle]:
    """SIGKILL what is left of the handle's process group at the end, reap the leader
    if a failed test did not, and close the handle."""
    try:
        yield handle
    finally:
        with suppress(ProcessLookupError):
            os.killpg(handle.pid, signal.SIGKILL)
        if not handle.exited:
            with suppress(ChildProcessError):
                os.waitpid(handle.pid, 0)
        handle.close()


def parent_of(pid: int) -> int:
    """The parent pid of a live process, from ``/proc/<pid>/status``."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("PPid:"):
                return int(line.split()[1])
    raise LookupError(pid)

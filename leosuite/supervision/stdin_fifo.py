"""A server's console input: a named pipe the daemon opens afresh for each command.

The child's stdin is the FIFO opened read-write, so the child never sees end-of-file
when a writer goes away, and nothing the daemon holds is needed for it to go on
reading: a restarted daemon reaches it again by opening the path. The daemon opens it
write-only and non-blocking for each command, so a server that does not read its input
can never block the daemon.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

import trio

from leosuite.errors import Conflict, ProcessError

__all__ = ["PIPE_BUF", "StdinFifo"]

#: Writes up to this size reach the FIFO in one piece, never interleaved with another.
PIPE_BUF = 4096

_CLOSED = "the server has closed its console input (stdin)"
_NOT_READING = "the server is not reading its console input"
_NOT_A_FIFO = "the server's console input is not a named pipe"


class StdinFifo:
    """The FIFO at ``path`` that is a server's stdin.

    Sending fails with Conflict when nobody holds the FIFO open for reading, but that
    is no sign of the server's death (a process it started may have inherited its
    stdin and keep the FIFO open): whether the server runs is told by its pidfd.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        # Commands are sent one at a time: a large one written in parts must not be
        # split by another.
        self._lock = trio.Lock()

    def create(self) -> None:
        """Make a new, empty FIFO (0600) at the path in place of whatever is there (a
        symbolic link is removed, never followed). Only for a fresh start: a server
        that runs on keeps the FIFO it holds."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.mkfifo(self.path, 0o600)

    def open_child_end(self) -> int:
        """A read-write descriptor of the FIFO for the child's stdin (close-on-exec; the
        spawn makes the child's copy inheritable); the caller closes it after the spawn."""
        fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(errno.EINVAL, f"not a named pipe: {self.path}")
        return fd

    def remove(self) -> None:
        """Remove the FIFO (a missing one is fine)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def send(self, data: bytes, *, deadline: float) -> None:
        """Write ``data`` to the server's stdin.

        Up to :data:`PIPE_BUF` bytes go in one atomic write or not at all; a larger
        command that does not fit at once is finished within ``deadline`` seconds (what
        was not written by then is lost). Raises Conflict at once when nobody reads
        the FIFO any more or it is full: the daemon is never blocked by a server.
        """
        with trio.move_on_after(deadline):
            async with self._lock:
                await self._send(data)
                return
        raise Conflict(_NOT_READING)

    async def _send(self, data: bytes) -> None:
        fd = self._open_writer()
        try:
            sent = os.write(fd, data)
        except BlockingIOError:
            os.close(fd)
            raise Conflict(_NOT_READING) from None
        except BrokenPipeError:
            os.close(fd)
            raise Conflict(_CLOSED) from None
        except OSError as exc:
            os.close(fd)
            raise ProcessError(f"cannot write to the console input: {exc.strerror or exc}") from exc
        if sent == len(data):
            os.close(fd)
            return
        stream = trio.lowlevel.FdStream(fd)  # owns fd from here on
        try:
            await stream.send_all(data[sent:])
        except trio.BrokenResourceError:
            raise Conflict(_CLOSED) from None
        finally:
            stream.close()

    def _open_writer(self) -> int:
        """The FIFO opened for writing, without blocking and without following a link."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno in (errno.ENXIO, errno.ENOENT):  # no reader, or no FIFO at all
                raise Conflict(_CLOSED) from None
            if exc.errno == errno.ELOOP:  # a symbolic link where the FIFO should be
                raise Conflict(_NOT_A_FIFO) from None
            raise ProcessError(f"cannot open the console input: {exc.strerror or exc}") from exc
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.close(fd)
            raise Conflict(_NOT_A_FIFO)
        return fd

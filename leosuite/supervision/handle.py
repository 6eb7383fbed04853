"""A server process watched through a pidfd, found again by its identity.

Servers outlive the daemon: a crash, ``kill -9`` or a reload (the daemon re-executes
itself in the same process) leaves them running, and the next daemon takes them over.
A process id alone cannot find a process again (pids are reused), so the daemon
stores a :class:`ProcessIdentity` (pid, start time, boot id) at the spawn, and
:meth:`ProcessHandle.adopt` opens a pidfd *first* and only then checks that the pid
still names that process: once the pidfd is open, the pid cannot be handed to
another process while the check runs.

The handle, not :mod:`subprocess`, reaps the process (``waitid`` on the pidfd). The
exit code is known only to the process's parent: after a reload the new image is
still the parent and gets the real code; after a real daemon crash the process was
handed to init, and its code is lost (``returncode`` is None).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import select
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

import msgspec
import trio

from leosuite.errors import ProcessError

__all__ = ["ProcessHandle", "ProcessIdentity", "boot_id", "process_start_time"]

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
#: Zero-based index of field 22 (starttime) among the fields after the command name.
_START_TIME = 19
#: Zero-based index of field 3 (state) among the fields after the command name.
_STATE = 0
_PARENT = 1


@functools.cache
def boot_id() -> str:
    """This boot's id: a start time is only comparable within one boot."""
    return _BOOT_ID.read_text().strip()


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, None when gone (the
    command name may hold ``)`` and spaces: split at the last ``)``)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    _, sep, rest = raw.rpartition(b")")
    fields = rest.split()
    if not sep or len(fields) <= _START_TIME:
        return None
    return fields


def process_start_time(pid: int) -> int | None:
    """When the process started, in clock ticks since boot; None when it is gone."""
    fields = _stat_fields(pid)
    return int(fields[_START_TIME]) if fields is not None else None


class ProcessIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """What tells one process from any later process with the same pid."""

    pid: int
    #: Field 22 of ``/proc/<pid>/stat``: clock ticks from boot to the process's start.
    start_time: int
    boot_id: str


def _code_of(info: os.waitid_result) -> int:
    """The exit status as subprocess gives it: the code, or minus the killing signal."""
    if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED):
        return -info.si_status
    return info.si_status


def _give_up(popen: subprocess.Popen[bytes]) -> None:
    """Kill and reap a child that cannot be watched: an unwatched server must not run on."""
    popen.kill()
    popen.wait()


class ProcessHandle:
    """One server process, the leader of its own process group (its pgid is its pid),
    watched through a pidfd.

    :meth:`wait` reaps it; after the exit ``returncode`` is the exit code (negative:
    the killing signal) or None when the daemon is not its parent any more and the
    code cannot be known (``code_known`` tells the two apart).
    """

    def __init__(self, pidfd: int, identity: ProcessIdentity, *, user: str | None) -> None:
        self._pidfd: int | None = pidfd
        self.identity = identity
        self.pid = identity.pid
        #: The user the process runs as, named in signalling errors.
        self.user = user
        self._exited = False
        self._returncode: int | None = None
        self._wait_lock = trio.Lock()

    @classmethod
    def for_child(cls, popen: subprocess.Popen[bytes], *, user: str | None = None) -> ProcessHandle:
        """Take over a process the daemon has just spawned: ``popen`` must not be
        used afterwards."""
        pid = popen.pid
        start_time = process_start_time(pid)  # unreaped: /proc shows it, even as a zombie
        try:
            if start_time is None:
                raise ProcessError(f"cannot read the start time of process {pid}")
            pidfd = os.pidfd_open(pid)
        except OSError as exc:
            _give_up(popen)
            raise ProcessError(f"cannot watch process {pid}: {exc.strerror or exc}") from exc
        except ProcessError:
            _give_up(popen)
            raise
        # A returncode already set keeps Popen.__del__ and subprocess._cleanup from ever
        # reaping this pid (sys.maxsize is subprocess's own "dead, status unknown").
        popen.returncode = sys.maxsize
        identity = ProcessIdentity(pid=pid, start_time=start_time, boot_id=boot_id())
        return cls(pidfd, identity, user=user)

    @classmethod
    def adopt(cls, identity: ProcessIdentity, *, user: str | None = None) -> ProcessHandle | None:
        """Take over the process ``identity`` names if it is still running; None when
        it is gone, a zombie, or the pid now names another process. A zombie that is
        this process's own child (it exited during a reload) is taken over too, so that
        :meth:`wait` reaps it with its real exit code."""
        if identity.boot_id != boot_id():
            return None
        try:
            pidfd = os.pidfd_open(identity.pid)
        except ProcessLookupError:
            return None
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # the pid of a thread, not of a process
                return None
            raise ProcessError(
                f"cannot watch process {identity.pid}: {exc.strerror or exc}"
            ) from exc
        # The pidfd pins the pid: from here on it cannot be given to another process.
        fields = _stat_fields(identity.pid)
        if (
            fields is None
            or int(fields[_START_TIME]) != identity.start_time
            or (fields[_STATE] == b"Z" and int(fields[_PARENT]) != os.getpid())
        ):
            os.close(pidfd)
            return None
        return cls(pidfd, identity, user=user)

    @property
    def exited(self) -> bool:
        """The exit was seen and reaped (by :meth:`wait`)."""
        return self._exited

    @property
    def returncode(self) -> int | None:
        """The exit code once exited (negative: the signal); None while it runs or
        when the code cannot be known."""
        return self._returncode

    @property
    def code_known(self) -> bool:
        return self._exited and self._returncode is not None

    async def wait(self) -> int | None:
        """Wait for the exit and reap it; return ``returncode``. Several tasks may wait;
        raises ClosedResourceError if the handle is closed before the exit."""
        async with self._wait_lock:
            while not self._exited:
                if self._pidfd is None:
                    raise trio.ClosedResourceError("the process handle is closed")
                await trio.lowlevel.wait_readable(self._pidfd)
                if not self._reap():
                    await trio.sleep(0.01)  # readable but not reapable yet: look again soon
        return self._returncode

    def _reap(self) -> bool:
        """Collect the exit status once the pidfd is readable; False if not there yet."""
        if self._pidfd is None:
            return False
        try:
            info = os.waitid(os.P_PIDFD, self._pidfd, os.WEXITED | os.WNOHANG)
        except ChildProcessError:
            code: int | None = None  # not the daemon's child: init reaps it
        else:
            if info is None:
                return False
            code = _code_of(info)
        self._exited = True
        self._returncode = code
        return True

    def _exit_seen(self) -> bool:
        """The leader has exited (its pidfd is readable), whether reaped or not."""
        if self._exited or self._pidfd is None:
            return True
        poller = select.poll()
        poller.register(self._pidfd, select.POLLIN)
        return bool(poller.poll(0))

    def _signal_error(self, what: str, exc: OSError) -> ProcessError:
        if isinstance(exc, PermissionError):
            of_user = f" of user {self.user}" if self.user else ""
            return ProcessError(f"cannot signal {what}{of_user}: the daemon needs CAP_KILL")
        return ProcessError(f"cannot signal {what}: {exc.strerror or exc}")

    def signal_group(self, sig: int) -> bool:
        """Send ``sig`` to the whole process group while its leader runs; False once
        the leader has exited (its pid may then name another process) or the handle is
        closed."""
        if self._exit_seen():
            return False
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            return False
        except OSError as exc:
            raise self._signal_error(f"process group {self.pid}", exc) from exc
        return True

    def signal_leader(self, sig: int) -> bool:
        """Send ``sig`` to the leader alone, through its pidfd; False once it exited or
        the handle is closed."""
        if self._exited or self._pidfd is None:
            return False
        try:
            signal.pidfd_send_signal(self._pidfd, sig)
        except ProcessLookupError:
            return False
        except OSError as exc:
            raise self._signal_error(f"process {self.pid}", exc) from exc
        return True

    def close(self) -> None:
        """Close the pidfd (a process still running runs on); waiting tasks get
        ClosedResourceError."""
        pidfd, self._pidfd = self._pidfd, None
        if pidfd is None:
            return
        with contextlib.suppress(RuntimeError):  # outside trio nobody can be waiting on it
            trio.lowlevel.notify_closing(pidfd)
        os.close(pidfd)

    def __enter__(self) -> ProcessHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"returncode={self._returncode}" if self._exited else "running"
        return f"<ProcessHandle pid={self.pid} {state}>"

"""Each server in a cgroup of its own: resource limits, stats of every process, a complete kill.

:func:`detect` finds where the daemon may create cgroups: a delegated cgroup v2
subtree (:mod:`.cgroups_v2`) or writable cgroup v1 ``memory``, ``pids`` and ``cpu``
controllers (:mod:`.cgroups_v1`), and answers a :class:`CgroupDriver` (or None with
the reason). A driver makes one :class:`Group` per server, keyed by the server's
name, so that a restarted daemon finds the group of a server it re-adopts
(:meth:`CgroupDriver.find`). Both versions share the kill by listing (every pid of
``cgroup.procs`` gets SIGKILL, pinned by a pidfd, until none is left), which v2 uses
where ``cgroup.kill`` is missing.

Every call here does blocking file I/O on small kernel files: the async shell runs
them in worker threads, except the one-pass kill of a force kill.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, Protocol

__all__ = [
    "HOW_TO_ENABLE",
    "CgroupDriver",
    "CgroupStats",
    "DetectResult",
    "Group",
    "detect",
    "JOIN_FAILED",
    "join_argv",
    "join_preexec",
    "kill_listed",
    "read_int",
    "read_keyed",
    "read_pids",
    "write_text",
]

#: Why limits are refused where no cgroup can be made, and how to make one possible.
HOW_TO_ENABLE = (
    "no delegated cgroup v2 subtree (run under systemd with Delegate=yes) and no "
    "writable cgroup v1 memory/pids/cpu controllers"
)

#: Rounds of the kill by listing before it gives up on processes that will not die.
KILL_ROUNDS = 200
#: Seconds between two rounds while killed processes are still listed.
KILL_PAUSE = 0.01


class CgroupStats(NamedTuple):
    """One reading of a group: every process in it, forks included."""

    #: Memory in use (without the reclaimable inactive file cache), bytes.
    memory_bytes: int
    #: The most memory the group used since it was made (None where not kept).
    memory_peak_bytes: int | None
    #: CPU time of every process that ran in the group, seconds (None where not kept).
    cpu_seconds: float | None
    #: Processes in the group now.
    processes: int
    #: Tasks (threads) in the group now, as ``pids.max`` counts them.
    tasks: int


class Group(Protocol):
    """One server's cgroup (one directory per controller in v1)."""

    key: str

    @property
    def path(self) -> str:
        """Where it is, for messages."""
        ...

    def set_limits(
        self, memory_bytes: int | None, cpu_percent: int | None, pids: int | None
    ) -> None:
        """Apply the limits; None lifts one. ``cpu_percent`` is percent of one core."""
        ...

    def add(self, pid: int) -> None:
        """Move the process ``pid`` (all its threads) into the group."""
        ...

    def procs_paths(self) -> list[Path]:
        """The group's ``cgroup.procs`` files (one per controller hierarchy)."""
        ...

    def open_procs(self) -> list[int]:
        """Descriptors of the group's ``cgroup.procs`` files, opened for writing: a
        forked child writes ``0`` to each (:func:`join_preexec`) to join before it runs
        its program. The caller closes them."""
        ...

    def pids(self) -> list[int]:
        """The processes in the group (zombies excluded)."""
        ...

    def kill(self, *, rounds: int = KILL_ROUNDS) -> int:
        """SIGKILL every process in the group until none is left (at most ``rounds``
        passes); the number of processes signalled."""
        ...

    def stats(self) -> CgroupStats: ...

    def oom_kills(self) -> int:
        """How many processes the kernel killed for the group's memory limit so far."""
        ...

    def oom_killed(self, since: int = 0) -> bool:
        """Whether the OOM kill counter is above ``since`` (a reading taken earlier)."""
        ...

    def remove(self) -> None:
        """Remove the group once it is empty (OSError EBUSY while a process is in it)."""
        ...


class CgroupDriver(Protocol):
    """Where servers' groups are made: one cgroup version, one root."""

    version: int

    @property
    def root(self) -> str:
        """The directory the groups are made in (v1: the memory controller's)."""
        ...

    def create(self, key: str) -> Group:
        """The group ``key``, made if missing (an existing one is reused)."""
        ...

    def find(self, key: str) -> Group | None:
        """The group ``key`` if it exists (re-adoption)."""
        ...

    def keys(self) -> list[str]:
        """The groups under the root."""
        ...

    def close(self) -> None:
        """Remove the empty groups and the root if it is empty (best effort)."""
        ...


class DetectResult(NamedTuple):
    driver: CgroupDriver | None
    #: Why there is no driver ("" when there is one).
    reason: str


def detect(
    name: str, *, mount: str = "/sys/fs/cgroup", proc_cgroup: str = "/proc/self/cgroup"
) -> DetectResult:
    """A driver rooted at a ``name`` directory below the daemon's own cgroup: v2 where
    ``mount`` is a cgroup2 mount whose subtree here is delegated, else v1 where the
    ``memory``, ``pids`` and ``cpu`` controllers are mounted below ``mount`` and
    writable; else None with :data:`HOW_TO_ENABLE` and what was found."""
    from leosuite.supervision import cgroups_v1, cgroups_v2  # they import this module

    try:
        with open(proc_cgroup, encoding="utf-8") as f:
            membership = f.read()
    except OSError as exc:
        return DetectResult(None, f"{HOW_TO_ENABLE} ({proc_cgroup}: {exc.strerror or exc})")
    found: list[str] = []
    for attempt in (cgroups_v2.open_driver, cgroups_v1.open_driver):
        driver, why = attempt(Path(mount), membership, name)
        if driver is not None:
            return DetectResult(driver, "")
        found.append(why)
    return DetectResult(None, f"{HOW_TO_ENABLE} ({'; '.join(found)})")


# ---------------------------------------------------------------- shared file helpers


def read_text(path: Path) -> str:
    """A small kernel file's text, with plain system calls: a bulk stop reads four for
    each server, and ``Path.read_text`` costs twice as much for its file object."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    chunks: list[bytes] = []
    try:
        while chunk := os.read(fd, 65536):  # a kernel file may answer in pieces
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("ascii")


def read_int(path: Path, default: int = 0) -> int:
    """An integer file; ``default`` when missing or ``max``."""
    try:
        text = read_text(path).strip()
    except (OSError, UnicodeDecodeError):
        return default
    try:
        return int(text.split()[0]) if text else default
    except ValueError:
        return default


def read_keyed(path: Path) -> dict[str, int]:
    """A ``key value`` per line file (``memory.stat``, ``memory.events``, ``cpu.stat``)."""
    out: dict[str, int] = {}
    try:
        text = read_text(path)
    except (OSError, UnicodeDecodeError):
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            with contextlib.suppress(ValueError):
                out[parts[0]] = int(parts[1])
    return out


def write_text(path: Path, text: str) -> None:
    """One write of ``text`` to a kernel file, as ``echo text > file`` does (a cgroup
    filesystem ignores ``O_CREAT`` and ``O_TRUNC``, which only a plain tree sees)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode("ascii"))
    finally:
        os.close(fd)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return True  # gone
    return raw.rpartition(b")")[2].split()[:1] in ([b"Z"], [b"X"])


def read_pids(procs: Path) -> list[int]:
    """The live processes a ``cgroup.procs`` file lists (zombies left out)."""
    try:
        text = read_text(procs)
    except FileNotFoundError:
        return []
    pids = [int(word) for word in text.split() if word.isdigit()]
    return [pid for pid in pids if not _zombie(pid)]


def kill_listed(
    procs: Path,
    *,
    rounds: int = KILL_ROUNDS,
    pause: float = KILL_PAUSE,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """SIGKILL every process ``procs`` lists, again and again until it lists none;
    the number signalled. Each pid is pinned with a pidfd and seen in the file again
    before the signal, so a pid reused meanwhile is never signalled."""
    killed: set[int] = set()
    for round_ in range(rounds):
        pinned: dict[int, int] = {}
        for pid in read_pids(procs):
            with contextlib.suppress(OSError):
                pinned[pid] = os.pidfd_open(pid)
        if not pinned:
            break
        try:
            listed = set(read_pids(procs))
            for pid, pidfd in pinned.items():
                if pid in listed:  # the pidfd names the process the group holds
                    with contextlib.suppress(OSError):
                        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                    killed.add(pid)
        finally:
            for pidfd in pinned.values():
                os.close(pidfd)
        if round_ + 1 < rounds:
            sleep(pause)
    return len(killed)


#: The exit code of a server whose spawn could not join its cgroup.
JOIN_FAILED = 125
#: ``sh -c`` script: write ``0`` (itself) to the ``cgroup.procs`` files named by its
#: first arguments (their count first), then become the program that follows them. A
#: file it cannot write ends it with :data:`JOIN_FAILED` before the program runs.
_JOIN_SCRIPT = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do '
    'echo 0 >"$1" || { echo "leosuite: cannot join the server\'s cgroup ($1)" >&2; '
    f"exit {JOIN_FAILED}; }}; "
    'shift; n=$((n - 1)); done; exec "$@"'
)


def join_argv(paths: list[Path], argv: list[str]) -> list[str]:
    """``argv`` run by a shell that first joins the cgroups of ``paths`` (their
    ``cgroup.procs`` files): nothing the program runs is ever outside them, and the
    daemon spawns without a ``preexec_fn``, so without copying itself (``vfork``)."""
    return [
        "/bin/sh",
        "-c",
        _JOIN_SCRIPT,
        "leosuite-join",
        str(len(paths)),
        *map(str, paths),
        *argv,
    ]


def join_preexec(fds: list[int]) -> Callable[[], None]:
    """The ``preexec_fn`` that moves the forked child into its group before ``exec``:
    ``0`` (the writing process) to each ``cgroup.procs`` opened by the daemon (the
    kernel checks the opener's credentials, so this works after a user switch)."""

    def join() -> None:
        for fd in fds:
            os.write(fd, b"0")

    return join


def remove_dir(path: Path) -> None:
    """rmdir ``path``; a missing one is fine."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise

"""What ``/proc`` says about the processes of one data directory's servers.

Every server process the daemon starts carries ``LEOSUITE_SERVER_ID=<name>:<digest>``
in its environment (the digest names the server's console directory), and its
descendants inherit it. A scan reads every process's environment and keeps those
whose tag names a console directory under this run's data directory; each is
described by its pid, session, start time (clock ticks since boot) and command line.

A server's *main* process is the one the daemon started: a session leader (the daemon
starts each server in a session of its own) that is not the escaper program's child
(which makes a session of its own on purpose). Forked children share their parent's
session, so they are never counted as mains.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from .programs import ESCAPER_CHILD

__all__ = ["Proc", "alive", "kill_all", "scan", "tag_of"]

TAG_VARIABLE = b"LEOSUITE_SERVER_ID="


def tag_of(data_dir: Path, name: str) -> str:
    """The tag the daemon gives server ``name``'s processes (see the module docstring)."""
    directory = os.path.abspath(data_dir / "logs" / name)
    return f"{name}:{hashlib.sha256(os.fsencode(directory)).hexdigest()[:16]}"


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    ppid: int
    sid: int
    start: int
    state: str
    server: str
    cmdline: str

    @property
    def key(self) -> tuple[int, int]:
        """Pid and start time: one process, never a later one that reuses the pid."""
        return self.pid, self.start

    @property
    def is_main(self) -> bool:
        return self.sid == self.pid and ESCAPER_CHILD not in self.cmdline

    def describe(self) -> str:
        return f"pid {self.pid} (ppid {self.ppid}, sid {self.sid}, {self.state}): {self.cmdline}"


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """State, ppid, session and start time of a process; None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw.rsplit(b")", 1)[1].split()
    # After the command: state(3) ppid(4) pgrp(5) session(6) ... starttime(22).
    return fields[0].decode(), int(fields[1]), int(fields[3]), int(fields[19])


def _tag(pid: int) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    for entry in environ.split(b"\0"):
        if entry.startswith(TAG_VARIABLE):
            return entry[len(TAG_VARIABLE) :].decode(errors="replace")
    return None


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def scan(data_dir: Path) -> list[Proc]:
    """Every live (not zombie) process carrying the tag of a server of ``data_dir``."""
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        tag = _tag(pid)
        if tag is None or ":" not in tag:
            continue
        name = tag.rsplit(":", 1)[0]
        if tag != tag_of(data_dir, name):
            continue
        stat = _stat(pid)
        if stat is None or stat[0] in ("Z", "X", "x"):
            continue
        state, ppid, sid, start = stat
        found.append(Proc(pid, ppid, sid, start, state, name, _cmdline(pid)))
    return found


def alive(proc: Proc) -> bool:
    """The same process (pid and start time) still exists and is not a zombie."""
    stat = _stat(proc.pid)
    return stat is not None and stat[3] == proc.start and stat[0] not in ("Z", "X", "x")


def kill_all(data_dir: Path) -> list[Proc]:
    """SIGKILL every process carrying a tag of ``data_dir`` (and its group); the killed."""
    killed = scan(data_dir)
    for proc in killed:
        if not alive(proc):
            continue
        with contextlib.suppress(OSError):
            if proc.is_main:
                os.killpg(proc.pid, signal.SIGKILL)
            os.kill(proc.pid, signal.SIGKILL)
    return killed

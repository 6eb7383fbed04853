"""Running a managed server as another system user than the daemon.

A server's ``user`` (its own setting, else its type's, else ``servers.user``) names the
account its process runs as: the child is spawned with that uid, its primary gid and
its supplementary groups, and ``HOME``, ``USER`` and ``LOGNAME`` of that account. A
daemon that is not root needs CAP_SETUID and CAP_SETGID for that (and CAP_KILL to
signal the server, CAP_CHOWN to hand it its directory).

Capabilities granted to the daemon must never reach a server: the ambient set survives
``execve`` and the inheritable set combines with a program's file capabilities, so the
daemon clears both at start (:func:`drop_inheritable_capabilities`), before any worker
thread exists (capabilities are per thread; later threads inherit the cleared sets).
"""

from __future__ import annotations

import ctypes
import logging
import os
import pwd
import sys
from dataclasses import dataclass
from typing import Any

from leosuite.errors import InvalidInput, StartupError

__all__ = [
    "RunAs",
    "ambient_capabilities",
    "drop_inheritable_capabilities",
    "resolve_user",
    "spawn_options",
]

log = logging.getLogger(__name__)

_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAPABILITY_VERSION_3 = 0x20080522


@dataclass(frozen=True, slots=True)
class RunAs:
    """A system account a server runs as, resolved from its name."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str

    @property
    def is_daemon(self) -> bool:
        """The daemon's own identity: nothing to switch."""
        return self.uid == os.geteuid() and self.gid == os.getegid()

    def environment(self) -> dict[str, str]:
        return {"HOME": self.home, "USER": self.name, "LOGNAME": self.name}


def resolve_user(name: str) -> RunAs:
    """The account ``name`` (or a numeric uid); InvalidInput naming ``user`` if unknown."""
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, ValueError, OverflowError):
        raise InvalidInput(f"user: no system user {name!r}", field="user") from None
    try:
        groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    except OSError:
        groups = (entry.pw_gid,)
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir or "/")


def spawn_options(run_as: RunAs | None) -> dict[str, Any]:
    """The ``subprocess.Popen`` keywords that switch the child to ``run_as``."""
    if run_as is None or run_as.is_daemon:
        return {}
    return {"user": run_as.uid, "group": run_as.gid, "extra_groups": list(run_as.groups)}


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def ambient_capabilities() -> int:
    """The calling thread's ambient capability set (a bit mask; 0 off Linux)."""
    try:
        with open("/proc/thread-self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("CapAmb:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def drop_inheritable_capabilities() -> None:
    """Clear the ambient and inheritable capability sets of the calling thread.

    The daemon keeps its permitted and effective capabilities; a program it spawns
    starts with none. Raises StartupError if ambient capabilities remain.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)  # EINVAL before 4.3
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    got = libc.capget(ctypes.byref(header), data) == 0
    if got and (data[0].inheritable or data[1].inheritable):
        data[0].inheritable = data[1].inheritable = 0
        if libc.capset(ctypes.byref(header), data) != 0:
            err = ctypes.get_errno()
            raise StartupError(f"cannot clear the inheritable capabilities: {os.strerror(err)}")
    if ambient_capabilities():
        raise StartupError("cannot clear the ambient capabilities: servers would inherit them")

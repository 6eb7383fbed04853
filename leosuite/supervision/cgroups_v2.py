"""cgroup v2: the daemon's delegated subtree, ``<base>/<name>/<key>``.

``<base>`` is the daemon's own cgroup (from the ``0::`` line of ``/proc/self/cgroup``),
which systemd hands over with ``Delegate=yes``; when the daemon already sits in a
``daemon`` leaf of it (moved there by an earlier start, or by systemd's
``DelegateSubgroup=daemon``), ``<base>`` is that leaf's parent. A cgroup that passes
controllers to its children may hold no process itself, so the daemon moves itself
into ``<base>/daemon`` before it enables ``memory``, ``pids`` and ``cpu`` in
``<base>/cgroup.subtree_control`` and in ``<base>/<name>/cgroup.subtree_control``.

Limits: ``memory.max`` (with ``memory.swap.max`` 0, so the limit is not dodged into
swap), ``cpu.max`` over a 100 ms period, ``pids.max``; the OOM kill counter is the
``oom_kill`` field of ``memory.events``; a kill writes ``1`` to ``cgroup.kill``
(Linux 5.14), else lists ``cgroup.procs``.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from leosuite.supervision.cgroups import (
    KILL_PAUSE,
    KILL_ROUNDS,
    CgroupDriver,
    CgroupStats,
    Group,
    kill_listed,
    read_int,
    read_keyed,
    read_pids,
    remove_dir,
    write_text,
)
from leosuite.supervision.cgroups_v1 import CFS_PERIOD_US, KEY, check_key

__all__ = ["CONTROLLERS", "V2Driver", "V2Group", "open_driver"]

#: The controllers a server's group needs.
CONTROLLERS = ("memory", "pids", "cpu")
#: The leaf the daemon moves itself into.
DAEMON_LEAF = "daemon"


class V2Group:
    """A server's group: one directory."""

    def __init__(self, key: str, directory: Path) -> None:
        self.key = key
        self._dir = directory

    @property
    def path(self) -> str:
        return str(self._dir)

    def set_limits(
        self, memory_bytes: int | None, cpu_percent: int | None, pids: int | None
    ) -> None:
        write_text(self._dir / "memory.max", str(memory_bytes) if memory_bytes else "max")
        if (self._dir / "memory.swap.max").exists():
            write_text(self._dir / "memory.swap.max", "0" if memory_bytes else "max")
        quota = str(cpu_percent * CFS_PERIOD_US // 100) if cpu_percent else "max"
        write_text(self._dir / "cpu.max", f"{quota} {CFS_PERIOD_US}")
        write_text(self._dir / "pids.max", str(pids) if pids else "max")

    def add(self, pid: int) -> None:
        write_text(self._dir / "cgroup.procs", str(pid))

    def procs_paths(self) -> list[Path]:
        return [self._dir / "cgroup.procs"]

    def open_procs(self) -> list[int]:
        return [os.open(self._dir / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)]

    def pids(self) -> list[int]:
        return read_pids(self._dir / "cgroup.procs")

    def kill(self, *, rounds: int = KILL_ROUNDS) -> int:
        procs = self._dir / "cgroup.procs"
        if not (self._dir / "cgroup.kill").exists():
            return kill_listed(procs, rounds=rounds)
        found = len(self.pids())
        if found:
            write_text(self._dir / "cgroup.kill", "1")
            for _ in range(rounds - 1):
                if not read_pids(procs):
                    break
                time.sleep(KILL_PAUSE)
        return found

    def stats(self) -> CgroupStats:
        usage = read_int(self._dir / "memory.current")
        inactive = read_keyed(self._dir / "memory.stat").get("inactive_file", 0)
        peak = self._dir / "memory.peak"
        cpu = read_keyed(self._dir / "cpu.stat").get("usage_usec")
        return CgroupStats(
            memory_bytes=max(0, usage - inactive),
            memory_peak_bytes=read_int(peak) if peak.exists() else None,
            cpu_seconds=cpu / 1e6 if cpu is not None else None,
            processes=len(self.pids()),
            tasks=read_int(self._dir / "pids.current"),
        )

    def oom_kills(self) -> int:
        return read_keyed(self._dir / "memory.events").get("oom_kill", 0)

    def oom_killed(self, since: int = 0) -> bool:
        return self.oom_kills() > since

    def remove(self) -> None:
        remove_dir(self._dir)


class V2Driver:
    """Groups in ``<base>/<name>``."""

    version = 2

    def __init__(self, root: Path) -> None:
        self._root = root

    @property
    def root(self) -> str:
        return str(self._root)

    def create(self, key: str) -> Group:
        directory = self._root / check_key(key)
        directory.mkdir(exist_ok=True)
        return V2Group(key, directory)

    def find(self, key: str) -> Group | None:
        directory = self._root / check_key(key)
        return V2Group(key, directory) if directory.is_dir() else None

    def keys(self) -> list[str]:
        try:
            names = os.listdir(self._root)
        except OSError:
            return []
        return sorted(n for n in names if KEY.fullmatch(n) and (self._root / n).is_dir())

    def close(self) -> None:
        for key in self.keys():
            group = self.find(key)
            if group is not None and not group.pids():
                try:
                    group.remove()
                except OSError:
                    continue
        with contextlib.suppress(OSError):  # a server left running keeps its group
            remove_dir(self._root)


def own_path(membership: str) -> str | None:
    """The daemon's cgroup v2 path (the ``0::`` line), None when there is none."""
    for line in membership.splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


def _enable(directory: Path) -> None:
    wanted = set(CONTROLLERS)
    try:
        enabled = set((directory / "cgroup.subtree_control").read_text(encoding="ascii").split())
    except FileNotFoundError:
        enabled = set()
    if not wanted <= enabled:
        text = " ".join(f"+{c}" for c in CONTROLLERS)
        write_text(directory / "cgroup.subtree_control", text)


def open_driver(mount: Path, membership: str, name: str) -> tuple[CgroupDriver | None, str]:
    """The v2 driver rooted at ``<base>/<name>``, the daemon moved into its leaf and
    the controllers enabled; None with the reason when the subtree is not delegated."""
    check_key(name)
    if not (mount / "cgroup.controllers").is_file():
        return None, f"cgroup v2: {mount} is not a cgroup2 mount"
    own = own_path(membership)
    if own is None:
        return None, "cgroup v2: the daemon is in no cgroup v2"
    own_dir = mount / own.lstrip("/")
    base = own_dir.parent if own_dir.name == DAEMON_LEAF and own_dir != mount else own_dir
    try:
        available = (base / "cgroup.controllers").read_text(encoding="ascii").split()
    except OSError as exc:
        return None, f"cgroup v2: cannot read {base}/cgroup.controllers: {exc.strerror or exc}"
    missing = [c for c in CONTROLLERS if c not in available]
    if missing:
        return None, f"cgroup v2: {base} has no {'/'.join(missing)} controller (not delegated)"
    if not os.access(base / "cgroup.subtree_control", os.W_OK) or not os.access(base, os.W_OK):
        return None, f"cgroup v2: {base} is not writable (not delegated)"
    leaf, root = base / DAEMON_LEAF, base / name
    try:
        leaf.mkdir(exist_ok=True)
        if own_dir != leaf:
            write_text(leaf / "cgroup.procs", str(os.getpid()))
        _enable(base)
        root.mkdir(exist_ok=True)
        _enable(root)
    except OSError as exc:
        return None, (
            f"cgroup v2: cannot set up {root}: {exc.strerror or exc} (other processes share "
            f"the daemon's cgroup {base}: give the daemon a cgroup of its own)"
        )
    return V2Driver(root), ""

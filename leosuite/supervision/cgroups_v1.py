"""cgroup v1: one directory per controller, ``<mount>/<controller>/<own>/<name>/<key>``.

``<own>`` is the daemon's own cgroup in that controller (from ``/proc/self/cgroup``),
so the servers stay inside whatever limits the daemon itself runs under. The
``memory``, ``pids`` and ``cpu`` controllers are required; ``cpuacct`` (CPU time) is
used when it is mounted. Limits: ``memory.limit_in_bytes``, ``cpu.cfs_quota_us`` over
a ``cpu.cfs_period_us`` of 100 ms, ``pids.max``; the OOM kill counter is the
``oom_kill`` field of ``memory.oom_control``; a kill lists ``cgroup.procs`` (v1 has
no ``cgroup.kill``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from leosuite.supervision.cgroups import (
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

__all__ = ["V1Driver", "V1Group", "open_driver", "own_paths"]

#: The controllers a server's group needs, and the one file that tells each is there.
REQUIRED = {"memory": "memory.limit_in_bytes", "pids": "cgroup.procs", "cpu": "cpu.cfs_quota_us"}
#: Used when mounted: the group's CPU time.
OPTIONAL = {"cpuacct": "cpuacct.usage"}
#: The CFS period the CPU quota is a share of, microseconds.
CFS_PERIOD_US = 100_000
#: A group's key is a server name: one path component, never ``.`` or ``..``.
KEY = re.compile(r"[a-z0-9_][a-z0-9_-]{0,63}")


#: The v1 interface files whose names are server names too: a server of such a name
#: has its group under the name with :data:`_MOVED` added (no server name has a dot).
_FILES = frozenset({"tasks", "notify_on_release", "release_agent"})
_MOVED = ".server"


def check_key(key: str) -> str:
    if KEY.fullmatch(key) is None:
        raise ValueError(f"not a cgroup key: {key!r}")
    return key


def dir_name(key: str) -> str:
    """The directory of the group ``key`` in each controller's root."""
    return check_key(key) + _MOVED if key in _FILES else check_key(key)


def key_of(name: str) -> str | None:
    """The key whose group the directory ``name`` is (None: no group's)."""
    key = name.removesuffix(_MOVED)
    if KEY.fullmatch(key) is None or (key in _FILES) != (key != name):
        return None
    return key


def own_paths(membership: str) -> dict[str, str]:
    """Controller -> the daemon's cgroup path in it, from ``/proc/self/cgroup`` (v1 lines)."""
    out: dict[str, str] = {}
    for line in membership.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[1]:
            continue
        for controller in parts[1].split(","):
            out[controller] = parts[2]
    return out


class V1Group:
    """A server's group: the same key in each controller's root."""

    def __init__(self, key: str, dirs: dict[str, Path]) -> None:
        self.key = key
        self._dirs = dirs

    @property
    def path(self) -> str:
        return str(self._dirs["memory"])

    def _file(self, controller: str, name: str) -> Path:
        return self._dirs[controller] / name

    def set_limits(
        self, memory_bytes: int | None, cpu_percent: int | None, pids: int | None
    ) -> None:
        write_text(self._file("memory", "memory.limit_in_bytes"), str(memory_bytes or -1))
        write_text(self._file("cpu", "cpu.cfs_period_us"), str(CFS_PERIOD_US))
        quota = cpu_percent * CFS_PERIOD_US // 100 if cpu_percent else -1
        write_text(self._file("cpu", "cpu.cfs_quota_us"), str(quota))
        write_text(self._file("pids", "pids.max"), str(pids) if pids else "max")

    def add(self, pid: int) -> None:
        for directory in self._dirs.values():
            write_text(directory / "cgroup.procs", str(pid))

    def procs_paths(self) -> list[Path]:
        return [directory / "cgroup.procs" for directory in self._dirs.values()]

    def open_procs(self) -> list[int]:
        fds: list[int] = []
        try:
            for directory in self._dirs.values():
                fds.append(os.open(directory / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC))
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        return fds

    def pids(self) -> list[int]:
        seen: set[int] = set()
        for directory in self._dirs.values():
            seen.update(read_pids(directory / "cgroup.procs"))
        return sorted(seen)

    def kill(self, *, rounds: int = KILL_ROUNDS) -> int:
        # The pids controller first: its limit bounds a fork bomb while it is killed.
        order = sorted(self._dirs, key=lambda c: c != "pids")
        return sum(kill_listed(self._dirs[c] / "cgroup.procs", rounds=rounds) for c in order)

    def stats(self) -> CgroupStats:
        memory = self._dirs["memory"]
        usage = read_int(memory / "memory.usage_in_bytes")
        inactive = read_keyed(memory / "memory.stat").get("total_inactive_file", 0)
        cpu: float | None = None
        if "cpuacct" in self._dirs:
            cpu = read_int(self._dirs["cpuacct"] / "cpuacct.usage") / 1e9
        return CgroupStats(
            memory_bytes=max(0, usage - inactive),
            memory_peak_bytes=read_int(memory / "memory.max_usage_in_bytes"),
            cpu_seconds=cpu,
            processes=len(self.pids()),
            tasks=read_int(self._dirs["pids"] / "pids.current"),
        )

    def oom_kills(self) -> int:
        return read_keyed(self._dirs["memory"] / "memory.oom_control").get("oom_kill", 0)

    def oom_killed(self, since: int = 0) -> bool:
        return self.oom_kills() > since

    def remove(self) -> None:
        for directory in self._dirs.values():
            remove_dir(directory)


class V1Driver:
    """Groups in each controller's ``<own>/<name>`` directory."""

    version = 1

    def __init__(self, roots: dict[str, Path]) -> None:
        self._roots = roots

    @property
    def root(self) -> str:
        return str(self._roots["memory"])

    def create(self, key: str) -> Group:
        dirs = {c: root / dir_name(key) for c, root in self._roots.items()}
        for directory in dirs.values():
            directory.mkdir(parents=True, exist_ok=True)  # the root again, if it was removed
        return V1Group(key, dirs)

    def find(self, key: str) -> Group | None:
        dirs = {c: root / dir_name(key) for c, root in self._roots.items()}
        if not all(directory.is_dir() for directory in dirs.values()):
            return None
        return V1Group(key, dirs)

    def keys(self) -> list[str]:
        try:
            names = os.listdir(self._roots["memory"])
        except OSError:
            return []
        memory = self._roots["memory"]
        return sorted(k for n in names if (k := key_of(n)) and (memory / n).is_dir())

    def close(self) -> None:
        for key in self.keys():
            group = self.find(key)
            if group is not None and not group.pids():
                try:
                    group.remove()
                except OSError:
                    continue
        for root in self._roots.values():
            try:
                remove_dir(root)
            except OSError:
                continue  # a server left running keeps its group


def open_driver(mount: Path, membership: str, name: str) -> tuple[CgroupDriver | None, str]:
    """The v1 driver rooted at ``<controller>/<own>/<name>``, made if missing; None
    with what is missing or not writable."""
    check_key(name)
    own = own_paths(membership)
    found: dict[str, Path] = {}
    for controller, marker in (REQUIRED | OPTIONAL).items():
        directory = mount / controller / own.get(controller, "/").lstrip("/")
        if controller in own and (directory / marker).exists():
            found[controller] = directory
        elif controller in REQUIRED:
            return None, f"cgroup v1: no {controller} controller at {mount / controller}"
    roots: dict[str, Path] = {}
    for controller, directory in found.items():
        root = directory / name
        try:
            root.mkdir(exist_ok=True)
            writable = os.access(root / "cgroup.procs", os.W_OK)
        except OSError as exc:
            writable, why = False, f"cannot create {root}: {exc.strerror or exc}"
        else:
            why = f"{root} is not writable"
        if writable:
            roots[controller] = root
        elif controller in REQUIRED:
            V1Driver(roots).close()  # what this attempt made, and nothing else
            return None, f"cgroup v1: {why}"
    return V1Driver(roots), ""

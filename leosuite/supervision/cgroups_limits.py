"""The servers' resource limits as the supervision uses them: :class:`ServerLimits`.

It holds the ``limits`` settings and the cgroup driver (None where no cgroup can be
made, with the reason). Each server's limits are its settings ``memory_mb``,
``cpu_percent`` (percent of one core) and ``pids_max``; 0 takes the matching
``limits.default_*`` (0 there too: no limit). :func:`refusal` says why a caller may
not set a value (none available, or above a ceiling for a non-ADMIN); the API layer
decides who is an ADMIN. Every method that touches the cgroup filesystem runs it in
a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

import trio

from leosuite.errors import ProcessError, StartupError
from leosuite.supervision.batched import Batched
from leosuite.supervision.cgroups import CgroupDriver, Group, detect
from leosuite.supervision.stats import GroupStats

if TYPE_CHECKING:
    from leosuite.settings import LimitsSettings

__all__ = [
    "LIMIT_SETTINGS",
    "Limits",
    "ServerLimits",
    "open_limits",
    "oom_reason",
    "sweep_group",
]

log = logging.getLogger(__name__)

#: The per-server settings, and the ``limits`` keys of their ceiling and default.
LIMIT_SETTINGS = {
    "memory_mb": ("max_memory_mb", "default_memory_mb"),
    "cpu_percent": ("max_cpu_percent", "default_cpu_percent"),
    "pids_max": ("max_pids", "default_pids_max"),
}
#: How a refusal and a form call each setting.
_LABELS = {
    "memory_mb": "Memory limit (MiB)",
    "cpu_percent": "CPU limit (%)",
    "pids_max": "Max processes",
}
MiB = 1024 * 1024


class Limits(NamedTuple):
    """One server's effective limits (0: none)."""

    memory_mb: int = 0
    cpu_percent: int = 0
    pids_max: int = 0


def oom_reason(memory_mb: int) -> str:
    """The exit reason of a server the kernel killed for its memory limit."""
    return f"killed: out of memory (limit {memory_mb} MiB)"


def _sweep(asked: tuple[Group, int]) -> tuple[int, bool]:
    group, oom_since = asked
    return group.kill(), group.oom_killed(oom_since)


#: The sweeps of servers that exit together (a bulk stop) run in one worker-thread job.
_SWEEPS: Batched[tuple[Group, int], tuple[int, bool]] = Batched(_sweep)


async def sweep_group(group: Group, oom_since: int) -> tuple[int, bool]:
    """Once a server's process has exited: kill what is left in its cgroup; how many
    were, and whether the OOM kill counter rose above ``oom_since`` during the run."""
    return await _SWEEPS.run((group, oom_since))


class ServerLimits:
    """The ``limits`` settings and the cgroup driver, for the fleet and the API."""

    def __init__(
        self,
        settings: LimitsSettings | None = None,
        driver: CgroupDriver | None = None,
        reason: str = "limits.enabled is off (set it to auto or on)",
    ) -> None:
        self.settings = settings
        self.driver = driver
        #: Why there is no driver ("" when there is one).
        self.reason = "" if driver is not None else reason
        self._cpu: dict[str, tuple[float, float]] = {}

    @property
    def available(self) -> bool:
        return self.driver is not None

    # ---------------------------------------------------------------- settings

    def _limit(self, key: str, which: int) -> int:
        if self.settings is None:
            return 0
        value = getattr(self.settings, LIMIT_SETTINGS[key][which])
        return int(value)

    def ceiling(self, key: str) -> int:
        """The most a non-ADMIN may set ``key`` to (0: no ceiling)."""
        return self._limit(key, 0)

    def resolve(self, settings: Mapping[str, object]) -> Limits:
        """A server's effective limits: its settings, else the defaults; all 0 when no
        cgroup can be made (the defaults then apply to nothing)."""
        if self.driver is None:
            return Limits()
        values = []
        for key in LIMIT_SETTINGS:
            given = settings.get(key) or 0
            values.append(int(given) if isinstance(given, int) and given else self._limit(key, 1))
        return Limits(*values)

    def refusal(
        self, given: Mapping[str, object], current: Mapping[str, object], *, admin: bool
    ) -> tuple[str, str, bool] | None:
        """Why the limits in ``given`` may not be set: ``(field, message, forbidden)``
        (``forbidden``: a ceiling an ADMIN could pass), or None. A value equal to the
        current one, and 0 (none), are always accepted."""
        for key in LIMIT_SETTINGS:
            value = given.get(key)
            if not isinstance(value, int) or value == current.get(key, 0) or value == 0:
                continue
            if self.driver is None:
                return key, f"resource limits are not available here: {self.reason}", False
            top = self.ceiling(key)
            if top and value > top and not admin:
                limit = f"limits.{LIMIT_SETTINGS[key][0]}"
                message = f"{_LABELS[key]} may be at most {top} ({limit}) unless set by an ADMIN"
                return key, message, True
        return None

    def annotate(self, items: list[dict[str, object]], *, admin: bool, fields: bool = True) -> None:
        """Show the ceilings in each limit's description and, with ``fields``, as its
        ``ceiling`` (and, for a non-ADMIN, its ``max``); where no cgroup can be made,
        say why the limits do nothing."""
        for item in items:
            key = item.get("name")
            if not isinstance(key, str) or key not in LIMIT_SETTINGS:
                continue
            notes = [str(item.get("description") or "")]
            top = self.ceiling(key)
            if self.driver is None:
                notes.append(f"Not available here: {self.reason}.")
            elif top:
                notes.append(f"Ceiling for non-ADMIN owners: {top}.")
                if not admin and fields:
                    item["max"] = top
            item["description"] = " ".join(n for n in notes if n)
            if fields:
                item["ceiling"] = top

    # ---------------------------------------------------------------- groups

    async def group_for_start(self, key: str, limits: Limits) -> tuple[Group, int] | None:
        """The server's group, made or reused, with its limits applied, and its OOM kill
        counter before the start; None where no cgroup can be made. ProcessError when
        it cannot be set up."""
        driver = self.driver
        if driver is None:
            return None

        def prepare() -> tuple[Group, int]:
            group = driver.create(key)
            group.set_limits(
                limits.memory_mb * MiB or None, limits.cpu_percent or None, limits.pids_max or None
            )
            return group, group.oom_kills()

        try:
            return await trio.to_thread.run_sync(prepare)
        except (OSError, ValueError) as exc:
            message = getattr(exc, "strerror", None) or str(exc)
            raise ProcessError(f"cannot set up the server's cgroup: {message}") from exc

    async def group_for_adopt(self, key: str) -> tuple[Group, int] | None:
        """The group of a server found running (None when it has none)."""
        driver = self.driver
        if driver is None:
            return None

        def find() -> tuple[Group, int] | None:
            group = driver.find(key)
            return None if group is None else (group, group.oom_kills())

        try:
            return await trio.to_thread.run_sync(find)
        except (OSError, ValueError):
            log.exception("server %s: cannot read its cgroup", key)
            return None

    async def sweep(self, key: str) -> int:
        """Kill whatever is left in the server's group (none: 0)."""
        driver = self.driver
        if driver is None:
            return 0

        def kill() -> int:
            group = driver.find(key)
            return 0 if group is None else group.kill()

        try:
            return await trio.to_thread.run_sync(kill)
        except (OSError, ValueError):
            log.exception("server %s: cannot kill what is left in its cgroup", key)
            return 0

    async def discard(self, key: str) -> None:
        """Kill what is left in the server's group and remove it (a destroy)."""
        driver = self.driver
        self._cpu.pop(key, None)
        if driver is None:
            return

        def remove() -> None:
            group = driver.find(key)
            if group is not None:
                group.kill()
                group.remove()

        try:
            await trio.to_thread.run_sync(remove)
        except (OSError, ValueError):
            log.exception("server %s: cannot remove its cgroup", key)

    def close(self) -> None:
        """Remove the groups no process is in, and the root when it is empty."""
        if self.driver is not None:
            try:
                self.driver.close()
            except OSError:
                log.exception("cannot remove the servers' cgroups")

    # ---------------------------------------------------------------- stats

    def sample(self, groups: Mapping[str, Group], now: float) -> dict[str, GroupStats]:
        """Stats of each group (sync: run it in a worker thread); CPU % from the CPU
        time since the previous sample of that server (0 on its first)."""
        out: dict[str, GroupStats] = {}
        for key, group in groups.items():
            try:
                read = group.stats()
            except OSError:
                continue
            cpu = read.cpu_seconds
            percent = 0.0
            if cpu is not None:
                before = self._cpu.get(key)
                if before is not None and now > before[0]:
                    percent = round(100.0 * max(0.0, cpu - before[1]) / (now - before[0]), 1)
                self._cpu[key] = (now, cpu)
            out[key] = GroupStats(
                cpu_percent=percent,
                rss_bytes=read.memory_bytes,
                threads=read.tasks,
                processes=read.processes,
                cpu_seconds=cpu or 0.0,
            )
        for gone in set(self._cpu) - set(groups):
            del self._cpu[gone]
        return out


def open_limits(settings: LimitsSettings) -> ServerLimits:
    """The limits as configured: StartupError when ``limits.enabled`` is on and no
    cgroup can be made; with ``auto`` the reason is logged and servers run unlimited."""
    if settings.enabled == "off":
        return ServerLimits(settings, None)
    found = detect(settings.cgroup_name, mount=settings.cgroup_mount)
    if found.driver is None:
        if settings.enabled == "on":
            raise StartupError(f"limits.enabled is on, but {found.reason}")
        log.info("resource limits are not available: %s", found.reason)
        return ServerLimits(settings, None, found.reason)
    log.info("resource limits: cgroup v%d at %s", found.driver.version, found.driver.root)
    return ServerLimits(settings, found.driver)

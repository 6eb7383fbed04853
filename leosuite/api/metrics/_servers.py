"""The per-server series of a scrape, in one pass over the servers.

A scrape of a thousand servers holds about ten thousand samples, and most of them
hold still between scrapes. Each server keeps its label dicts and the samples the last
scrape made, and a sample whose value did not change is the same object again: no
allocation for it, and the family's equality with the last scrape's (which decides
whether its text is written again) is a pass of identity checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.samples import Sample

from ...errors import LeosuiteError
from ...supervision.states import ACTIVE_STATES

if TYPE_CHECKING:
    from ...supervision.manager import ServerManager

__all__ = ["ServerSeries"]

#: The only label of the per-server series; ``leosuite_server_info`` adds type and owner.
_SERVER = ["server"]

#: The families after info and state, in their order: name, help, whether a counter.
_FAMILIES: tuple[tuple[str, str, bool], ...] = (
    ("up", "1 while the server's process exists (starting, running, stopping)", False),
    ("uptime_seconds", "Seconds since the current process was spawned", False),
    ("restarts", "Automatic restarts since the daemon started", True),
    ("last_exit_code", "Exit code of the last process (when known)", False),
    ("cpu_seconds", "CPU seconds of the process group's live processes", True),
    ("memory_rss_bytes", "Resident memory of the process group", False),
    ("threads", "Threads of the process group", False),
    ("console_bytes", "Console bytes written (the console's end index)", True),
    ("console_readers", "Tasks following the console (polls, streams)", False),
)
_UP, _UPTIME, _RESTARTS, _EXIT, _CPU, _RSS, _THREADS, _CONSOLE, _READERS = range(len(_FAMILIES))
#: Each family's sample name (a counter's ends in ``_total``, as ``add_metric`` names it).
_SAMPLE_NAMES = tuple(
    f"leosuite_server_{name}{'_total' if counter else ''}" for name, _, counter in _FAMILIES
)


def _families() -> list[Metric]:
    """Empty families of one scrape: info, state, then :data:`_FAMILIES`."""
    families: list[Metric] = [
        InfoMetricFamily(
            "leosuite_server", "1, labelled with the server's type and owner", labels=_SERVER
        ),
        GaugeMetricFamily(
            "leosuite_server_state",
            "1, labelled with the server's current state",
            labels=[*_SERVER, "state"],
        ),
    ]
    for name, doc, counter in _FAMILIES:
        kind = CounterMetricFamily if counter else GaugeMetricFamily
        families.append(kind(f"leosuite_server_{name}", doc, labels=_SERVER))
    return families


class _Server:
    """One server's label dict and the samples the last scrape made of it."""

    __slots__ = ("info", "labels", "name", "state", "values")

    def __init__(self, name: str) -> None:
        self.name = name
        self.labels = {"server": name}
        self.info: Sample | None = None
        self.state: Sample | None = None
        self.values: list[Sample | None] = [None] * len(_FAMILIES)

    def sample(self, index: int, value: float) -> Sample:
        """The sample of family ``index``: the last one while its value holds."""
        old = self.values[index]
        if old is not None and old.value == value:
            return old
        new = self.values[index] = Sample(_SAMPLE_NAMES[index], self.labels, value)
        return new

    def info_sample(self, stype: str, owner: str) -> Sample:
        old = self.info
        if old is not None and old.labels["type"] == stype and old.labels["owner"] == owner:
            return old
        labels = {"server": self.name, "type": stype, "owner": owner}
        new = self.info = Sample("leosuite_server_info", labels, 1.0)
        return new

    def state_sample(self, state: str) -> Sample:
        old = self.state
        if old is not None and old.labels["state"] == state:
            return old
        labels = {"server": self.name, "state": state}
        new = self.state = Sample("leosuite_server_state", labels, 1.0)
        return new


class ServerSeries:
    """Reads every server's series; keeps what each scrape made for the next one."""

    def __init__(self) -> None:
        self._servers: dict[str, _Server] = {}

    def collect(self, manager: ServerManager, owners: Mapping[int, str]) -> Sequence[Metric]:
        """The per-server families (samples in the order of the servers' names);
        ``owners`` names the accounts by id."""
        families = _families()
        info, state, *rest = (f.samples for f in families)
        up, uptime, restarts, exit_code, cpu, rss, threads, console_bytes, readers = rest
        last, self._servers = self._servers, {}
        for name in manager.names():
            record = manager.find_record(name)
            if record is None:
                continue
            try:
                supervisor = manager.supervisor(name)
                console = manager.console(name)
            except (LeosuiteError, KeyError):
                continue  # destroyed while the scrape ran
            server = self._servers[name] = last.get(name) or _Server(name)
            owner = owners.get(record.owner_id, "") if record.owner_id is not None else ""
            # Type and owner ride on one info series a server, not on each of its series.
            info.append(server.info_sample(record.type, owner))
            status = supervisor.status()
            # The current state only: one sample a server instead of one per state.
            state.append(server.state_sample(status.state.value))
            up.append(server.sample(_UP, 1.0 if status.state in ACTIVE_STATES else 0.0))
            uptime.append(server.sample(_UPTIME, status.uptime or 0.0))
            restarts.append(server.sample(_RESTARTS, status.restarts))
            if status.exit_code is not None:
                exit_code.append(server.sample(_EXIT, status.exit_code))
            stats = supervisor.stats
            if stats is not None:
                cpu.append(server.sample(_CPU, stats.cpu_seconds))
                rss.append(server.sample(_RSS, stats.rss_bytes))
                threads.append(server.sample(_THREADS, stats.threads))
            # The end the console watch last saw: no system call a server.
            console_bytes.append(server.sample(_CONSOLE, console.known_end))
            readers.append(server.sample(_READERS, console.waiting))
        return families

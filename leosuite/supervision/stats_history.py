"""The last hour of each server's resource samples, kept in memory for the charts.

The fleet records one sample per server process per stats pass (every
``servers.stats_interval``); each server keeps at most :data:`SPAN` seconds of them
and at most :data:`MAX_SAMPLES`, whichever is fewer, so memory stays bounded whatever
the interval. A destroyed server's samples are forgotten; a daemon restart starts
with none.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from leosuite.supervision.stats import GroupStats

__all__ = ["MAX_SAMPLES", "SPAN", "Sample", "StatsHistory"]

#: Seconds of samples kept per server.
SPAN = 3600.0
#: The most samples kept per server (an hour at one per second).
MAX_SAMPLES = 3600


class Sample(NamedTuple):
    #: Wall-clock time of the sample (Unix seconds).
    t: float
    cpu: float
    memory: int
    threads: int


class StatsHistory:
    """Samples per server name, oldest first; ``now`` gives the wall-clock time."""

    def __init__(self, interval: float, now: Callable[[], float]) -> None:
        self.interval = interval
        self._now = now
        #: The most samples one server keeps: an hour's worth at ``interval``.
        self.max_samples = max(1, min(MAX_SAMPLES, math.ceil(SPAN / interval)))
        self._samples: dict[str, deque[Sample]] = {}

    def record(self, name: str, stats: GroupStats) -> None:
        """Add a sample of ``name`` taken now, dropping what is beyond the bounds."""
        kept = self._samples.get(name)
        if kept is None:
            kept = self._samples[name] = deque(maxlen=self.max_samples)
        now = self._now()
        kept.append(Sample(round(now, 3), stats.cpu_percent, stats.rss_bytes, stats.threads))
        self._prune(kept, now)

    def samples(self, name: str) -> list[Sample]:
        """The samples of ``name`` from the last :data:`SPAN` seconds, oldest first."""
        kept = self._samples.get(name)
        if kept is None:
            return []
        self._prune(kept, self._now())
        return list(kept)

    def forget(self, name: str) -> None:
        self._samples.pop(name, None)

    def __len__(self) -> int:
        """How many servers have samples."""
        return len(self._samples)

    @staticmethod
    def _prune(kept: deque[Sample], now: float) -> None:
        while kept and kept[0].t < now - SPAN:
            kept.popleft()

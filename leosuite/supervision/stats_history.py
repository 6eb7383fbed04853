"""The last hour of each server's resource samples, kept in memory for the charts.

The fleet records one sample per server process per stats pass: every
``servers.stats_interval`` while someone watches the live figures, every
:attr:`StatsHistory.interval` (thirty stats intervals) otherwise; each server keeps at
most :data:`SPAN` seconds of them and at most :data:`MAX_SAMPLES`, whichever is fewer,
so memory stays bounded whatever the interval. A destroyed server's samples are
forgotten; a daemon restart starts with none.

A server's samples live in a ring of four primitive arrays (time as a double, CPU as
a float, memory as an unsigned 64-bit and threads as an unsigned 32-bit integer:
24 bytes a sample), grown by doubling up to the bound, so a thousand servers' hour
costs tens of megabytes, not hundreds; :meth:`StatsHistory.samples` builds the
records only when asked.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from typing import NamedTuple, TypeVar

from leosuite.supervision.stats import GroupStats

__all__ = ["MAX_SAMPLES", "SPAN", "Sample", "StatsHistory"]

#: Seconds of samples kept per server.
SPAN = 3600.0
#: The most samples kept per server (an hour at one per second).
MAX_SAMPLES = 3600
#: The first ring size of a server; it doubles as samples come, up to the bound.
_FIRST_SIZE = 16
#: The largest value each unsigned column holds (a larger one is kept as this).
_MAX_MEMORY = (1 << 64) - 1
_MAX_THREADS = (1 << 32) - 1

_T = TypeVar("_T", int, float)


class Sample(NamedTuple):
    #: Wall-clock time of the sample (Unix seconds).
    t: float
    cpu: float
    memory: int
    threads: int


class _Ring:
    """One server's samples: slots ``start`` .. ``start + count`` (modulo the size) of
    four parallel arrays, oldest first."""

    __slots__ = ("count", "cpu", "memory", "start", "t", "threads")

    def __init__(self) -> None:
        self.t = array("d")
        self.cpu = array("f")
        self.memory = array("Q")
        self.threads = array("I")
        self.start = 0
        self.count = 0

    def push(self, sample: Sample, bound: int) -> None:
        size = len(self.t)
        if self.count == size and size < bound:
            self._grow(min(bound, max(_FIRST_SIZE, 2 * size)))
            size = len(self.t)
        if self.count == size:  # full at the bound: the oldest goes
            slot = self.start
            self.start = (self.start + 1) % size
        else:
            slot = (self.start + self.count) % size
            self.count += 1
        self.t[slot] = sample.t
        self.cpu[slot] = sample.cpu
        self.memory[slot] = min(max(sample.memory, 0), _MAX_MEMORY)
        self.threads[slot] = min(max(sample.threads, 0), _MAX_THREADS)

    def drop_before(self, oldest: float) -> None:
        size = len(self.t)
        while self.count and self.t[self.start] < oldest:
            self.start = (self.start + 1) % size
            self.count -= 1
        if not self.count:
            self.start = 0

    def records(self) -> list[Sample]:
        size = len(self.t)
        out = []
        for k in range(self.count):
            i = (self.start + k) % size
            # A float column keeps about seven digits: two decimals are what it means.
            out.append(Sample(self.t[i], round(self.cpu[i], 2), self.memory[i], self.threads[i]))
        return out

    def _grow(self, size: int) -> None:
        """Resize to ``size`` slots (only when full), the oldest sample first."""
        self.t = _rotated(self.t, self.start, size)
        self.cpu = _rotated(self.cpu, self.start, size)
        self.memory = _rotated(self.memory, self.start, size)
        self.threads = _rotated(self.threads, self.start, size)
        self.start = 0


def _rotated(column: array[_T], start: int, size: int) -> array[_T]:
    """``column`` from slot ``start`` on, then its first slots, padded with zeros to ``size``."""
    grown = column[start:] + column[:start]
    grown.frombytes(bytes(column.itemsize * (size - len(column))))
    return grown


class StatsHistory:
    """Samples per server name, oldest first; ``now`` gives the wall-clock time.
    Samples come at most every ``interval`` seconds and at least every ``longest``
    (the default: ``interval``) while the server runs."""

    def __init__(
        self, interval: float, now: Callable[[], float], *, longest: float | None = None
    ) -> None:
        #: The longest time between two samples of a running server (what tells a
        #: stopped spell from the samples' own spacing).
        self.interval = max(interval, longest or interval)
        self._now = now
        #: The most samples one server keeps: an hour's worth at ``interval``.
        self.max_samples = max(1, min(MAX_SAMPLES, math.ceil(SPAN / interval)))
        self._rings: dict[str, _Ring] = {}

    def record(self, name: str, stats: GroupStats) -> None:
        """Add a sample of ``name`` taken now, dropping what is beyond the bounds."""
        ring = self._rings.get(name)
        if ring is None:
            ring = self._rings[name] = _Ring()
        now = self._now()
        cpu = round(stats.cpu_percent, 2)
        ring.push(Sample(round(now, 3), cpu, stats.rss_bytes, stats.threads), self.max_samples)
        ring.drop_before(now - SPAN)

    def samples(self, name: str) -> list[Sample]:
        """The samples of ``name`` from the last :data:`SPAN` seconds, oldest first."""
        ring = self._rings.get(name)
        if ring is None:
            return []
        ring.drop_before(self._now() - SPAN)
        return ring.records()

    def forget(self, name: str) -> None:
        self._rings.pop(name, None)

    def __len__(self) -> int:
        """How many servers have samples."""
        return len(self._rings)

"""Per-key rate limits: the one limiter every listener and service uses.

A :class:`Limiter` counts events per key (a client address, ``user:NAME``, or one
fixed key for a single connection) over one ``window`` of seconds read from an
injected clock (``trio.current_time`` for scheduling, the daemon's ``now`` for
login failures). One instance serves one of these uses:

========================  =====================================================
``count`` / ``note``      how many events the key had in the last ``window``
                          (at most ``limit`` are remembered)
``allow``                 at most ``limit`` events in any ``window``: one more now?
``take``                  a token bucket: bursts of ``limit``, refilled at
                          ``limit / window`` a second
``first``                 whether an event opens a burst (none opened in the last
                          ``window``), and how many were passed over since
========================  =====================================================

Memory is bounded twice: at most ``max_keys`` keys (a new key evicts the least
recently used one), and a key idle for a whole ``window`` is dropped when the
limiter is next used, since its state is then that of a key never seen (a
``first`` key that passed events over is kept until it reports them).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable

__all__ = ["MAX_KEYS", "InFlight", "Limiter"]

#: How many keys a limiter remembers unless told otherwise.
MAX_KEYS = 10_000


class _Entry:
    __slots__ = ("opened", "skipped", "times", "tokens", "touched")

    def __init__(self, now: float, burst: float) -> None:
        self.touched = now
        self.times: deque[float] | None = None
        self.tokens = burst
        self.opened: float | None = None
        self.skipped = 0


class Limiter:
    """Events per key over a sliding window; bounded by ``max_keys`` and by age."""

    __slots__ = ("_clock", "_entries", "_rate", "limit", "max_keys", "window")

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        window: float,
        limit: int,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if window <= 0 or limit < 1 or max_keys < 1:
            raise ValueError("a limiter needs window > 0, limit >= 1 and max_keys >= 1")
        self._clock = clock
        self.window = window
        self.limit = limit
        self.max_keys = max_keys
        self._rate = limit / window
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    # -- sliding window -------------------------------------------------------------

    def count(self, key: str) -> int:
        """Events noted for ``key`` in the last ``window`` seconds (at most ``limit``)."""
        entry = self._entries.get(key)
        if entry is None or entry.times is None:
            return 0
        now = self._clock()
        if self._idle(entry, now):
            del self._entries[key]
            return 0
        return len(self._recent(entry, now))

    def note(self, key: str) -> None:
        """Record one event for ``key`` now."""
        now = self._clock()
        entry = self._touch(key, now)
        entry.touched = now
        self._recent(entry, now).append(now)

    def allow(self, key: str) -> bool:
        """Record an event and say yes if ``key`` had fewer than ``limit`` in the last
        ``window`` seconds; otherwise record nothing and say no."""
        now = self._clock()
        entry = self._touch(key, now)
        entry.touched = now
        times = self._recent(entry, now)
        if len(times) >= self.limit:
            return False
        times.append(now)
        return True

    # -- token bucket ---------------------------------------------------------------

    def take(self, key: str = "") -> bool:
        """Take one token of ``key``'s bucket if it has one (a limiter that serves a
        single connection leaves the key out)."""
        now = self._clock()
        entry = self._touch(key, now)
        entry.tokens = min(float(self.limit), entry.tokens + (now - entry.touched) * self._rate)
        entry.touched = now
        if entry.tokens >= 1:
            entry.tokens -= 1
            return True
        return False

    # -- bursts -----------------------------------------------------------------------

    def first(self, key: str, *, may_open: bool = True) -> int | None:
        """Note an event. If it opens a burst (none opened for ``key`` in the last
        ``window`` seconds, and ``may_open``), how many events were passed over since
        the previous opening; otherwise None, and it is counted for the next one."""
        now = self._clock()
        entry = self._touch(key, now)
        entry.touched = now
        if not may_open or (entry.opened is not None and entry.opened > now - self.window):
            entry.skipped += 1
            return None
        entry.opened = now
        skipped, entry.skipped = entry.skipped, 0
        return skipped

    # -- bounds -----------------------------------------------------------------------

    def prune(self) -> int:
        """Drop every idle key now (housekeeping); how many."""
        now = self._clock()
        idle = [key for key, entry in self._entries.items() if self._idle(entry, now)]
        for key in idle:
            del self._entries[key]
        return len(idle)

    def _idle(self, entry: _Entry, now: float) -> bool:
        return entry.touched <= now - self.window and not entry.skipped

    def _recent(self, entry: _Entry, now: float) -> deque[float]:
        times = entry.times
        if times is None:
            times = entry.times = deque(maxlen=self.limit)
        start = now - self.window
        while times and times[0] <= start:
            times.popleft()
        return times

    def _touch(self, key: str, now: float) -> _Entry:
        """``key``'s entry, made the most recently used (the caller sets ``touched``).
        Idle keys at the least recently used end go first; a new key past ``max_keys``
        evicts the least recently used one."""
        entries = self._entries
        while entries and self._idle(next(iter(entries.values())), now):
            entries.popitem(last=False)
        entry = entries.get(key)
        if entry is None:
            if len(entries) >= self.max_keys:
                entries.popitem(last=False)
            entry = entries[key] = _Entry(now, float(self.limit))
        else:
            entries.move_to_end(key)
        return entry


class InFlight:
    """How many attempts per key are under way: counted before the slow check they
    wait for (a password hash), so concurrent attempts see each other and cannot all
    pass a limit before the first result is noted. Bounded by the attempts under way."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def __getitem__(self, key: str) -> int:
        return self._counts.get(key, 0)

    def __len__(self) -> int:
        return len(self._counts)

    def add(self, *keys: str) -> None:
        for key in keys:
            self._counts[key] = self._counts.get(key, 0) + 1

    def remove(self, *keys: str) -> None:
        for key in keys:
            left = self._counts.pop(key, 0) - 1
            if left > 0:
                self._counts[key] = left

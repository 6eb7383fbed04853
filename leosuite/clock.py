"""Wall-clock time derived from trio's clock.

Scheduling uses ``trio.current_time()``; timestamps that are stored or shown
(token expiry, audit entries) come from a :class:`WallClock`, which is anchored to
``time.time()`` once and then advances with trio's clock. Under ``MockClock``
it jumps with it, so expiry logic is testable without sleeping.
"""

from __future__ import annotations

import datetime
import time

import trio

__all__ = ["WallClock", "iso_utc"]


class WallClock:
    """Callable returning unix seconds; create it inside ``trio.run``."""

    def __init__(self, *, start: float | None = None) -> None:
        anchor = time.time() if start is None else start
        self._offset = anchor - trio.current_time()

    def __call__(self) -> float:
        return self._offset + trio.current_time()


def iso_utc(stamp: float) -> str:
    """Unix seconds as ``2026-05-01T12:00:00Z``, the one form every surface shows."""
    moment = datetime.datetime.fromtimestamp(stamp, tz=datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")

"""Wall-clock time derived from trio's clock.

Scheduling uses ``trio.current_time()``; timestamps that are stored or shown
(token expiry, audit entries) come from a :class:`WallClock`, which is anchored to
``time.time()`` once and then advances with trio's clock. Under ``MockClock``
it jumps with it, so expiry logic is testable without sleeping.
"""

from __future__ import annotations

import time

import trio

__all__ = ["WallClock"]


class WallClock:
    """Callable returning unix seconds; create it inside ``trio.run``."""

    def __init__(self, *, start: float | None = None) -> None:
        anchor = time.time() if start is None else start
        self._offset = anchor - trio.current_time()

    def __call__(self) -> float:
        return self._offset + trio.current_time()

"""One lock per server name, so a slow change of one server (a destroy waiting out a
graceful stop) never holds up the creates and destroys of any other.

A create takes its name's lock without waiting (a name being created or destroyed is
not available to it); a destroy waits for the destroy before it. A lock exists only
while someone holds it or waits for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

__all__ = ["NameLocks"]


class NameLocks:
    def __init__(self) -> None:
        self._locks: dict[str, trio.Lock] = {}

    def busy(self, name: str) -> bool:
        """Whether a create or destroy of ``name`` is under way."""
        lock = self._locks.get(name)
        return lock is not None and lock.locked()

    def acquire_nowait(self, name: str) -> None:
        """Hold ``name``'s lock; ``trio.WouldBlock`` when it is held."""
        self._locks.setdefault(name, trio.Lock()).acquire_nowait()

    def release(self, name: str) -> None:
        """Release ``name``'s lock (held by this task); forgotten when nobody waits."""
        lock = self._locks[name]
        lock.release()  # hands it straight to the first waiter, if any
        if not lock.locked():
            del self._locks[name]

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        """Hold ``name``'s lock for the block, after whoever holds it now."""
        lock = self._locks.setdefault(name, trio.Lock())
        try:
            await lock.acquire()
        except BaseException:
            if not lock.locked() and self._locks.get(name) is lock:
                del self._locks[name]
            raise
        try:
            yield
        finally:
            self.release(name)

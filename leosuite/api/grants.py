"""The grants of every server, in memory: what permission checks read synchronously.

The store (:mod:`leosuite.store.grants`) is the truth; the daemon loads it once at start
and every change made through the API updates both, store first. A change wakes the
tasks waiting in :meth:`ServerGrants.wait_changed` (open console subscriptions), so a
revoked right takes effect at once, and calls ``on_changed`` (other nodes of the store
read the grants again: :meth:`ServerGrants.reload`). Entries of a deleted account stay
until the daemon restarts; they are never consulted, since account ids are never reused.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from ..store import grants as grant_table
from ..store.db import Database

__all__ = ["ServerGrants"]

_NONE: frozenset[str] = frozenset()


class ServerGrants:
    def __init__(self) -> None:
        self._rights: dict[tuple[int, int], frozenset[str]] = {}
        self._changed = trio.Event()
        #: Called after this daemon changed a grant.
        self.on_changed: list[Callable[[], None]] = []
        self._local_changes = 0

    async def load(self, db: Database) -> None:
        self._rights = await db.call(grant_table.list_all)

    async def reload(self, db: Database) -> None:
        """Read every grant again (another node changed them) and wake the waiters."""
        while True:  # a change made here while reading would be lost: read again
            before = self._local_changes
            rights = await db.call(grant_table.list_all)
            if before == self._local_changes:
                break
        self._rights = rights
        self._wake()

    def rights(self, server_id: int, account_id: int) -> frozenset[str]:
        """What ``account_id`` was granted on ``server_id`` (empty: nothing)."""
        return self._rights.get((server_id, account_id), _NONE)

    def put(self, server_id: int, account_id: int, rights: frozenset[str]) -> None:
        """Record a grant the store took (an empty set: revoked)."""
        if rights:
            self._rights[(server_id, account_id)] = rights
        else:
            self._rights.pop((server_id, account_id), None)
        self._wake()
        self._local_change()

    def forget_server(self, server_id: int) -> None:
        """Drop the grants of a destroyed server (the store cascades its rows)."""
        for key in [k for k in self._rights if k[0] == server_id]:
            del self._rights[key]
        self._wake()
        self._local_change()

    async def wait_changed(self) -> None:
        """Return after the next change of any grant."""
        await self._changed.wait()

    def _local_change(self) -> None:
        self._local_changes += 1
        for callback in list(self.on_changed):
            callback()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

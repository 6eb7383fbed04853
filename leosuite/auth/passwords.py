"""Password hashing with argon2id, off the trio thread and bounded.

A hash costs tens of milliseconds of CPU and ``memory_kib`` of RAM, so
:class:`PasswordHasher` runs it in a thread of its own behind a
``CapacityLimiter(concurrency)``: a storm of logins queues up instead of
starving the event loop or exhausting memory. That thread runs at a lower
priority (nice :data:`HASH_NICE`), so when the cores are short the event loop
(and the servers) go first and the storm waits. ``verify`` never raises for a
wrong password or a malformed hash, and costs the same for an unknown user
(``stored_hash=None``) as for a known one.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import TypeVar

import argon2
import outcome
import trio
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["HASH_NICE", "PasswordHasher"]

T = TypeVar("T")

#: The nice value of a hashing thread: a tenth of a core's share against a busy
#: thread at nice 0, so a login still ends in a fraction of a second when every core
#: is taken.
HASH_NICE = 10

# A password nobody types: the dummy hash only has to cost a real verification.
_DUMMY_PASSWORD = "leosuite-dummy-password-for-unknown-users"  # noqa: S105


class PasswordHasher:
    """argon2id with explicit parameters (OWASP: 19 MiB, t=2, p=1 by default)."""

    def __init__(
        self,
        *,
        time_cost: int = 2,
        memory_kib: int = 19456,
        parallelism: int = 1,
        concurrency: int = 2,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        self._limiter = trio.CapacityLimiter(concurrency)
        self._dummy_lock = threading.Lock()
        self._dummy_hash: str | None = None

    # -- async (daemon) --------------------------------------------------------

    async def hash(self, password: str) -> str:
        return await self._in_thread(lambda: self.hash_sync(password))

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True only if ``password`` matches ``stored_hash``; ``None`` (unknown
        user) takes as long as a real check and is False."""
        return await self._in_thread(lambda: self.verify_sync(stored_hash, password))

    async def _in_thread(self, job: Callable[[], T]) -> T:
        """``job`` in a new thread at nice :data:`HASH_NICE` (a thread of trio's cache
        would keep the lower priority for the store's calls after it). Like
        ``trio.to_thread.run_sync``, a cancelled caller still waits for it: the
        limiter bounds the hashes that run, not only those that are waited for."""
        async with self._limiter:
            token = trio.lowlevel.current_trio_token()
            done = trio.Event()
            result: list[outcome.Outcome[T]] = []

            def run() -> None:
                with contextlib.suppress(OSError):  # a platform without per-thread nice
                    tid = threading.get_native_id()
                    if os.getpriority(os.PRIO_PROCESS, tid) < HASH_NICE:  # never raised
                        os.setpriority(os.PRIO_PROCESS, tid, HASH_NICE)
                result.append(outcome.capture(job))
                with contextlib.suppress(trio.RunFinishedError):  # the daemon has ended
                    token.run_sync_soon(done.set)

            threading.Thread(target=run, name="leosuite-hash", daemon=True).start()
            with trio.CancelScope(shield=True):
                await done.wait()
            return result[0].unwrap()

    def statistics(self) -> trio.CapacityLimiterStatistics:
        """The limiter's counters: hashes running (``borrowed_tokens``) and waiting."""
        return self._limiter.statistics()

    # -- sync (CLI, worker threads) -------------------------------------------

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify_sync(self, stored_hash: str | None, password: str) -> bool:
        if stored_hash is None:
            self._check(self._dummy(), password)
            return False
        return self._check(stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """True if the hash was made with other parameters (or is not a valid hash)."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True

    def _check(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _dummy(self) -> str:
        with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = self._hasher.hash(_DUMMY_PASSWORD)
            return self._dummy_hash

"""Password hashing with argon2id, off the trio thread and bounded.

A hash costs tens of milliseconds of CPU and ``memory_kib`` of RAM, so
:class:`PasswordHasher` runs it in a worker thread behind a
``CapacityLimiter(concurrency)``: a storm of logins queues up instead of
starving the event loop or exhausting memory. ``verify`` never raises for a
wrong password or a malformed hash, and costs the same for an unknown user
(``stored_hash=None``) as for a known one.
"""

from __future__ import annotations

import threading

import argon2
import trio
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["PasswordHasher"]

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
        return await trio.to_thread.run_sync(self.hash_sync, password, limiter=self._limiter)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True only if ``password`` matches ``stored_hash``; ``None`` (unknown
        user) takes as long as a real check and is False."""
        return await trio.to_thread.run_sync(
            self.verify_sync, stored_hash, password, limiter=self._limiter
        )

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

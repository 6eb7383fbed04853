"""One worker-thread job for the items many tasks ask for at about the same time.

A bulk stop of a thousand servers ends a thousand exits at once; each then has the same
small blocking chore (its cgroup swept, say). Handing each to a worker thread of its own
costs more than the chore: :class:`Batched` runs every item asked for while a job is
under way in the next job, one at a time, started by the first caller. Each item's
result or exception goes back to its own caller. Shielded: a job's results are owed to
every caller in it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import trio

__all__ = ["Batched"]

T = TypeVar("T")
R = TypeVar("R")


class _Waiter(Generic[R]):
    __slots__ = ("done", "error", "finished", "result")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.finished = False  # by the job: result or error is its answer
        self.result: R | None = None
        self.error: BaseException | None = None

    def fail(self, error: BaseException) -> None:
        if not self.finished:
            self.finished = True
            self.error = error
        self.done.set()


class Batched(Generic[T, R]):
    """``await batched.run(item)`` is ``one(item)`` run in a worker thread together
    with the other items asked for meanwhile (``one`` raising for its item only)."""

    def __init__(self, one: Callable[[T], R]) -> None:
        self._one = one
        self._queue: list[tuple[T, _Waiter[R]]] = []
        self._running = False
        #: Jobs run and items handled since the start.
        self.jobs = self.items = 0

    async def run(self, item: T) -> R:
        waiter: _Waiter[R] = _Waiter()
        self._queue.append((item, waiter))
        with trio.CancelScope(shield=True):
            if not self._running:
                await self._drain()
            await waiter.done.wait()
        if waiter.error is not None:
            raise waiter.error
        return waiter.result  # type: ignore[return-value]

    def _all(self, batch: list[tuple[T, _Waiter[R]]]) -> None:
        for item, waiter in batch:
            try:
                waiter.result = self._one(item)
            except Exception as exc:  # the item's own failure, for its caller
                waiter.error = exc
            waiter.finished = True

    async def _drain(self) -> None:
        self._running = True
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                self.jobs += 1
                self.items += len(batch)
                try:
                    await trio.to_thread.run_sync(self._all, batch)
                except BaseException as exc:
                    for _, waiter in batch:
                        waiter.fail(exc)
                    raise
                for _, waiter in batch:
                    waiter.done.set()
        finally:
            self._running = False
            left, self._queue = self._queue, []
            for _, waiter in left:  # the job failed: nobody runs these now
                waiter.fail(RuntimeError("the worker thread job failed"))

"""The backups and restores under way, one per server, and their progress.

A job runs in the backup service's nursery (a caller that goes away does not cut it
short) while its caller waits for the outcome. The archive engine reports progress
from its worker thread, where a job only stores two numbers; a task of the job hands
the progress to the watchers at most :data:`PUBLISH_EVERY` seconds apart, and at once
when the phase changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import msgspec
import trio

from ..errors import Conflict
from .model import Phase, Progress

__all__ = ["PUBLISH_EVERY", "Job", "Jobs", "Watcher"]

#: The shortest time between two progress reports of a job with the same phase.
PUBLISH_EVERY = 0.25

#: Called with each progress report of a watched server (must not block).
Watcher = Callable[[Progress], None]

T = TypeVar("T")


class Job:
    def __init__(self, jobs: Jobs, progress: Progress) -> None:
        self._jobs = jobs
        self.progress = progress
        #: Written by the engine's worker thread: plain numbers only.
        self._done_bytes = 0
        self._total_bytes = 0
        self._sent: tuple[str, int, int] | None = None

    def progress_from_thread(self, done_bytes: int, total_bytes: int) -> None:
        """The engine's progress callback (it runs in a worker thread)."""
        self._done_bytes = done_bytes
        self._total_bytes = total_bytes

    def set_phase(self, phase: Phase) -> None:
        self._collect()
        self.progress.phase = phase
        self.publish()

    def _collect(self) -> None:
        self.progress.done_bytes = self._done_bytes
        self.progress.total_bytes = self._total_bytes

    def publish(self) -> None:
        """Hand the current progress to the watchers, unless it was the last one sent."""
        self._collect()
        p = self.progress
        key = (p.phase, p.done_bytes, p.total_bytes)
        if key == self._sent:
            return
        self._sent = key
        self._jobs.publish(msgspec.structs.replace(p))

    async def tick(self) -> None:
        while True:
            await trio.sleep(PUBLISH_EVERY)
            self.publish()


class Jobs:
    def __init__(self) -> None:
        self.nursery: trio.Nursery | None = None
        self._running: dict[str, Job] = {}
        self._watchers: dict[str, list[Watcher]] = {}

    def progress(self, server: str) -> Progress | None:
        job = self._running.get(server)
        if job is None:
            return None
        job._collect()
        return msgspec.structs.replace(job.progress)

    def begin(self, server: str, progress: Progress) -> Job:
        """Claim ``server`` for a job; Conflict while another one runs on it."""
        if self.nursery is None:
            raise Conflict("backups are not running yet")
        current = self._running.get(server)
        if current is not None:
            what = "restore" if current.progress.phase == "restoring" else "backup"
            raise Conflict(f"a {what} of server {server!r} is running; wait for it to finish")
        job = self._running[server] = Job(self, progress)
        return job

    async def run(self, job: Job, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` as ``job`` in the service's nursery; its result or its error."""
        assert self.nursery is not None
        server = job.progress.server
        done = trio.Event()
        outcome: list[T] = []
        failure: list[BaseException] = []

        async def body() -> None:
            try:
                async with trio.open_nursery() as inner:
                    inner.start_soon(job.tick)
                    try:
                        outcome.append(await work())
                    except Exception as exc:
                        failure.append(exc)
                    finally:
                        inner.cancel_scope.cancel()
                job.set_phase("failed" if failure else "done")
            finally:
                del self._running[server]
                done.set()

        self.nursery.start_soon(body)
        await done.wait()
        if failure:
            raise failure[0]
        if not outcome:  # the service's nursery was cancelled: the daemon stops
            raise Conflict("the daemon is shutting down")
        return outcome[0]

    def publish(self, progress: Progress) -> None:
        for watcher in list(self._watchers.get(progress.server, ())):
            watcher(progress)

    @contextlib.contextmanager
    def watch(self, server: str, watcher: Watcher) -> Iterator[None]:
        self._watchers.setdefault(server, []).append(watcher)
        try:
            yield
        finally:
            watchers = self._watchers[server]
            watchers.remove(watcher)
            if not watchers:
                del self._watchers[server]

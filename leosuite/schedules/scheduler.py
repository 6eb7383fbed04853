"""The scheduler: one task in the daemon's tree that sleeps until the next due run of
any schedule, and is woken when schedules change.

Times of schedules are wall-clock unix seconds from the ``now`` it is given (a
:class:`~leosuite.clock.WallClock`, which advances with trio's clock); its sleeps are
trio's, so ``MockClock`` drives it in tests.

Rules:

* A run due while the daemon was not running is run once at start when its due time is
  at most ``schedules.grace_seconds`` ago; older due times are audited as missed (one
  entry per schedule, with how many).
* Runs of the schedules of one server never overlap: a run waits for the one in
  progress (audited when it had to wait). A schedule due again while its own previous
  run is still going or waiting is skipped that time (audited).
* Each run's outcome and due time are stored with the schedule and audited.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

import msgspec
import trio

from ..clock import iso_utc
from ..store import schedules as schedule_table
from ..store.db import Database
from .model import Schedule, next_due
from .runner import ServerActions, perform

__all__ = ["Audit", "Scheduler"]

log = logging.getLogger(__name__)

#: ``audit(server, message, level)``: record an entry on the server's audit topic.
Audit = Callable[[str, str, str], Awaitable[None]]

#: The most due times of one schedule walked over when looking for the latest missed one.
_MAX_WALK = 100_000


class Scheduler:
    def __init__(
        self,
        db: Database,
        actions: ServerActions,
        *,
        now: Callable[[], float],
        server_name: Callable[[int], str | None],
        audit: Audit,
        grace: float,
        step_timeout: float,
    ) -> None:
        self._db = db
        self._actions = actions
        self._now = now
        self._server_name = server_name
        self._audit = audit
        self._grace = grace
        self._step_timeout = step_timeout
        self._schedules: dict[int, Schedule] = {}
        self._next: dict[int, float] = {}
        self._busy: set[int] = set()
        self._locks: dict[int, trio.Lock] = {}
        self._changed = trio.Event()
        self._nursery: trio.Nursery | None = None
        #: When :meth:`run` began: only runs due before it can have been missed.
        self._started = math.inf

    async def load(self) -> None:
        for schedule in await self._db.call(schedule_table.list_all):
            self._put(schedule)

    def next_run(self, schedule_id: int) -> float | None:
        """When the schedule runs next (None: disabled or unknown)."""
        return self._next.get(schedule_id)

    def running(self, schedule_id: int) -> bool:
        """Whether a run of the schedule is in progress or waiting for its server."""
        return schedule_id in self._busy

    def put(self, schedule: Schedule) -> None:
        """Take a created or changed schedule (as stored)."""
        self._put(schedule)
        self._wake()

    def remove(self, schedule_id: int) -> None:
        self._schedules.pop(schedule_id, None)
        self._next.pop(schedule_id, None)
        self._wake()

    def forget_server(self, server_id: int) -> None:
        """Drop the schedules of a destroyed server (the store cascades its rows)."""
        for sid in [i for i, s in self._schedules.items() if s.server_id == server_id]:
            self.remove(sid)
        # A run under way keeps its lock; no later run starts for a server that is gone.
        self._locks.pop(server_id, None)

    def run_now(self, schedule_id: int) -> bool:
        """Start a run of the schedule at once; False when one is in progress or waiting."""
        schedule = self._schedules.get(schedule_id)
        if schedule is None or schedule_id in self._busy or self._nursery is None:
            return False
        self._busy.add(schedule_id)
        self._nursery.start_soon(self._run, schedule, None)
        return True

    def close(self) -> None:
        """Stop scheduling (the daemon stops or reloads): no run starts any more, and
        runs in progress end at their next step."""
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._started = self._now()
            task_status.started()
            try:
                while True:
                    changed = self._changed
                    wait = self._handle_due(nursery)
                    with trio.move_on_after(wait):
                        await changed.wait()
            finally:
                self._nursery = None

    def _put(self, schedule: Schedule) -> None:
        self._schedules[schedule.id] = schedule
        if not schedule.enabled:
            self._next.pop(schedule.id, None)
            return
        after = schedule.anchor_at if schedule.last_due is None else schedule.last_due
        self._next[schedule.id] = next_due(schedule.timing, after=after, anchor=schedule.anchor_at)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _handle_due(self, nursery: trio.Nursery) -> float:
        """Start or note every due run; seconds until the next one."""
        now = self._now()
        for sid, due in sorted(self._next.items(), key=lambda item: item[1]):
            if due > now:
                continue
            schedule = self._schedules[sid]
            if self._server_name(schedule.server_id) is None:
                self._schedules.pop(sid)  # its server was destroyed (the store cascaded)
                del self._next[sid]
                continue
            latest, skipped = self._latest_due(schedule, due, now)
            self._next[sid] = next_due(schedule.timing, after=now, anchor=schedule.anchor_at)
            if skipped:
                nursery.start_soon(self._missed, schedule, due, skipped)
            if latest < self._started and now - latest > self._grace:
                nursery.start_soon(self._missed, schedule, latest, 1)
            elif sid in self._busy:
                still = "skipped: its previous run is still going"
                nursery.start_soon(self._note, schedule, latest, still)
            else:
                self._busy.add(sid)
                nursery.start_soon(self._run, schedule, latest)
        if not self._next:
            return math.inf
        return max(0.0, min(self._next.values()) - now)

    @staticmethod
    def _latest_due(schedule: Schedule, due: float, now: float) -> tuple[float, int]:
        """The latest due time at or before ``now`` from ``due`` on, and how many
        earlier ones there were."""
        skipped = 0
        while skipped < _MAX_WALK:
            following = next_due(schedule.timing, after=due, anchor=schedule.anchor_at)
            if following > now:
                break
            due = following
            skipped += 1
        return due, skipped

    async def _missed(self, schedule: Schedule, due: float, count: int) -> None:
        runs = "a run" if count == 1 else f"{count} runs"
        await self._note(
            schedule,
            due,
            f"missed {runs} due at {iso_utc(due)} or earlier (the daemon was not running; "
            f"beyond schedules.grace_seconds)",
            level="warning",
        )

    async def _note(
        self, schedule: Schedule, due: float | None, result: str, *, level: str = "info"
    ) -> None:
        server = self._server_name(schedule.server_id)
        if server is None or schedule.id not in self._schedules:
            return  # destroyed or deleted meanwhile
        await self._store_result(schedule, due, result)
        await self._audit(server, f"schedule {schedule.name}: {result}", level)

    async def _store_result(self, schedule: Schedule, due: float | None, result: str) -> None:
        last_due = schedule.last_due if due is None else due
        try:
            await self._db.call(
                lambda conn: schedule_table.set_last(conn, schedule.id, last_due, result)
            )
        except Exception:  # a full disk: the audit entry still says what happened
            log.exception("could not store the outcome of schedule %s", schedule.id)
        current = self._schedules.get(schedule.id)
        if current is not None:
            self._schedules[schedule.id] = msgspec.structs.replace(
                current, last_due=last_due, last_result=result[:300]
            )

    async def _run(self, schedule: Schedule, due: float | None) -> None:
        server = self._server_name(schedule.server_id)
        try:
            if server is None:
                return
            lock = self._locks.setdefault(schedule.server_id, trio.Lock())
            if lock.locked():
                await self._audit(
                    server,
                    f"schedule {schedule.name}: waits for another schedule of {server} to finish",
                    "info",
                )
            async with lock:
                if schedule.id not in self._schedules:
                    return  # deleted while it waited
                schedule = self._schedules[schedule.id]
                result = await perform(
                    self._actions, schedule, server, step_timeout=self._step_timeout
                )
        finally:
            # Free before storing: a due time is never skipped for the store's sake.
            self._busy.discard(schedule.id)
        level = "warning" if result.startswith("failed") else "info"
        how = "run now" if due is None else f"due at {iso_utc(due)}"
        await self._note(schedule, due, f"{result} ({how})", level=level)

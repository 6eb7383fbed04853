"""The daemon's scheduler, built on its servers and audit log, and started in its tree."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ..audit import Actor
from ..errors import Conflict
from .actions import ManagerActions
from .scheduler import Scheduler

if TYPE_CHECKING:
    from ..api.context import ApiContext

__all__ = ["start_scheduler"]

#: The name schedule runs are audited under.
ACTOR = Actor(name="(schedule)")


async def start_scheduler(ctx: ApiContext, nursery: trio.Nursery) -> Scheduler:
    """Load every schedule, start the scheduler in ``nursery`` and put it in ``ctx``."""
    manager = ctx.servers

    def server_name(server_id: int) -> str | None:
        for name in manager.names():
            if manager.record(name).id == server_id:
                return name
        return None

    async def audit(server: str, message: str, level: str) -> None:
        await ctx.audit.record_done("server", message, actor=ACTOR, level=level, session=server)

    async def backup(server: str) -> None:
        if ctx.backups is None:
            raise Conflict("backups are not running")
        await ctx.backups.create(manager.record(server), actor=ACTOR, by="schedule")

    settings = ctx.settings.schedules
    scheduler = Scheduler(
        ctx.db,
        ManagerActions(manager, backup),
        now=ctx.now,
        server_name=server_name,
        audit=audit,
        grace=settings.grace_seconds,
        step_timeout=settings.step_timeout,
    )
    await scheduler.load()
    ctx.schedules = scheduler
    await nursery.start(scheduler.run)
    return scheduler

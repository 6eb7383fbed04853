"""The daemon's periodic chores, every ``housekeeping.interval`` seconds: save the
consoles' read indexes, stop servers whose starter lost the right to run them
unattended, purge expired tokens, bans, old audit entries and what destroyed
servers left beyond ``servers.kept_days``, and give freed memory back to the system
(every ``TRIM_INTERVAL`` seconds). A failing pass is logged and retried on the next one."""

from __future__ import annotations

import logging

import trio

from .api.context import ApiContext
from .api.kept_ops import purge_expired_kept
from .api.server_ops import stop_unattended_servers
from .audit import purge_audit
from .memory_trim import release_free_memory

__all__ = ["run_housekeeping"]

log = logging.getLogger("leosuite.daemon")

#: The most seconds between two looks at what destroyed servers left (each walks
#: their trees); a short ``servers.kept_days`` is looked at ten times per period.
KEPT_INTERVAL = 600.0
#: The most seconds between two returns of freed heap memory to the system.
TRIM_INTERVAL = 60.0


async def run_housekeeping(
    ctx: ApiContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    settings = ctx.settings.housekeeping
    kept_days = ctx.settings.servers.kept_days
    kept_every = min(KEPT_INTERVAL, kept_days * 86400.0 / 10)
    kept_due = trim_due = trio.current_time()
    task_status.started()
    while True:
        await trio.sleep(settings.interval)
        try:
            await ctx.servers.save_read_indexes()
            await stop_unattended_servers(ctx)  # ADMIN taken away on the store directly
            purged = await ctx.auth.purge_expired()
            if purged:
                log.info("housekeeping: %d expired tokens removed", purged)
            await ctx.bans.purge_expired()
            dropped = await purge_audit(ctx.db, settings, ctx.now())
            if dropped:
                log.info("housekeeping: %d old audit log entries removed", dropped)
            if kept_days and trio.current_time() >= kept_due:  # 0: kept for ever
                kept_due = trio.current_time() + kept_every
                await purge_expired_kept(ctx)
            if trio.current_time() >= trim_due:
                trim_due = trio.current_time() + TRIM_INTERVAL
                await release_free_memory()
        except Exception:
            log.exception("housekeeping failed; will retry")

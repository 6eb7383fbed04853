"""The daemon's periodic chores, every ``housekeeping.interval`` seconds: save the
consoles' read indexes, stop servers whose starter lost the right to run them
unattended, and purge expired tokens, bans and old audit entries. A failing pass is
logged and retried on the next one."""

from __future__ import annotations

import logging

import trio

from .api.context import ApiContext
from .api.server_ops import stop_unattended_servers
from .audit import purge_audit

__all__ = ["run_housekeeping"]

log = logging.getLogger("leosuite.daemon")


async def run_housekeeping(
    ctx: ApiContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    settings = ctx.settings.housekeeping
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
        except Exception:
            log.exception("housekeeping failed; will retry")

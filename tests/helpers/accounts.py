"""Accounts made straight through the store while the daemon runs."""

from __future__ import annotations

import trio

from leosuite.auth import accounts as account_ops
from leosuite.auth.passwords import PasswordHasher
from tests.helpers.daemon import RunningDaemon

PASSWORD = "other-password-1"


async def add_account(
    daemon: RunningDaemon, username: str, *flags: str, password: str = PASSWORD
) -> int:
    """Create an account with ``flags`` (password :data:`PASSWORD` unless given); its id."""
    hasher = PasswordHasher(time_cost=1, memory_kib=64)
    account = await trio.to_thread.run_sync(
        lambda: account_ops.create_account(daemon.ctx.db, hasher, username, password, flags=flags)
    )
    account_id: int = account.id
    return account_id

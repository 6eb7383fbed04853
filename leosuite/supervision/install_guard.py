"""Who may have a server install what its settings say.

A server that runs as the daemon's own user runs what is in its directory with the
daemon's rights (its store and every other server included), so the files of such a
server are changed by an ADMIN only; an install whose steps take a setting in what they
fetch, write or run (:func:`~.install_steps.user_controlled`) would change them for
anyone who may set that setting. Such an install runs only for an ADMIN: on demand the
caller must be one, and before a start an ADMIN must be whoever starts it, or, for a
start nobody asked for (autostart, a restart after a crash), whoever last started it,
else its owner.
"""

from __future__ import annotations

import sqlite3

from ..errors import LeosuiteError
from ..store import accounts
from ..store.db import Database
from .install_steps import user_controlled
from .run_as import resolve_user
from .spec import LaunchSpec
from .types import ServerType

__all__ = ["admin_answers", "needs_admin", "refusal"]


def _runs_as_daemon(spec: LaunchSpec) -> bool:
    if not spec.user:
        return True
    try:
        return resolve_user(spec.user).is_daemon
    except LeosuiteError:
        return True  # an unknown user: the start fails anyway; assume the worst


def needs_admin(stype: ServerType, spec: LaunchSpec) -> bool:
    """Whether only an ADMIN may have the server install (see the module's doc)."""
    return bool(stype.install) and user_controlled(stype) and _runs_as_daemon(spec)


def refusal(name: str) -> str:
    return (
        f"server {name!r} runs as the daemon's own user and its install fetches, writes "
        "or runs what its settings say: only an ADMIN may install it (give it a user of "
        "its own, or set servers.user)"
    )


async def admin_answers(db: Database, account_id: int | None) -> bool:
    """Whether the account (None: none) is an ADMIN now."""
    if account_id is None:
        return False

    def flags(conn: sqlite3.Connection) -> frozenset[str]:
        found = accounts.get(conn, account_id)
        return frozenset() if found is None else found.flags

    return "ADMIN" in await db.call(flags)

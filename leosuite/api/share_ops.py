"""Sharing a server with other accounts, as every API surface offers it (HTTP
``/api/server_share_*``, WebSocket ``server.share_*``, the CLI through them).

Only the server's owner or an ADMIN lists and sets grants (:meth:`ServerOps.managed`:
404 for whoever does not see the server, 403 for a grantee), on any node for a server
of any node (grants live in the store; the other nodes read them again at once). A
grant names an existing account other than the caller and the owner (who have every
right already), and only names of :data:`~leosuite.auth.permissions.RIGHTS`; an empty
set revokes. A locked account may be granted rights: they apply once it is unlocked
(only an ADMIN's list shows which are locked). Each change is audited with the acting
account, and takes effect at once (:class:`~.grants.ServerGrants`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Annotated, Any

import msgspec

from ..auth.permissions import RIGHTS, may_see_account_locks
from ..errors import InvalidInput, NotFound
from ..store import accounts
from ..store import grants as grant_table
from .server_ops import ServerOps

__all__ = ["RightsList", "ShareOps"]

#: The rights a grant lists: at most one of each (duplicates count once).
RightsList = Annotated[list[str], msgspec.Meta(max_length=len(RIGHTS))]


class ShareOps:
    """One caller's management of the grants on servers (``ops``: who asks, from where)."""

    def __init__(self, ops: ServerOps) -> None:
        self.ops = ops

    async def share_list(self, server: str) -> dict[str, Any]:
        record = self.ops.managed(server, any_node=True)
        rows = await self.ops.ctx.db.call(lambda conn: grant_table.of_server(conn, record.id))
        locks = may_see_account_locks(self.ops.principal)
        shares: list[dict[str, Any]] = []
        for g in rows:
            share: dict[str, Any] = {
                "account": g.username,
                "rights": [r for r in RIGHTS if r in g.rights],
                "granted_at": g.granted_at,
            }
            if locks:  # an account's lock is the business of whoever manages accounts
                share["locked"] = g.locked
            shares.append(share)
        return {"server": server, "shares": shares}

    async def share_set(self, server: str, account: str, rights: Sequence[str]) -> dict[str, Any]:
        ops = self.ops
        record = ops.managed(server, any_node=True)
        wanted = _rights(rights)
        caller = ops.principal.account_id
        now = ops.ctx.now()

        def write(conn: sqlite3.Connection) -> tuple[int, str, frozenset[str]]:
            found = accounts.get_by_name(conn, account)
            if found is None:
                raise InvalidInput(f"no account named {account[:64]!r}", field="account")
            if found.id == caller:
                raise InvalidInput("a server cannot be shared with oneself", field="account")
            if found.id == record.owner_id:
                raise InvalidInput(
                    f"{found.username} owns server {server!r} and has every right on it",
                    field="account",
                )
            if conn.execute("SELECT 1 FROM servers WHERE id = ?", (record.id,)).fetchone() is None:
                raise NotFound(f"no server named {server!r}", field="server")
            before = grant_table.set_rights(
                conn,
                server_id=record.id,
                account_id=found.id,
                rights=wanted,
                granted_by=caller,
                now=now,
            )
            return found.id, found.username, before

        account_id, username, before = await ops.ctx.db.call(write)
        ops.ctx.grants.put(record.id, account_id, wanted)
        if before != wanted:
            await ops.audit(server, _audit_message(server, username, before, wanted))
        return {"server": server, "account": username, "rights": [r for r in RIGHTS if r in wanted]}


def _rights(names: Sequence[str]) -> frozenset[str]:
    """The set of rights ``names`` lists; an unknown name is invalid input."""
    for name in names:
        if name not in RIGHTS:
            raise InvalidInput(
                f"unknown right {name[:40]!r} (rights are {', '.join(RIGHTS)})", field="rights"
            )
    return frozenset(names)


def _audit_message(
    server: str, username: str, before: frozenset[str], after: frozenset[str]
) -> str:
    def listed(rights: frozenset[str]) -> str:
        return ", ".join(r for r in RIGHTS if r in rights)

    if not after:
        return f"revoked {username}'s rights on server {server} (had {listed(before)})"
    if not before:
        return f"shared server {server} with {username}: {listed(after)}"
    return f"changed {username}'s rights on server {server}: {listed(before)} -> {listed(after)}"

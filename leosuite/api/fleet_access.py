"""Who may do what with a server of the whole fleet, decided against the store as it
is now: console tokens minted and honoured, forwarded operations checked again.

Another node's grants, account locks and deletions reach this daemon's caches late or
not at all, so every decision here reads the account and its grant on the server from
the store (:func:`fresh_ops`): a console token (:mod:`leosuite.cluster.console_tokens`)
is minted for an account that has ``console`` on the server and is honoured only while
it still has it, and a forwarded operation is re-checked by the node that runs it.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..auth.service import Principal
from ..clock import iso_utc
from ..cluster import console_tokens
from ..errors import AuthError, NodeUnreachable, NotFound
from ..store import accounts, grants, tokens
from ..store.servers import ServerRecord
from .context import ApiContext
from .forwarding import fleet_record, node_of, nodes_of
from .server_ops import ServerOps

__all__ = [
    "TOKEN_RECHECK",
    "TOKEN_RIGHTS",
    "StoreCheckedOps",
    "console_reader",
    "fresh_ops",
    "mint_console_token",
    "still_reads",
    "token_wait",
]

#: The rights a console token records (of those the account has on the server).
TOKEN_RIGHTS = ("console", "commands")
#: Seconds between the store checks of a console followed with a token.
TOKEN_RECHECK = 5.0


class StoreCheckedOps(ServerOps):
    """A caller's view of one server with its account's flags and grant as the store
    has them now (``via``: the node that forwarded the operation, named in the audit)."""

    def __init__(
        self,
        ctx: ApiContext,
        principal: Principal,
        ip: str,
        server_grants: dict[int, frozenset[str]],
        via: str = "",
        session: str = "",
    ) -> None:
        super().__init__(ctx, principal, ip)
        self._grants = server_grants
        self.via = via
        #: The login a console token names (checked again at each store check).
        self.session = session

    def granted(self, record: ServerRecord) -> frozenset[str]:
        return self._grants.get(record.id, frozenset())

    async def audit(self, server: str, message: str) -> None:
        await super().audit(server, f"{message} (through node {self.via})" if self.via else message)


async def fresh_ops(
    ctx: ApiContext,
    account_id: int,
    ip: str,
    record: ServerRecord,
    *,
    via: str = "",
    session: str = "",
) -> StoreCheckedOps:
    """The account's view of ``record`` as the store has it now: 403 when the account
    is gone or locked, or when ``session`` (the login of a console token or of a
    forwarded operation) has ended."""

    def read(conn: sqlite3.Connection) -> tuple[accounts.Account | None, frozenset[str], bool]:
        account = accounts.get(conn, account_id)
        given = [g.rights for g in grants.of_server(conn, record.id) if g.account_id == account_id]
        logins = tokens.list_for_account(conn, account_id) if session else []
        live = not session or any(
            console_tokens.session_of(t.token_hash) == session for t in logins
        )
        return account, (given[0] if given else frozenset()), live

    account, rights, live = await ctx.db.call(read)
    if account is None or account.locked:
        raise AuthError("this account no longer exists or is locked")
    if not live:
        raise AuthError("the login this was done with has ended (a logout or a new password)")
    principal = Principal(account_id=account.id, username=account.username, flags=account.flags)
    return StoreCheckedOps(ctx, principal, ip, {record.id: rights}, via=via, session=session)


def _settings_of(ctx: ApiContext) -> tuple[float, float]:
    """Console tokens' lifetime and the signing keys' rotation, in seconds."""
    node = ctx.settings.node
    return node.console_token_lifetime, node.console_key_rotation


async def mint_console_token(ops: ServerOps, name: str) -> dict[str, Any]:
    """``server_console_token``: a token to read the console of ``name`` from the node
    that runs it, for a caller that has ``console`` on it (404 when it may not see the
    server, 403 without the right, 503 when its node is unreachable)."""
    ctx = ops.ctx
    record = await fleet_record(ctx, name)
    fresh = await fresh_ops(ctx, ops.principal.account_id, ops.ip, record)
    if not fresh.sees(record):
        raise NotFound(f"no server named {name!r}", field="server")
    fresh.require(record, "console")
    nodes = nodes_of(ctx)
    node = node_of(ctx, record)
    if node != nodes.name and not nodes.reachable(node):
        raise NodeUnreachable(f"node {node!r}, which runs server {name!r}, is unreachable")
    lifetime, rotation = _settings_of(ctx)
    now = ctx.now()
    kid, key = await ctx.console_keys.signing_key(ctx.db, now, rotation)
    rights = fresh.rights(record)
    claims = console_tokens.ConsoleClaims(
        server=record.name,
        node=node,
        account=fresh.principal.account_id,
        rights=tuple(r for r in TOKEN_RIGHTS if r in rights),
        expires=now + lifetime,
        kid=kid,
        session=console_tokens.session_of(ops.principal.token_hash),
    )
    http_url = nodes.url_of(node)
    return {
        "token": console_tokens.sign(claims, key),
        "node": node,
        "http_url": http_url,
        "ws_url": nodes.ws_url_of(node),
        "expires_at": iso_utc(claims.expires),
    }


async def console_reader(ctx: ApiContext, token: str, server: str, ip: str) -> StoreCheckedOps:
    """The view of ``server``'s console that ``token`` gives on this node: 403 when the
    token is malformed, forged, expired or for another node or server, or when its
    account is gone, locked or no longer has ``console`` on the server, or the login it
    was minted with ended (404 when the
    server is not this node's)."""
    claims = console_tokens.claims_of(token)
    _lifetime, rotation = _settings_of(ctx)
    now = ctx.now()
    key = await ctx.console_keys.checking_key(ctx.db, claims.kid, now, rotation)
    console_tokens.check(token, key, now=now, node=nodes_of(ctx).name, server=server)
    record = await ctx.servers.record_here(server)  # this node's servers only
    reader = await fresh_ops(ctx, claims.account, ip, record, session=claims.session)
    if "console" not in reader.rights(record):
        raise AuthError("console token refused: the account may no longer read this console")
    return reader


def token_wait(wait: float | None) -> float | None:
    """How long a read with a console token may wait for output: at most
    :data:`TOKEN_RECHECK`, the time after which a subscription checks the store again
    (a right taken away meanwhile must not go on being served)."""
    return None if wait is None else min(wait, TOKEN_RECHECK)


async def still_reads(reader: StoreCheckedOps, server: str) -> bool:
    """Whether the account of a console token still may read ``server``'s console, as
    the store says now (it exists, is not locked, has ``console`` and the login the
    token was minted with goes on)."""
    record = reader.ctx.servers.find_record(server)
    if record is None:
        return False
    try:
        fresh = await fresh_ops(
            reader.ctx, reader.principal.account_id, reader.ip, record, session=reader.session
        )
    except AuthError:
        return False
    return "console" in fresh.rights(record)

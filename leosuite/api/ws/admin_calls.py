"""Administration over the WebSocket API: ``account.*`` and ``ban.*``, the admin API's
``/accounts/`` and ``/banlist/`` for the dashboard.

ADMIN accounts only (PERMISSION_DENIED otherwise, before the content is looked at).
Each call runs the same code as its admin API twin (:mod:`leosuite.api.account_ops`,
:class:`leosuite.auth.bans.BanList`, :mod:`leosuite.api.ban_ops`): the same checks,
the same last-ADMIN guard, the same audit entries, the same answers' shapes.

* ``account.list {}`` → ``{"accounts": [{"id", "username", "locked", "flags",
  "created", "lastLogin"}], "password_policy": {"min_length", "max_length"}}``;
  ``lastLogin`` is when the account's newest access token still kept was made, or null.
* ``account.create {"username", "password", "locked"?, "flags"?}`` → the account.
* ``account.set {"id", "username"?, "password"?, "locked"?, "flags"?, "admin"?}`` →
  the account as it is now (the admin API's ``PUT /accounts/:id/``).
* ``account.delete {"id"}`` → the deleted account.
* ``ban.list {}`` → the bans in force; ``ban.add {"ip", "subnet"?, "expires"?,
  "comment"?, "confirm_self"?}`` → the ban plus ``appliesToYou`` (and ``message``);
  ``ban.remove {"id"}`` → ``null``.

A ban covering the caller's own address is refused (INVALID_ARGUMENT, field
``confirm_self``) unless ``confirm_self`` is true; then the caller's session ends with
the call: the answer comes first, then ``session_closed``, then the connection closes.
Every change checks again that the caller is still a logged-in, unlocked ADMIN when it
is stored (PERMISSION_DENIED otherwise).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
import trio

from ...auth.ban_rules import BANNED_MESSAGE
from ...auth.permissions import may_use_admin_api
from ...auth.service import Principal
from ...clock import iso_utc
from ...errors import InvalidInput, PermissionDenied
from .. import account_ops
from ..account_ops import FINISH_SECONDS, AccountChange, NewAccount, account_view
from ..ban_ops import BanBody, added_answer, bans_in_force, would_cover
from .api import AfterSend, WsApi
from .conn import WsConnection
from .protocol import decode_content, push

__all__ = ["install_admin_calls"]

#: The longest password the auth service takes (its password policy).
MAX_PASSWORD_CHARS = 1024
#: An id a client sends: a SQLite rowid.
RowId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]


class _Empty(msgspec.Struct, forbid_unknown_fields=True):
    pass


class _Id(msgspec.Struct, forbid_unknown_fields=True):
    id: RowId


class _AccountSet(AccountChange, kw_only=True, forbid_unknown_fields=True):
    id: RowId


class _BanAdd(BanBody, kw_only=True, forbid_unknown_fields=True):
    #: Ban the caller's own address all the same (its session ends with the call).
    confirm_self: bool = False


def _logged_in(conn: WsConnection, principal: Principal) -> Callable[[], bool]:
    """Whether ``conn`` is still logged in with the session the call started in."""
    token_hash = principal.token_hash

    def check() -> bool:
        now = conn.principal
        return now is not None and now.token_hash == token_hash

    return check


def _close_after_answer(conn: WsConnection) -> None:
    """Tell ``conn`` its session ended (after the answer already queued) and close it."""

    async def close() -> None:
        with (
            trio.move_on_after(FINISH_SECONDS),  # a client that does not read is closed anyway
            contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError),
        ):
            await conn.send_and_wait(push("session_closed", {"reason": BANNED_MESSAGE}))
        conn.close_policy(BANNED_MESSAGE)

    if conn.nursery is None:
        conn.close_policy(BANNED_MESSAGE)
    else:
        conn.nursery.start_soon(close)


def install_admin_calls(api: WsApi) -> None:
    ctx = api.ctx

    def admin(conn: WsConnection, what: str) -> Principal:
        principal = conn.principal
        assert principal is not None
        if not may_use_admin_api(principal):
            raise PermissionDenied(f"{what} needs the ADMIN flag")
        return principal

    async def account_list(conn: WsConnection, content: Any) -> Any:
        admin(conn, "listing accounts")
        decode_content(content, _Empty)
        found = await account_ops.list_accounts(ctx)
        logins = await ctx.db.call(account_ops.last_logins)
        return {
            "accounts": [
                {
                    **account_view(a),
                    "created": iso_utc(a.created_at),
                    "lastLogin": logins.get(a.id),
                }
                for a in found
            ],
            "password_policy": {
                "min_length": ctx.settings.auth.min_password_length,
                "max_length": MAX_PASSWORD_CHARS,
            },
        }

    async def account_create(conn: WsConnection, content: Any) -> Any:
        principal = admin(conn, "creating accounts")
        body = decode_content(content, NewAccount)
        account = await account_ops.create_account(
            ctx,
            principal.actor(conn.ip),
            body,
            token_hash=principal.token_hash,
            logged_in=_logged_in(conn, principal),
        )
        return account_view(account)

    async def account_set(conn: WsConnection, content: Any) -> Any:
        principal = admin(conn, "changing accounts")
        query = decode_content(content, _AccountSet)
        change = AccountChange(
            username=query.username,
            password=query.password,
            locked=query.locked,
            flags=query.flags,
            admin=query.admin,
        )
        after = await account_ops.change_account(
            ctx,
            principal.actor(conn.ip),
            query.id,
            change,
            token_hash=principal.token_hash,
            logged_in=_logged_in(conn, principal),
        )
        return account_view(after)

    async def account_delete(conn: WsConnection, content: Any) -> Any:
        principal = admin(conn, "deleting accounts")
        query = decode_content(content, _Id)
        account = await account_ops.delete_account(
            ctx,
            principal.actor(conn.ip),
            query.id,
            token_hash=principal.token_hash,
            logged_in=_logged_in(conn, principal),
        )
        return account_view(account)

    async def ban_list(conn: WsConnection, content: Any) -> Any:
        admin(conn, "listing bans")
        decode_content(content, _Empty)
        return bans_in_force(ctx.bans.bans(), ctx.now())

    async def ban_add(conn: WsConnection, content: Any) -> Any:
        principal = admin(conn, "adding bans")
        body = decode_content(content, _BanAdd)
        target = body.target()
        own = would_cover(target, body.subnet, conn.ip)
        if own and not body.confirm_self:
            raise InvalidInput(
                f"confirm_self: this ban covers your own address ({conn.ip}): this "
                "connection would be closed and its session ended; send confirm_self: true "
                "to add it all the same",
                field="confirm_self",
            )
        logged_in = _logged_in(conn, principal)
        if not own:
            ban = await ctx.bans.add(
                target, body.subnet, body.expires, body.comment,
                actor=principal.actor(conn.ip), token_hash=principal.token_hash,
                logged_in=logged_in,
            )  # fmt: skip
            return added_answer(ban, conn.ip)
        # The caller's session ends with this call: detached now, so that the ban's end
        # of its token and of its connection reach it only after the answer.
        if not logged_in():
            raise PermissionDenied("your session has ended")
        token = conn.token
        conn.principal = conn.token = None
        try:
            ban = await ctx.bans.add(
                target, body.subnet, body.expires, body.comment,
                actor=principal.actor(conn.ip), token_hash=principal.token_hash, spare=conn,
            )  # fmt: skip
        except BaseException:
            conn.principal, conn.token = principal, token
            raise
        conn.aborted = BANNED_MESSAGE
        conn.cancel_subscriptions()
        return AfterSend(added_answer(ban, conn.ip), lambda: _close_after_answer(conn))

    async def ban_remove(conn: WsConnection, content: Any) -> Any:
        principal = admin(conn, "removing bans")
        query = decode_content(content, _Id)
        await ctx.bans.remove(
            query.id,
            actor=principal.actor(conn.ip),
            token_hash=principal.token_hash,
            logged_in=_logged_in(conn, principal),
        )
        return None

    for name, handler in (
        ("account.list", account_list),
        ("account.create", account_create),
        ("account.set", account_set),
        ("account.delete", account_delete),
        ("ban.list", ban_list),
        ("ban.add", ban_add),
        ("ban.remove", ban_remove),
    ):
        api.add(name, handler)

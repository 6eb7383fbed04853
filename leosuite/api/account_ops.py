"""Account administration as every surface offers it (the admin API's ``/accounts/``
and the WebSocket ``account.*`` calls): validation, the changes, the last-ADMIN guard,
their audit entries and what a change ends.

``flags`` sets every flag but ``ADMIN``, which changes only when it is named: ``ADMIN``
in ``flags`` or ``admin: true`` grants it, ``admin: false`` takes it away, and a
``flags`` without it keeps it as it was. ``admin: false`` beside ``ADMIN`` in ``flags``
is refused. Every field is checked before anything changes, so one bad field changes
nothing; an empty ``password`` leaves it as it is.

A password change, a lock, a removed flag and a delete end the account's access tokens
and its connections at once. Taking ``ADMIN`` away (a changed flag or a delete) stops
the running servers of an admin-only type that no ADMIN answers for any more. The last
unlocked ``ADMIN`` can be neither deleted, locked nor demoted (Conflict). Every change
is audited (topic ``admin``), never with the password.

Each change checks again, inside its own transaction, that the acting account is
still an unlocked ADMIN (and, for a session, that its token still stands):
PermissionDenied otherwise. The tokens a change ends are deleted in that same
transaction, and once it is committed its audit entry and the end of the sessions
follow even if the caller is cancelled (its connection closed meanwhile).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from ..audit import Actor
from ..clock import iso_utc
from ..errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..store import accounts, tokens
from ..store.accounts import ADMIN, Account
from .server_ops import stop_unattended_servers

if TYPE_CHECKING:
    from .context import ApiContext

__all__ = [
    "FINISH_SECONDS",
    "AccountChange",
    "NewAccount",
    "account_view",
    "change_account",
    "create_account",
    "delete_account",
    "end_connections",
    "get_account",
    "last_logins",
    "list_accounts",
]

#: At most this long is spent on a committed change's audit entry (it is written even
#: when the caller is cancelled meanwhile).
FINISH_SECONDS = 10.0


class NewAccount(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    username: str
    password: str
    locked: bool = False
    flags: str = ""


class AccountChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    username: str | msgspec.UnsetType = msgspec.UNSET
    password: str | msgspec.UnsetType = msgspec.UNSET
    locked: bool | msgspec.UnsetType = msgspec.UNSET
    flags: str | msgspec.UnsetType = msgspec.UNSET
    admin: bool | msgspec.UnsetType = msgspec.UNSET


def account_view(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "username": account.username,
        "locked": account.locked,
        "flags": accounts.format_flags(account.flags),
    }


def last_logins(conn: sqlite3.Connection) -> dict[int, str]:
    """Account id -> when its newest access token still kept was made (ISO 8601 UTC):
    its last login, as far as the tokens tell."""
    rows = conn.execute("SELECT account_id, max(created_at) FROM tokens GROUP BY account_id")
    return {int(account_id): iso_utc(float(made)) for account_id, made in rows}


def _flags(text: str) -> frozenset[str]:
    """``"HOST, mod"`` -> flags; a bad one is InvalidInput that says ``flags``."""
    try:
        return accounts.parse_flags(text)
    except InvalidInput as exc:
        raise InvalidInput(f"flags: {exc.message}", field="flags") from None


def _edited_flags(change: AccountChange) -> tuple[frozenset[str] | None, bool | None]:
    """``(flags without ADMIN or None, ADMIN wanted: True/False/None for as it is)``."""
    flags = None if change.flags is msgspec.UNSET else _flags(change.flags)
    admin = None if change.admin is msgspec.UNSET else change.admin
    if flags is not None and ADMIN in flags:
        if admin is False:
            raise InvalidInput("admin: false contradicts ADMIN in flags", field="admin")
        admin = True
    return (None if flags is None else flags - {ADMIN}), admin


def _unlocked_admin(account: Account) -> bool:
    return ADMIN in account.flags and not account.locked


def _keep_an_admin(conn: sqlite3.Connection, before: Account, after: Account | None) -> None:
    """Conflict if this change would leave no unlocked ADMIN account."""
    if not _unlocked_admin(before) or (after is not None and _unlocked_admin(after)):
        return
    others = [a for a in accounts.list_all(conn) if a.id != before.id and _unlocked_admin(a)]
    if not others:
        what = "deleted" if after is None else ("locked" if after.locked else "demoted")
        raise Conflict(f"the last unlocked ADMIN account cannot be {what}")


def _rename(conn: sqlite3.Connection, account_id: int, username: str) -> None:
    # The store has no rename yet; the same uniqueness rule as accounts.create applies.
    try:
        conn.execute("UPDATE accounts SET username = ? WHERE id = ?", (username, account_id))
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"the username {username!r} is taken", field="username") from exc


def _describe(before: Account, after: Account, *, password_changed: bool) -> str:
    parts: list[str] = []
    if after.username != before.username:
        parts.append(f"renamed to {after.username!r}")
    if password_changed:
        parts.append("password changed")
    if after.locked != before.locked:
        parts.append("locked" if after.locked else "unlocked")
    if after.flags != before.flags:
        parts.append(f"flags {accounts.format_flags(after.flags) or '(none)'}")
    return ", ".join(parts) or "nothing changed"


def end_connections(ctx: ApiContext, account_id: int, reason: str) -> None:
    """End the sessions of an account whose tokens its change deleted (WebSocket API
    sessions get ``session_closed``) and disconnect its chat connections, at once."""
    ctx.auth.forget_account(account_id, reason)
    chat = ctx.chat.core
    # ws_chat offers no per-account hook: the chat core knows each member's account.
    for member in list(chat.members.values()):
        if member.account_id == account_id:
            chat.disconnect(member, reason)


def _ending(before: Account, after: Account, *, password_changed: bool) -> str:
    """Why this change ends the account's sessions ("" if it does not)."""
    reasons: list[str] = []
    if password_changed:
        reasons.append("password changed")
    if after.locked and not before.locked:
        reasons.append("account locked")
    if before.flags - after.flags:
        reasons.append("account flags changed")
    return "; ".join(reasons)


def _still_logged_in(logged_in: Callable[[], bool] | None) -> None:
    """PermissionDenied if the caller's session ended while its call waited."""
    if logged_in is not None and not logged_in():
        raise PermissionDenied("your session has ended")


def _acting_admin(conn: sqlite3.Connection, actor: Actor, token_hash: str) -> None:
    """Inside the change's transaction: the acting account is still an unlocked ADMIN."""
    if actor.id is not None:
        accounts.require_admin(conn, actor.id, token_hash)


async def _audit(ctx: ApiContext, actor: Actor, message: str) -> None:
    """Audit a committed change; called shielded, so it is bounded here."""
    with trio.move_on_after(FINISH_SECONDS):
        await ctx.audit.record_done("admin", message, actor=actor)


async def _hash_password(ctx: ApiContext, password: str) -> str:
    ctx.auth.check_password_policy(password)
    return await ctx.auth.hasher.hash(password)


async def list_accounts(ctx: ApiContext) -> list[Account]:
    """Every account, oldest first."""
    return await ctx.db.call(accounts.list_all)


async def get_account(ctx: ApiContext, number: int) -> Account:
    account = await ctx.db.call(lambda conn: accounts.get(conn, number))
    if account is None:
        raise NotFound(f"no account with id {number}", field="account")
    return account


async def create_account(
    ctx: ApiContext,
    actor: Actor,
    body: NewAccount,
    *,
    token_hash: str = "",
    logged_in: Callable[[], bool] | None = None,
) -> Account:
    """Validate, create and audit an account; a taken username (any letter case) is
    Conflict. ``token_hash`` is the acting session's token and ``logged_in`` tells
    whether its connection is still logged in (both optional: HTTP Basic has neither)."""
    username = accounts.validate_username(body.username)
    flags = _flags(body.flags)
    password_hash = await _hash_password(ctx, body.password)
    created_at = ctx.now()

    def insert(conn: sqlite3.Connection) -> Account:
        _acting_admin(conn, actor, token_hash)
        return accounts.create(
            conn,
            username=username,
            password_hash=password_hash,
            created_at=created_at,
            flags=flags,
            locked=body.locked,
        )

    _still_logged_in(logged_in)
    with trio.CancelScope(shield=True):  # once committed, audited
        account = await ctx.db.call(insert)
        shown = accounts.format_flags(account.flags)
        await _audit(
            ctx,
            actor,
            f"account {account.username!r} (id {account.id}) created"
            f"{', locked' if account.locked else ''}, flags {shown or '(none)'}",
        )
    return account


async def change_account(
    ctx: ApiContext,
    actor: Actor,
    number: int,
    change: AccountChange,
    *,
    token_hash: str = "",
    logged_in: Callable[[], bool] | None = None,
) -> Account:
    """Apply ``change`` to account ``number`` (every field checked first); the account
    as it is now. ``token_hash`` and ``logged_in`` as for :func:`create_account`."""
    # Check every field before anything changes (the password hash is costly: last).
    username = (
        None if change.username is msgspec.UNSET else accounts.validate_username(change.username)
    )
    flags, admin = _edited_flags(change)
    locked = None if change.locked is msgspec.UNSET else change.locked
    new_password = "" if change.password is msgspec.UNSET else change.password
    password_hash = await _hash_password(ctx, new_password) if new_password else None
    password_changed = password_hash is not None

    def new_flags(old: frozenset[str]) -> frozenset[str]:
        kept = old - {ADMIN} if flags is None else flags
        has_admin = ADMIN in old if admin is None else admin
        return kept | {ADMIN} if has_admin else kept

    def apply(conn: sqlite3.Connection) -> tuple[Account, Account]:
        _acting_admin(conn, actor, token_hash)
        before = accounts.get(conn, number)
        if before is None:
            raise NotFound(f"no account with id {number}", field="account")
        after = msgspec.structs.replace(
            before,
            username=before.username if username is None else username,
            locked=before.locked if locked is None else locked,
            flags=new_flags(before.flags),
            password_hash=before.password_hash if password_hash is None else password_hash,
        )
        _keep_an_admin(conn, before, after)
        if after.username != before.username:
            _rename(conn, number, after.username)
        if password_hash is not None:
            accounts.set_password_hash(conn, number, password_hash)
        if after.locked != before.locked:
            accounts.set_locked(conn, number, after.locked)
        if after.flags != before.flags:
            accounts.set_flags(conn, number, after.flags)
        if _ending(before, after, password_changed=password_changed):
            tokens.delete_for_account(conn, number)
        return before, after

    _still_logged_in(logged_in)
    with trio.CancelScope(shield=True):  # once committed, the sessions end and it is audited
        with ctx.auth.ending_account(number):
            before, after = await ctx.db.call(apply)
            reason = _ending(before, after, password_changed=password_changed)
            if reason:
                end_connections(ctx, number, reason)
        what = _describe(before, after, password_changed=password_changed)
        await _audit(ctx, actor, f"account {before.username!r} (id {number}) changed: {what}")
    if ADMIN in before.flags - after.flags:
        await stop_unattended_servers(ctx, actor)
    return after


async def delete_account(
    ctx: ApiContext,
    actor: Actor,
    number: int,
    *,
    token_hash: str = "",
    logged_in: Callable[[], bool] | None = None,
) -> Account:
    """Delete account ``number``; the account as it was. ``token_hash`` and
    ``logged_in`` as for :func:`create_account`."""

    def remove(conn: sqlite3.Connection) -> Account:
        _acting_admin(conn, actor, token_hash)
        account = accounts.get(conn, number)
        if account is None:
            raise NotFound(f"no account with id {number}", field="account")
        _keep_an_admin(conn, account, None)
        tokens.delete_for_account(conn, number)
        accounts.delete(conn, number)
        return account

    _still_logged_in(logged_in)
    with trio.CancelScope(shield=True):  # once committed, the sessions end and it is audited
        with ctx.auth.ending_account(number):
            account = await ctx.db.call(remove)
            end_connections(ctx, number, "account deleted")
        await _audit(ctx, actor, f"account {account.username!r} (id {number}) deleted")
    if ADMIN in account.flags:
        await stop_unattended_servers(ctx, actor)
    return account

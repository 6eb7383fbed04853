"""Admin REST API (seed 002): user accounts.

``GET /accounts/``
    ``[{"id", "username", "locked", "flags": "HOST,MOD"}]``, oldest first; ``flags``
    is comma-separated and sorted (``ADMIN`` included when set).
``POST /accounts/`` ``{"username", "password", "locked"?, "flags"?}``
    201 with the new account (and ``Location``); a taken username (any letter case) 409.
``GET /accounts/:id/``
    One account (not in the seed; a convenience).
``PUT /accounts/:id/`` any of ``{"username", "password", "locked", "flags", "admin"}``
    200 with the account as it is now. Every field is checked before anything
    changes, so one bad field changes nothing. An empty ``password`` leaves it as it
    is (Drawpile's web admin sends ``""`` for "unchanged").
``DELETE /accounts/:id/``
    200 with the deleted account.

``flags`` sets every flag but ``ADMIN``, which changes only when it is named: ``ADMIN``
in ``flags`` or ``"admin": true`` grants it, ``"admin": false`` takes it away, and a
``flags`` without it keeps it as it was (Drawpile's web admin has no ``ADMIN`` box and
sends every edit's flags whole, so an edit there neither demotes nor promotes).
``"admin": false`` beside ``ADMIN`` in ``flags`` is 400.

A password change, a lock, a removed flag and a delete end the account's access
tokens and its connections at once: WebSocket API sessions get ``session_closed``,
chat connections are disconnected. Taking ``ADMIN`` away (a changed flag or a
delete) stops, before the answer, the running servers of an admin-only type that no
ADMIN answers for any more. The last unlocked ``ADMIN`` can be neither deleted, locked
nor demoted (409). Unknown ids are 404; every change is audited
(topic ``admin``), never with the password.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

import msgspec
from quart import Response

from ...auth.service import Principal
from ...errors import Conflict, InvalidInput, NotFound
from ...store import accounts
from ...store.accounts import ADMIN, Account
from ..requests import decode_bytes, peer_ip, read_body
from ..server_ops import stop_unattended_servers

if TYPE_CHECKING:
    from ..context import ApiContext
    from .app import AdminRoutes

__all__ = ["AccountChange", "NewAccount", "account_view", "register"]

#: Account ids are SQLite rowids: at most 19 digits (larger is a 404, not an overflow).
_MAX_ID_DIGITS = 18


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


def parse_account_id(text: str) -> int:
    """A path segment as an account id; anything else is 404 (no such account)."""
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_ID_DIGITS:
        raise NotFound("no such account", field="account")
    return int(text)


def _flags(text: str) -> frozenset[str]:
    """``"HOST, mod"`` -> flags; a bad one is a 400 that says ``flags``."""
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
    """409 if this change would leave no unlocked ADMIN account."""
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


async def end_connections(ctx: ApiContext, account_id: int, reason: str) -> None:
    """Destroy the account's tokens (WebSocket API sessions get ``session_closed``)
    and disconnect its chat connections, at once."""
    await ctx.auth.revoke_account(account_id, reason)
    chat = ctx.chat.core
    # ws_chat offers no per-account hook: the chat core knows each member's account.
    for member in list(chat.members.values()):
        if member.account_id == account_id:
            chat.disconnect(member, reason)


def register(routes: AdminRoutes) -> None:
    from .app import admin_json  # admin imports this module first

    ctx = routes.ctx
    max_body = ctx.settings.http.max_body_bytes

    async def audit(principal: Principal, message: str) -> None:
        await ctx.audit.record_done("admin", message, actor=principal.actor(peer_ip()))

    async def hash_password(password: str) -> str:
        ctx.auth.check_password_policy(password)
        return await ctx.auth.hasher.hash(password)

    async def list_accounts(principal: Principal) -> Response:
        found = await ctx.db.call(accounts.list_all)
        return admin_json([account_view(a) for a in found])

    async def create_account(principal: Principal) -> Response:
        body = decode_bytes(await read_body(max_body), NewAccount)
        username = accounts.validate_username(body.username)
        flags = _flags(body.flags)
        password_hash = await hash_password(body.password)
        created_at = ctx.now()
        account = await ctx.db.call(
            lambda conn: accounts.create(
                conn,
                username=username,
                password_hash=password_hash,
                created_at=created_at,
                flags=flags,
                locked=body.locked,
            )
        )
        view = account_view(account)
        await audit(
            principal,
            f"account {account.username!r} (id {account.id}) created"
            f"{', locked' if account.locked else ''}, flags {view['flags'] or '(none)'}",
        )
        response = admin_json(view, status=201)
        response.headers["Location"] = f"/accounts/{account.id}/"
        return response

    async def get_account(principal: Principal, account_id: str) -> Response:
        number = parse_account_id(account_id)
        account = await ctx.db.call(lambda conn: accounts.get(conn, number))
        if account is None:
            raise NotFound(f"no account with id {number}", field="account")
        return admin_json(account_view(account))

    async def change_account(principal: Principal, account_id: str) -> Response:
        number = parse_account_id(account_id)
        change = decode_bytes(await read_body(max_body), AccountChange)
        # Check every field before anything changes (the password hash is costly: last).
        username = (
            None
            if change.username is msgspec.UNSET
            else accounts.validate_username(change.username)
        )
        flags, admin = _edited_flags(change)
        locked = None if change.locked is msgspec.UNSET else change.locked
        new_password = "" if change.password is msgspec.UNSET else change.password
        password_hash = await hash_password(new_password) if new_password else None

        def new_flags(old: frozenset[str]) -> frozenset[str]:
            kept = old - {ADMIN} if flags is None else flags
            has_admin = ADMIN in old if admin is None else admin
            return kept | {ADMIN} if has_admin else kept

        def apply(conn: sqlite3.Connection) -> tuple[Account, Account]:
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
            return before, after

        before, after = await ctx.db.call(apply)
        what = _describe(before, after, password_changed=password_hash is not None)
        await audit(principal, f"account {before.username!r} (id {number}) changed: {what}")
        reasons: list[str] = []
        if password_hash is not None:
            reasons.append("password changed")
        if after.locked and not before.locked:
            reasons.append("account locked")
        if before.flags - after.flags:
            reasons.append("account flags changed")
        if reasons:
            await end_connections(ctx, number, "; ".join(reasons))
        if ADMIN in before.flags - after.flags:
            await stop_unattended_servers(ctx, principal.actor(peer_ip()))
        return admin_json(account_view(after))

    async def delete_account(principal: Principal, account_id: str) -> Response:
        number = parse_account_id(account_id)

        def remove(conn: sqlite3.Connection) -> Account:
            account = accounts.get(conn, number)
            if account is None:
                raise NotFound(f"no account with id {number}", field="account")
            _keep_an_admin(conn, account, None)
            accounts.delete(conn, number)
            return account

        account = await ctx.db.call(remove)
        await audit(principal, f"account {account.username!r} (id {number}) deleted")
        await end_connections(ctx, number, "account deleted")
        if ADMIN in account.flags:
            await stop_unattended_servers(ctx, principal.actor(peer_ip()))
        return admin_json(account_view(account))

    routes.add("/accounts", list_accounts, ["GET"])
    routes.add("/accounts", create_account, ["POST"])
    routes.add("/accounts/<account_id>", get_account, ["GET"])
    routes.add("/accounts/<account_id>", change_account, ["PUT"])
    routes.add("/accounts/<account_id>", delete_account, ["DELETE"])

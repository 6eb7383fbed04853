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
(topic ``admin``), never with the password. The rules live in
:mod:`leosuite.api.account_ops`, shared with the WebSocket ``account.*`` calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quart import Response

from ...auth.service import Principal
from ...errors import NotFound
from .. import account_ops
from ..account_ops import AccountChange, NewAccount, account_view
from ..requests import decode_bytes, peer_ip, read_body

if TYPE_CHECKING:
    from .app import AdminRoutes

__all__ = ["AccountChange", "NewAccount", "account_view", "register"]

#: Account ids are SQLite rowids: at most 19 digits (larger is a 404, not an overflow).
_MAX_ID_DIGITS = 18


def parse_account_id(text: str) -> int:
    """A path segment as an account id; anything else is 404 (no such account)."""
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_ID_DIGITS:
        raise NotFound("no such account", field="account")
    return int(text)


def register(routes: AdminRoutes) -> None:
    from .app import admin_json  # admin imports this module first

    ctx = routes.ctx
    max_body = ctx.settings.http.max_body_bytes

    async def list_accounts(principal: Principal) -> Response:
        found = await account_ops.list_accounts(ctx)
        return admin_json([account_view(a) for a in found])

    async def create_account(principal: Principal) -> Response:
        body = decode_bytes(await read_body(max_body), NewAccount)
        account = await account_ops.create_account(ctx, principal.actor(peer_ip()), body)
        response = admin_json(account_view(account), status=201)
        response.headers["Location"] = f"/accounts/{account.id}/"
        return response

    async def get_account(principal: Principal, account_id: str) -> Response:
        account = await account_ops.get_account(ctx, parse_account_id(account_id))
        return admin_json(account_view(account))

    async def change_account(principal: Principal, account_id: str) -> Response:
        number = parse_account_id(account_id)
        change = decode_bytes(await read_body(max_body), AccountChange)
        after = await account_ops.change_account(ctx, principal.actor(peer_ip()), number, change)
        return admin_json(account_view(after))

    async def delete_account(principal: Principal, account_id: str) -> Response:
        number = parse_account_id(account_id)
        account = await account_ops.delete_account(ctx, principal.actor(peer_ip()), number)
        return admin_json(account_view(account))

    routes.add("/accounts", list_accounts, ["GET"])
    routes.add("/accounts", create_account, ["POST"])
    routes.add("/accounts/<account_id>", get_account, ["GET"])
    routes.add("/accounts/<account_id>", change_account, ["PUT"])
    routes.add("/accounts/<account_id>", delete_account, ["DELETE"])

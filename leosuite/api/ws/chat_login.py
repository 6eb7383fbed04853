"""Who a chat handshake logs in as: the nick in its path, its access token, and
whether a guest may take that nick.

* **The token** travels in the ``Sec-WebSocket-Protocol`` header: the client offers
  :data:`CHAT_PROTOCOL` and ``leosuite.token.<access token>``, and the handshake
  selects :data:`CHAT_PROTOCOL` (a browser's ``new WebSocket(url, protocols)`` sends it
  without putting the token in a URL). ``?token=`` in the URL still works for older
  clients. Neither is ever written to a log: only a handshake's path is.
* **A guest** (no token) may not take a nick that looks like an account's name
  (:func:`~leosuite.community.nicks.look_alike`): it gets the one answer a nick that
  looks like SYSTEM gets, :data:`~leosuite.community.models.RESERVED_NICK`, so the
  answer does not say that an account exists. Guest logins are limited per address
  (``community.guest_logins_per_minute``, an IPv6 /64 counts as one), which also
  bounds how fast anyone can try names. The account names' look-alike keys are kept
  in an index (:class:`AccountKeys`), updated only when the names changed, so a guest's
  handshake costs a few dictionary lookups however many accounts there are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

import trio
from trio_websocket import WebSocketRequest

from ...auth.limits import Limiter
from ...auth.login_limits import address_key
from ...auth.permissions import is_moderator
from ...auth.service import hash_token
from ...community.models import RESERVED_NICK, validate_nick
from ...community.nicks import name_keys
from ...errors import InvalidInput, PermissionDenied, RateLimited
from ...store import accounts
from ..context import ApiContext

__all__ = [
    "CHAT_PREFIX",
    "CHAT_PROTOCOL",
    "TOKEN_PROTOCOL",
    "AccountKeys",
    "ChatLogin",
    "ChatLogins",
]

CHAT_PREFIX = "/chat/login/"
#: The subprotocol a chat handshake selects when the client offers it.
CHAT_PROTOCOL = "leosuite.chat"
#: An offered subprotocol ``leosuite.token.<access token>`` carries the token.
TOKEN_PROTOCOL = "leosuite.token."  # noqa: S105 - a prefix, not a secret


class ChatLogin(NamedTuple):
    """A handshake that may log in: the nick, and for an account its id, whether it
    moderates everywhere, and the token it used (kept in memory, to renew and end it)."""

    nick: str
    account_id: int | None = None
    mod: bool = False
    token: str | None = None

    @property
    def token_hash(self) -> str | None:
        return hash_token(self.token) if self.token is not None else None


def subprotocol(request: WebSocketRequest) -> str | None:
    """The subprotocol to select: :data:`CHAT_PROTOCOL` when offered (a browser refuses
    an answer that selects none of what it offered)."""
    return CHAT_PROTOCOL if CHAT_PROTOCOL in request.proposed_subprotocols else None


def handshake_token(request: WebSocketRequest) -> str:
    """The token of ``leosuite.token.<token>`` in ``Sec-WebSocket-Protocol``, else of
    ``?token=`` (older clients), else ``""``."""
    for offered in request.proposed_subprotocols:
        if offered.startswith(TOKEN_PROTOCOL):
            return offered[len(TOKEN_PROTOCOL) :]
    return parse_qs(urlsplit(request.path).query).get("token", [""])[0]


class AccountKeys:
    """Every account name by each of its look-alike keys; :meth:`update` brings it to a
    list of names, computing keys only for the names that are new."""

    def __init__(self) -> None:
        self.names: frozenset[str] = frozenset()
        self._index: dict[str, set[str]] = {}

    def update(self, names: Iterable[str]) -> None:
        now = frozenset(names)
        for name in self.names - now:
            for key in name_keys(name):
                owners = self._index.get(key)
                if owners is not None:
                    owners.discard(name)
                    if not owners:
                        del self._index[key]
        for name in now - self.names:
            for key in name_keys(name):
                self._index.setdefault(key, set()).add(name)
        self.names = now

    def reserved(self, nick: str) -> bool:
        """Whether ``nick`` looks like an account's name."""
        return any(key in self._index for key in name_keys(nick))


class ChatLogins:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.account_keys = AccountKeys()
        self._updating = trio.Lock()
        self._guests = Limiter(
            trio.current_time,
            window=60.0,
            limit=ctx.settings.community.guest_logins_per_minute,
        )

    async def login(self, request: WebSocketRequest, ip: str) -> ChatLogin:
        """The login a handshake asks for, or the LeosuiteError that refuses it."""
        path = urlsplit(request.path).path
        try:
            nick = validate_nick(unquote(path[len(CHAT_PREFIX) :], errors="strict"))
        except UnicodeDecodeError:
            raise InvalidInput("the nick is not valid UTF-8", field="nick") from None
        token = handshake_token(request)
        if token:
            principal = await self.ctx.auth.authenticate(token, ip=ip)
            if principal.username.casefold() != nick.casefold():
                raise PermissionDenied("this token belongs to another account's nick")
            mod = is_moderator(principal)
            return ChatLogin(principal.username, principal.account_id, mod, token)
        if not self._guests.take(address_key(ip)):
            raise RateLimited("too many guest logins from your address; wait a minute")
        await self._update_account_keys()
        if self.account_keys.reserved(nick):
            raise PermissionDenied(RESERVED_NICK.format(nick=nick))
        return ChatLogin(nick)

    async def _update_account_keys(self) -> None:
        """Bring the index to the store's account names; the keys of many new names (the
        first time) are computed in a worker thread, off the event loop."""
        names = await self.ctx.db.call(
            lambda conn: frozenset(a.username for a in accounts.list_all(conn))
        )
        if names == self.account_keys.names:
            return
        async with self._updating:
            if len(names - self.account_keys.names) > 16:
                await trio.to_thread.run_sync(self.account_keys.update, names)
            else:
                self.account_keys.update(names)

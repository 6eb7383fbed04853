"""Server handles: the keys the ``management``/``status`` answer lists servers under.

The client keys its servers by those keys and sends one back as ``server`` with every
action; its console poll (``action: log``) is the one request it sends without its
``authkey``. So each key is a handle ``<name>.<32 hex>`` made for one token and one
server (an HMAC under a key of this process, the same on every status of the token):
a log request that names a handle is made as that token's account, with the same
permission checks, and ends with the token (logout, expiry, lock, ban). A handle is
worth one server's console to whoever holds it, for as long as its token lives; every
other action still needs the token itself.

At most :data:`MAX_HANDLES` handles are remembered (least recently used first out); a
forgotten one works again after the client's next status request, which it sends every
minute.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict

from ....auth.service import hash_token

__all__ = ["MAX_HANDLES", "ServerHandles"]

#: Handles remembered for requests without a token.
MAX_HANDLES = 4096
_MAC_CHARS = 32


class ServerHandles:
    """Handles made for tokens, and the token and server name behind each."""

    def __init__(self, *, limit: int = MAX_HANDLES) -> None:
        self._key = secrets.token_bytes(32)
        self._limit = limit
        #: handle -> (token, its hash, server name)
        self._grants: OrderedDict[str, tuple[str, str, str]] = OrderedDict()
        #: token hash -> its handles, so that a token that ends costs only its own
        self._by_token: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._grants)

    def _mac(self, token_hash: str, name: str) -> str:
        message = f"{token_hash}\0{name}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:_MAC_CHARS]

    def make(self, token: str, name: str) -> str:
        """The handle of server ``name`` for ``token`` (remembered for token-less use)."""
        token_hash = hash_token(token)
        handle = f"{name}.{self._mac(token_hash, name)}"
        self._grants.pop(handle, None)
        self._grants[handle] = (token, token_hash, name)
        self._by_token.setdefault(token_hash, set()).add(handle)
        while len(self._grants) > self._limit:
            oldest, (_, oldest_hash, _) = self._grants.popitem(last=False)
            self._unindex(oldest, oldest_hash)
        return handle

    def _unindex(self, handle: str, token_hash: str) -> None:
        handles = self._by_token.get(token_hash)
        if handles is not None:
            handles.discard(handle)
            if not handles:
                del self._by_token[token_hash]

    def name_for(self, token: str, server: str) -> str | None:
        """The server a request with ``token`` means by ``server``: a plain name as it
        is; a handle only if it was made for this token (None otherwise)."""
        name, dot, mac = server.partition(".")
        if not dot:
            return server
        expected = self._mac(hash_token(token), name)
        given = mac.encode("utf-8", "replace")
        return name if hmac.compare_digest(given, expected.encode()) else None

    def grant(self, handle: str) -> tuple[str, str] | None:
        """The (token, server name) behind a remembered handle."""
        found = self._grants.get(handle)
        if found is None:
            return None
        self._grants.move_to_end(handle)
        return found[0], found[2]

    def forget(self, handle: str) -> None:
        found = self._grants.pop(handle, None)
        if found is not None:
            self._unindex(handle, found[1])

    def forget_token(self, token_hash: str) -> None:
        """Drop every handle of a token that ended."""
        for handle in self._by_token.pop(token_hash, set()):
            self._grants.pop(handle, None)

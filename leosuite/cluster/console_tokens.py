"""Console tokens: what any node hands a client so that it reads a server's console
from the node that runs it.

A token is ``lct1.<claims>.<signature>``: the claims (server name, its node, the
account, the rights the account had on the server when the token was made, the
expiry and the key id) as JSON in unpadded base64url, and an HMAC-SHA256 of them with
a signing key kept in the store's ``kv`` table. Key ``n`` signs between ``n *
rotation`` and ``(n + 1) * rotation`` seconds of wall time: the first daemon that needs
it inserts it if absent, so every daemon sharing the store signs with the same key,
and a check accepts the current and the previous key only (a token signed just before
a rotation stays valid until it expires; older keys are deleted). The checks here are
the token's own (signature, expiry, node, server); whether the account still may read
the console is the owning node's to decide against the store
(:mod:`leosuite.api.console_access`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import sqlite3

import msgspec

from ..errors import AuthError
from ..store import kv
from ..store.db import Database

__all__ = [
    "KEY_PREFIX",
    "MAX_TOKEN_LENGTH",
    "MISSING_RECHECK",
    "PREFIX",
    "ConsoleClaims",
    "ConsoleKeys",
    "check",
    "claims_of",
    "session_of",
    "sign",
]

#: Every console token starts with this (and a dot): the format's version.
PREFIX = "lct1"
#: The ``kv`` keys of the signing keys: this and the key id.
KEY_PREFIX = "cluster.console_key."
#: A longer text is refused before it is decoded.
MAX_TOKEN_LENGTH = 1024
_DOMAIN = b"leosuite console token\n"


class ConsoleClaims(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a console token says."""

    server: str
    node: str
    account: int
    #: The rights on the server (of ``console`` and ``commands``) the account had.
    rights: tuple[str, ...]
    #: Wall-clock seconds (Unix time) after which the token is refused.
    expires: float
    kid: int
    #: The login (access token) it was minted with, as :func:`session_of` names it:
    #: the token is refused once that login ended ("" for none).
    session: str = ""


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(ConsoleClaims).decode


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, claims: str) -> bytes:
    return hmac.new(key, _DOMAIN + claims.encode("ascii"), hashlib.sha256).digest()


def sign(claims: ConsoleClaims, key: bytes) -> str:
    """The token for ``claims`` signed with ``key`` (key ``claims.kid``)."""
    body = _b64(_encode(claims))
    return f"{PREFIX}.{body}.{_b64(_mac(key, body))}"


def session_of(token_hash: str) -> str:
    """What a console token calls the access token stored as ``token_hash`` (not the
    hash itself, which the store keys the login by); "" for no access token."""
    if not token_hash:
        return ""
    return hashlib.sha256(b"leosuite console session\n" + token_hash.encode()).hexdigest()[:32]


def _refused(reason: str) -> AuthError:
    return AuthError(f"console token refused: {reason}", field="console_token")


def claims_of(token: str) -> ConsoleClaims:
    """The claims of a well-formed token, NOT yet checked (403 when malformed)."""
    parts = token.split(".") if len(token) <= MAX_TOKEN_LENGTH else []
    if len(parts) != 3 or parts[0] != PREFIX:
        raise _refused("not a console token")
    try:
        return _decode(_unb64(parts[1]))
    except (binascii.Error, ValueError, msgspec.ValidationError):
        raise _refused("not a console token") from None


def check(token: str, key: bytes | None, *, now: float, node: str, server: str) -> ConsoleClaims:
    """The claims of ``token`` if ``key`` (the key its ``kid`` names, None when that
    key is unknown or retired) signed them, they have not expired and they are for
    ``server`` on ``node``; else AuthError (403)."""
    claims = claims_of(token)
    body, signature = token.split(".")[1:]
    try:
        given = _unb64(signature)
    except (binascii.Error, ValueError):
        given = b""
    if key is None or not hmac.compare_digest(given, _mac(key, body)):
        raise _refused("its signature does not match")
    if now >= claims.expires:
        raise _refused("it has expired; ask for a new one")
    if claims.node != node:
        raise _refused(f"it is for node {claims.node!r}, this is {node!r}")
    if claims.server != server:
        raise _refused(f"it is for server {claims.server!r}")
    return claims


#: Seconds a key id the store did not have is answered "no such key" without asking.
MISSING_RECHECK = 2.0


class ConsoleKeys:
    """The signing keys as this daemon knows them: read from the store once each and
    created there when missing. ``rotation`` (seconds each key signs) must be the same
    on every node."""

    def __init__(self) -> None:
        self._keys: dict[int, bytes] = {}
        #: Key ids the store did not have, and when it was asked (a forged token's id
        #: costs one store read per :data:`MISSING_RECHECK` seconds, not one per call).
        self._missing: dict[int, float] = {}

    async def signing_key(self, db: Database, now: float, rotation: float) -> tuple[int, bytes]:
        """The key to sign with now and its id (created in the store if absent)."""
        kid = int(now // rotation)
        key = self._keys.get(kid)
        if key is None:
            fresh = secrets.token_hex(32)

            def ensure(conn: sqlite3.Connection) -> str:
                stored = kv.insert_absent(conn, f"{KEY_PREFIX}{kid}", fresh)
                for name in kv.items(conn, KEY_PREFIX):  # retire those no check accepts
                    number = name.removeprefix(KEY_PREFIX)
                    if not number.isdigit() or int(number) < kid - 1:
                        kv.delete(conn, name)
                return stored

            key = bytes.fromhex(await db.call(ensure))
            self._remember(kid, key)
        return kid, key

    async def checking_key(
        self, db: Database, kid: int, now: float, rotation: float
    ) -> bytes | None:
        """The key ``kid`` if a check accepts it now (the current or the previous one,
        or the next one of a node whose clock is a little ahead) and it exists; else None."""
        current = int(now // rotation)
        if not current - 1 <= kid <= current + 1:
            return None
        key = self._keys.get(kid)
        if key is None:
            asked = self._missing.get(kid)
            if asked is not None and now - asked < MISSING_RECHECK:
                return None
            text = await db.call(lambda conn: kv.get(conn, f"{KEY_PREFIX}{kid}"))
            if text is None:
                self._missing = {k: t for k, t in self._missing.items() if k >= current - 1}
                self._missing[kid] = now
                return None
            key = bytes.fromhex(text)
            self._missing.pop(kid, None)
            self._remember(kid, key)
        return key

    def _remember(self, kid: int, key: bytes) -> None:
        self._keys[kid] = key
        for old in [k for k in self._keys if k < max(self._keys) - 2]:
            del self._keys[old]

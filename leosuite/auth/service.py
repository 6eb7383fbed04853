"""Accounts, login with proof-of-work, and access tokens.

State that must be fast (pending login randoms, recent failures, a token cache)
lives in memory; accounts and token hashes live in the store. Times are unix
seconds from the injected :class:`~leosuite.clock.WallClock`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Sequence

import msgspec

from ..audit import Actor, AuditLog
from ..errors import AuthError, InvalidInput
from ..settings import AuthSettings
from ..store import accounts, tokens
from ..store.db import Database
from . import pow as proof_of_work
from .limits import Limiter
from .passwords import PasswordHasher
from .permissions import permissions_of

__all__ = ["AuthService", "LoginInfo", "LoginResult", "Principal", "TOKEN_PATTERN"]

#: What a token may look like on the wire (seed 001: hex, at most 128 characters).
TOKEN_PATTERN = re.compile(r"[0-9a-f]{1,128}")
#: How far a token's stored expiry may lag its sliding expiry before it is written again.
_EXPIRY_WRITE_SLACK = 60.0
#: A cached token is checked against the store again after this many seconds, so tokens
#: destroyed by another process (``leosuite user lock`` on the store) stop working.
_RECHECK_AFTER = 5.0
_FAILED_LOGIN = "unknown username or wrong password"  # audited as "login failed: ..."
#: Failures remembered per address or account within ``auth.failure_window``.
_FAILURES_REMEMBERED = 64


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """An authenticated account, as the API layers see it."""

    account_id: int
    username: str
    flags: frozenset[str]
    token_hash: str = ""

    def actor(self, ip: str) -> Actor:
        return Actor(id=self.account_id, ip=ip, name=self.username)


class PasswordPolicy(msgspec.Struct, frozen=True, kw_only=True):
    min_length: int
    max_length: int = 1024


class LoginInfo(msgspec.Struct, frozen=True, kw_only=True):
    random: str
    expires_in: int
    proof_of_works: int
    difficulty: int
    algorithm: str
    password_policy: PasswordPolicy


class UserView(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    username: str
    flags: list[str]


class LoginResult(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    expires_in: int
    user: UserView
    permissions: list[str]


class _Pending(msgspec.Struct, kw_only=True):
    expires_at: float
    difficulty: int
    count: int


class _CachedToken(msgspec.Struct, kw_only=True):
    principal: Principal
    expires_at: float
    stored_expires_at: float
    #: When the store was last asked whether the token and its account still stand.
    checked_at: float


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AuthService:
    def __init__(
        self,
        db: Database,
        hasher: PasswordHasher,
        settings: AuthSettings,
        audit: AuditLog,
        now: Callable[[], float],
    ) -> None:
        self._db = db
        self._hasher = hasher
        self._settings = settings
        self._audit = audit
        self._now = now
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        #: Recent login failures by ``ip:ADDRESS`` and ``user:NAME``.
        self._failures = Limiter(now, window=settings.failure_window, limit=_FAILURES_REMEMBERED)
        self._tokens: dict[str, _CachedToken] = {}
        #: Called with (account_id, reason) when an account's tokens are destroyed.
        self.on_revoked: list[Callable[[int, str], None]] = []
        #: Called with (token_hash, reason) when one token ends (logout, expiry, destroyed).
        self.on_token_revoked: list[Callable[[str, str], None]] = []

    # -- proof-of-work login -------------------------------------------------------

    def difficulty_for(self, ip: str, username: str | None = None) -> int:
        """Base difficulty plus one bit per two recent failures from the address or account."""
        failures = self._failures.count("ip:" + ip)
        if username:
            failures = max(failures, self._failures.count("user:" + username.lower()))
        return min(self._settings.pow_difficulty + failures // 2, self._settings.pow_max_difficulty)

    def login_info(self, ip: str, username: str | None = None) -> LoginInfo:
        now = self._now()
        while self._pending and (
            len(self._pending) >= self._settings.max_pending_logins
            or next(iter(self._pending.values())).expires_at <= now
        ):
            self._pending.popitem(last=False)
        random = secrets.token_hex(16)
        difficulty = self.difficulty_for(ip, username)
        self._pending[random] = _Pending(
            expires_at=now + self._settings.login_info_ttl,
            difficulty=difficulty,
            count=self._settings.pow_count,
        )
        return LoginInfo(
            random=random,
            expires_in=int(self._settings.login_info_ttl),
            proof_of_works=self._settings.pow_count,
            difficulty=difficulty,
            algorithm="sha256",
            password_policy=PasswordPolicy(min_length=self._settings.min_password_length),
        )

    async def login(
        self, username: str, password: str, random: str, proofs: Sequence[str], ip: str
    ) -> LoginResult:
        actor = Actor(ip=ip, name=username[:64])
        pending = self._pending.pop(random, None)  # spent now, right or wrong
        if pending is None or pending.expires_at <= self._now():
            await self._fail(
                actor, "unknown, expired or already used random; fetch login_info again"
            )
        assert pending is not None
        reason = proof_of_work.check_proofs(
            random, proofs, count=pending.count, difficulty=pending.difficulty
        )
        if reason is not None:
            await self._fail(actor, reason)
        required = self.difficulty_for(ip, username)
        if pending.difficulty < required:
            await self._fail(
                actor,
                f"more proof of work is needed now (difficulty {required}); "
                "fetch login_info again with ?username=",
                count=False,
            )
        token, principal = await self.password_login(username, password, ip)
        return LoginResult(
            access_token=token,
            expires_in=int(self._settings.token_ttl),
            user=UserView(
                id=principal.account_id, username=principal.username, flags=sorted(principal.flags)
            ),
            permissions=permissions_of(principal.flags),
        )

    async def password_login(self, username: str, password: str, ip: str) -> tuple[str, Principal]:
        """Check a password and issue a token (the WebSocket login, and the last step of
        the proof-of-work login). Failures are audited and raise :class:`AuthError`."""
        actor = Actor(ip=ip, name=username[:64])
        if len(username) > 64 or len(password) > 1024:
            await self._fail(actor, _FAILED_LOGIN, keys=("ip:" + ip,))
        account = await self._db.call(lambda conn: accounts.get_by_name(conn, username))
        ok = await self.verify_password(account, password)
        if account is None or not ok:
            await self._fail(actor, _FAILED_LOGIN, keys=("ip:" + ip, "user:" + username.lower()))
        assert account is not None
        actor = Actor(id=account.id, ip=ip, name=account.username)
        if account.locked:
            await self._fail(actor, "this account is locked", keys=("ip:" + ip,))
        token = secrets.token_hex(32)
        principal = Principal(
            account_id=account.id,
            username=account.username,
            flags=frozenset(account.flags),
            token_hash=hash_token(token),
        )
        created_at = self._now()
        expires_at = created_at + self._settings.token_ttl

        def insert(conn: sqlite3.Connection) -> None:
            tokens.insert(
                conn,
                token_hash=principal.token_hash,
                account_id=account.id,
                created_at=created_at,
                expires_at=expires_at,
                last_ip=ip,
            )

        await self._db.call(insert)
        self._tokens[principal.token_hash] = _CachedToken(
            principal=principal,
            expires_at=expires_at,
            stored_expires_at=expires_at,
            checked_at=created_at,
        )
        await self._audit.record("auth", "login", actor=actor)
        return token, principal

    async def _fail(
        self,
        actor: Actor,
        reason: str,
        *,
        keys: tuple[str, ...] | None = None,
        count: bool = True,
    ) -> None:
        if count:
            for key in keys or ("ip:" + actor.ip,):
                self._failures.note(key)
        await self._audit.record("auth", f"login failed: {reason}", actor=actor, level="warning")
        raise AuthError(reason)

    # -- tokens ---------------------------------------------------------------------

    async def authenticate(self, token: str) -> Principal:
        """The principal behind ``token``; renews its sliding expiry. 403 otherwise."""
        if not TOKEN_PATTERN.fullmatch(token):
            raise AuthError("malformed access token (expected 1-128 lowercase hex characters)")
        token_hash = hash_token(token)
        now = self._now()
        cached = self._tokens.get(token_hash)
        if cached is None or now - cached.checked_at > _RECHECK_AFTER:
            row = await self._db.call(lambda conn: tokens.get_by_hash(conn, token_hash))
            account = (
                None
                if row is None
                else await self._db.call(lambda conn: accounts.get(conn, row.account_id))
            )
            if row is None or account is None or account.locked:
                if cached is not None:
                    self._token_gone(token_hash, "token destroyed")
                raise AuthError("invalid or expired access token")
            expires_at = max(row.expires_at, cached.expires_at if cached else row.expires_at)
            cached = _CachedToken(
                principal=Principal(
                    account_id=account.id,
                    username=account.username,
                    flags=frozenset(account.flags),
                    token_hash=token_hash,
                ),
                expires_at=expires_at,
                stored_expires_at=row.expires_at,
                checked_at=now,
            )
            self._tokens[token_hash] = cached
        if cached.expires_at <= now:
            self._token_gone(token_hash, "token expired")
            await self._db.call(lambda conn: tokens.delete_by_hash(conn, token_hash))
            raise AuthError("invalid or expired access token")
        cached.expires_at = now + self._settings.token_ttl
        if cached.expires_at - cached.stored_expires_at > _EXPIRY_WRITE_SLACK:
            new_expiry = cached.expires_at
            await self._db.call(lambda conn: tokens.set_expiry(conn, token_hash, new_expiry))
            cached.stored_expires_at = new_expiry
        return cached.principal

    def _token_gone(self, token_hash: str, reason: str) -> None:
        self._tokens.pop(token_hash, None)
        for callback in list(self.on_token_revoked):
            callback(token_hash, reason)

    async def logout(self, principal: Principal, ip: str) -> None:
        token_hash = principal.token_hash
        self._token_gone(token_hash, "logged out")
        await self._db.call(lambda conn: tokens.delete_by_hash(conn, token_hash))
        await self._audit.record("auth", "logout", actor=principal.actor(ip))

    async def revoke_account(self, account_id: int, reason: str) -> int:
        """Destroy every token of an account (logout everywhere, lock, password change)."""
        for key in [k for k, v in self._tokens.items() if v.principal.account_id == account_id]:
            del self._tokens[key]
        count = await self._db.call(lambda conn: tokens.delete_for_account(conn, account_id))
        for callback in list(self.on_revoked):
            callback(account_id, reason)
        return count

    async def purge_expired(self) -> int:
        """Housekeeping: forget expired tokens and login randoms."""
        now = self._now()
        for key in [k for k, v in self._tokens.items() if v.expires_at <= now]:
            self._token_gone(key, "token expired")
        for key in [k for k, v in self._pending.items() if v.expires_at <= now]:
            del self._pending[key]
        self._failures.prune()
        # Tokens whose sliding expiry is only in memory are written back before the purge.
        live = [
            (k, v.expires_at) for k, v in self._tokens.items() if v.expires_at > v.stored_expires_at
        ]
        for key, expiry in live:
            self._tokens[key].stored_expires_at = expiry

        def purge(conn: sqlite3.Connection) -> int:
            for token_hash, expiry in live:
                tokens.set_expiry(conn, token_hash, expiry)
            return tokens.purge_expired(conn, now)

        return await self._db.call(purge)

    # -- accounts -------------------------------------------------------------------

    @property
    def hasher(self) -> PasswordHasher:
        """The daemon's password hasher (the admin API hashes new passwords with it)."""
        return self._hasher

    async def verify_password(self, account: accounts.Account | None, password: str) -> bool:
        """Check a password; an unknown account costs the same (a dummy hash is verified)."""
        return await self._hasher.verify(account.password_hash if account else None, password)

    def check_password_policy(self, password: str) -> None:
        if len(password) < self._settings.min_password_length:
            raise InvalidInput(
                f"password must be at least {self._settings.min_password_length} characters",
                field="password",
            )
        if len(password) > 1024 or "\x00" in password:
            raise InvalidInput(
                "password must be at most 1024 characters, without NUL", field="password"
            )

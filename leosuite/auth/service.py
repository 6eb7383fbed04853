"""Accounts, login with proof-of-work, and access tokens.

State that must be fast (pending login randoms, recent failures, a token cache)
lives in memory; accounts and token hashes live in the store. Times are unix
seconds from the injected :class:`~leosuite.clock.WallClock`.

Who may ask for a login and what it costs is :mod:`.login_limits`. A token lives
``auth.token_ttl`` seconds after its last use and at most ``auth.token_max_lifetime``
after its login; the address it was last used from is stored, so a ban of that address
ends it (:meth:`AuthService.end_tokens_used_from`).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Sequence

import msgspec
import trio

from ..audit import Actor, AuditLog
from ..errors import AuthError, DiskFull, InvalidInput, RateLimited
from ..settings import AuthSettings
from ..store import accounts, tokens
from ..store.db import Database
from . import pow as proof_of_work
from .limits import Limiter
from .login_limits import Challenge, LoginFailures, PendingLogins, address_key
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


class _CachedToken(msgspec.Struct, kw_only=True):
    principal: Principal
    expires_at: float
    stored_expires_at: float
    #: The absolute end: its login plus ``auth.token_max_lifetime``.
    ends_at: float
    #: The address it was last used from, as stored.
    last_ip: str
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
        self._pending = PendingLogins(
            limit=settings.max_pending_logins, per_network=settings.max_pending_logins_per_ip
        )
        self._login_infos = Limiter(now, window=60.0, limit=settings.login_info_per_minute)
        self._failures = LoginFailures(now, settings)
        #: Logins that succeeded and that failed since the daemon started (the metrics).
        self.logins = self.failed_logins = 0
        self._tokens: dict[str, _CachedToken] = {}
        #: Accounts whose tokens a change under way deletes (it ends them, with its reason).
        self._ending: dict[int, int] = {}
        #: A re-check left tokens to such a change: check again once it is over (the
        #: change may have ended none, and another node deleted them).
        self._recheck_wanted = False
        #: A new token's first lifetime: the sliding one, unless the absolute one is shorter.
        self._token_ttl = min(settings.token_ttl, settings.token_max_lifetime)
        #: Called with (account_id, reason) when an account's tokens are destroyed.
        self.on_revoked: list[Callable[[int, str], None]] = []
        #: Called with (token_hash, reason) when one token ends (logout, expiry, destroyed).
        self.on_token_revoked: list[Callable[[str, str], None]] = []
        #: Awaited whenever another process may have changed the store (after the
        #: tokens are re-checked): services re-check what they hold without a token.
        self.on_store_changed: list[Callable[[], Awaitable[object]]] = []
        #: Called after this daemon ended tokens in the store (logout, a ban, an
        #: account's change): other nodes of the store re-check theirs.
        self.on_tokens_ended: list[Callable[[], None]] = []

    # -- proof-of-work login -------------------------------------------------------

    def difficulty_for(self, ip: str, username: str | None = None) -> int:
        """Base difficulty plus one bit per two recent failures from the address; those
        against the account from anywhere add at most ``auth.pow_account_max_extra``."""
        return self._failures.difficulty(ip, username)

    def login_info(self, ip: str, username: str | None = None) -> LoginInfo:
        """A new random for ``ip``; RateLimited beyond ``auth.login_info_per_minute``."""
        network = address_key(ip)
        if not self._login_infos.take(network):
            raise RateLimited("too many login_info requests from this address; wait a minute")
        now = self._now()
        random = secrets.token_hex(16)
        difficulty = self.difficulty_for(ip, username)
        challenge = Challenge(
            expires_at=now + self._settings.login_info_ttl,
            difficulty=difficulty,
            count=self._settings.pow_count,
            network=network,
        )
        self._pending.add(random, challenge, now)
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
        pending = self._pending.pop(random)  # spent now, right or wrong
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
            expires_in=int(self._token_ttl),
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
            await self._fail(actor, _FAILED_LOGIN)
        account = await self._db.call(lambda conn: accounts.get_by_name(conn, username))
        ok = await self.verify_password(account, password)
        if account is None or not ok:
            await self._fail(actor, _FAILED_LOGIN, account=username)
        assert account is not None
        actor = Actor(id=account.id, ip=ip, name=account.username)
        if account.locked:
            await self._fail(actor, "this account is locked")
        token = secrets.token_hex(32)
        principal = Principal(
            account_id=account.id,
            username=account.username,
            flags=frozenset(account.flags),
            token_hash=hash_token(token),
        )
        created_at = self._now()
        expires_at = created_at + self._token_ttl

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
            ends_at=created_at + self._settings.token_max_lifetime,
            last_ip=ip,
        )
        self.logins += 1
        await self._audit.record("auth", "login", actor=actor)
        return token, principal

    async def _fail(
        self,
        actor: Actor,
        reason: str,
        *,
        account: str | None = None,
        count: bool = True,
    ) -> None:
        if count:
            self._failures.note(actor.ip, account)
        self.failed_logins += 1
        await self._audit.record("auth", f"login failed: {reason}", actor=actor, level="warning")
        raise AuthError(reason)

    # -- tokens ---------------------------------------------------------------------

    async def authenticate(self, token: str, *, ip: str | None = None) -> Principal:
        """The principal behind ``token``; renews its sliding expiry (never past its
        absolute end) and records ``ip`` as the address it was last used from. 403
        otherwise."""
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
            ends_at = row.created_at + self._settings.token_max_lifetime
            expires_at = max(row.expires_at, cached.expires_at if cached else row.expires_at)
            cached = _CachedToken(
                principal=Principal(
                    account_id=account.id,
                    username=account.username,
                    flags=frozenset(account.flags),
                    token_hash=token_hash,
                ),
                expires_at=min(expires_at, ends_at),
                stored_expires_at=row.expires_at,
                checked_at=now,
                ends_at=ends_at,
                last_ip=row.last_ip,
            )
            self._tokens[token_hash] = cached
        if cached.expires_at <= now:
            self._token_gone(token_hash, "token expired")
            with contextlib.suppress(DiskFull):  # an expired token is refused all the same
                await self._db.call(lambda conn: tokens.delete_by_hash(conn, token_hash))
            raise AuthError("invalid or expired access token")
        cached.expires_at = min(now + self._settings.token_ttl, cached.ends_at)
        moved = bool(ip) and ip != cached.last_ip
        if moved or cached.expires_at - cached.stored_expires_at > _EXPIRY_WRITE_SLACK:
            if ip:
                cached.last_ip = ip
            new_expiry, last_ip = cached.expires_at, cached.last_ip

            def write(conn: sqlite3.Connection) -> None:
                tokens.set_expiry(conn, token_hash, new_expiry, last_ip=last_ip)

            try:
                await self._db.call(write)
            except DiskFull:
                # A full disk never fails an authenticated call: the renewal stays in
                # memory and a later call writes it once there is space again.
                pass
            else:
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
        self._tokens_ended()
        await self._audit.record("auth", "logout", actor=principal.actor(ip))

    async def end_tokens_used_from(self, covered: Callable[[str], bool], reason: str) -> int:
        """Destroy every token last used from an address ``covered`` accepts (an IP ban
        of it); their connections are told through ``on_token_revoked``. How many."""
        # the cache's address may be newer than the store's while its write is under way
        cached = [k for k, v in self._tokens.items() if covered(v.last_ip)]

        def delete(conn: sqlite3.Connection) -> set[str]:
            ended = set(tokens.delete_used_from(conn, covered))
            return ended | {k for k in cached if tokens.delete_by_hash(conn, k)}

        gone = await self._db.call(delete) | set(cached)
        for token_hash in sorted(gone):
            self._token_gone(token_hash, reason)
        if gone:
            self._tokens_ended()
        return len(gone)

    def _tokens_ended(self) -> None:
        for callback in list(self.on_tokens_ended):
            callback()

    def mark_stale(self) -> None:
        """Read every cached token's account from the store again at its next use
        (another node changed accounts)."""
        for cached in self._tokens.values():
            cached.checked_at = -math.inf

    async def recheck_tokens(self) -> int:
        """End every cached token the store no longer holds, or whose account is locked
        (another process wrote it: ``leosuite user lock`` or ``passwd``); how many."""
        hashes = list(self._tokens)
        if not hashes:
            return 0
        live = await self._db.call(lambda conn: tokens.live_hashes(conn, hashes))
        missing = [h for h in hashes if h not in live and h in self._tokens]
        gone = [h for h in missing if self._tokens[h].principal.account_id not in self._ending]
        self._recheck_wanted = len(gone) < len(missing)
        for token_hash in gone:
            self._token_gone(token_hash, "token destroyed")
        return len(gone)

    async def revoke_account(self, account_id: int, reason: str) -> int:
        """Destroy every token of an account (logout everywhere, lock, password change):
        the store first, then the cache and the sessions, which a cancellation cannot
        split."""
        with trio.CancelScope(shield=True), self.ending_account(account_id):
            count = await self._db.call(lambda conn: tokens.delete_for_account(conn, account_id))
            self.forget_account(account_id, reason)
        return count

    @property
    def recheck_wanted(self) -> bool:
        """A re-check left tokens to an account's change that is over now: re-check."""
        return self._recheck_wanted and not self._ending

    @contextlib.contextmanager
    def ending_account(self, account_id: int) -> Iterator[None]:
        """Around a change that deletes an account's tokens and then calls
        :meth:`forget_account`: a re-check meanwhile leaves them to it, so that their
        sessions end with the change's reason (``account locked``), not ``token destroyed``."""
        self._ending[account_id] = self._ending.get(account_id, 0) + 1
        try:
            yield
        finally:
            if self._ending[account_id] == 1:
                del self._ending[account_id]
            else:
                self._ending[account_id] -= 1

    def forget_account(self, account_id: int, reason: str) -> None:
        """End the sessions of an account whose tokens the store no longer holds (the
        transaction that changed the account deleted them): the cache and ``on_revoked``."""
        for key in [k for k, v in self._tokens.items() if v.principal.account_id == account_id]:
            del self._tokens[key]
        for callback in list(self.on_revoked):
            callback(account_id, reason)
        self._tokens_ended()

    async def purge_expired(self) -> int:
        """Housekeeping: forget expired tokens and login randoms."""
        now = self._now()
        for key in [k for k, v in self._tokens.items() if v.expires_at <= now]:
            self._token_gone(key, "token expired")
        self._pending.purge(now)
        self._failures.prune()
        self._login_infos.prune()
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

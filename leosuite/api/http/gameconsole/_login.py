"""``?service=password``: GameConsole's login, on leosuite's accounts and tokens.

A request without all of ``username``, ``password`` and ``random`` asks for a random:
``{"random", "proofs"}``. One with all three is a login: its ``random`` is spent, right
or wrong; at least ``proofs`` of its ``proofofwork`` strings must meet the rule of
:mod:`._proofs`; then the password is checked by :meth:`AuthService.password_login`
(the same accounts, tokens, audit entries and failure counts as leosuite's own login).
A login that fails is answered ``200 {"error": "..."}``, as the origin did: the client
then asks for a new random and shows its form again.

Randoms are bounded like leosuite's own (``auth.max_pending_logins``, per network
``auth.max_pending_logins_per_ip``, ``auth.login_info_per_minute`` new ones a minute,
each valid ``auth.login_info_ttl`` seconds). The proofs a random asks for follow the
difficulty leosuite's own login would ask of the address (:func:`._proofs.proof_count`);
a login that needs more for its account than its random asked for is refused without
counting as a failure, and the address's next random asks for that much.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import msgspec

from ....audit import Actor, AuditLog
from ....auth.limits import Limiter
from ....auth.login_limits import Challenge, PendingLogins, address_key
from ....auth.permissions import may_create_servers, permissions_of
from ....auth.service import AuthService
from ....errors import AuthError, InvalidInput, RateLimited
from ....settings import AuthSettings
from ._proofs import MAX_PROOFS, good_proofs, proof_count

__all__ = ["GameConsoleLogins", "PasswordBody"]

#: The most strings a login's ``proofofwork`` may hold (twice what any random asks for).
MAX_LISTED_PROOFS = 2 * MAX_PROOFS
#: Networks whose next random must ask for more than their own failures earn.
_MAX_RAISED = 10_000


class PasswordBody(msgspec.Struct, kw_only=True):
    """What the client posts to ``?service=password`` (unknown fields are ignored, as the
    origin did)."""

    username: str = ""
    password: str = ""
    random: str = ""
    proofofwork: list[str] = msgspec.field(default_factory=list)


class GameConsoleLogins:
    """The randoms handed out to GameConsole clients and the logins that spend them."""

    def __init__(
        self,
        auth: AuthService,
        audit: AuditLog,
        settings: AuthSettings,
        now: Callable[[], float],
    ) -> None:
        self._auth = auth
        self._audit = audit
        self._settings = settings
        self._now = now
        self._pending = PendingLogins(
            limit=settings.max_pending_logins, per_network=settings.max_pending_logins_per_ip
        )
        self._randoms = Limiter(now, window=60.0, limit=settings.login_info_per_minute)
        #: network -> (difficulty its next random asks for, until when)
        self._raised: OrderedDict[str, tuple[int, float]] = OrderedDict()

    async def answer(self, body: PasswordBody, ip: str) -> dict[str, Any]:
        if not (body.username and body.password and body.random):
            return self.new_random(ip)
        return await self.login(body, ip)

    def new_random(self, ip: str) -> dict[str, Any]:
        network = address_key(ip)
        if not self._randoms.take(network):
            raise RateLimited("too many login randoms asked for from this address; wait a minute")
        now = self._now()
        difficulty = self._auth.difficulty_for(ip)
        raised = self._raised.get(network)
        if raised is not None:
            if raised[1] > now:
                difficulty = max(difficulty, raised[0])
            else:
                del self._raised[network]
        count = proof_count(self._settings.pow_count, difficulty)
        random = secrets.token_hex(16)
        self._pending.add(
            random,
            Challenge(
                expires_at=now + self._settings.login_info_ttl,
                difficulty=difficulty,
                count=count,
                network=network,
            ),
            now,
        )
        return {"random": random, "proofs": count}

    async def login(self, body: PasswordBody, ip: str) -> dict[str, Any]:
        if len(body.proofofwork) > MAX_LISTED_PROOFS:
            raise InvalidInput(
                f"proofofwork: at most {MAX_LISTED_PROOFS} strings", field="proofofwork"
            )
        if len(body.username) > 64 or len(body.password) > 1024 or len(body.random) > 64:
            raise InvalidInput("username, password or random too long", field="username")
        actor = Actor(ip=ip, name=body.username)
        challenge = self._pending.pop(body.random)  # spent now, right or wrong
        if challenge is None or challenge.expires_at <= self._now():
            return await self._refused(actor, "unknown, expired or already used random")
        found = good_proofs(body.random, body.proofofwork)
        if found < challenge.count:
            return await self._refused(
                actor, f"{challenge.count} proofs of work needed, {found} good ones sent"
            )
        required = self._auth.difficulty_for(ip, body.username)
        if proof_count(self._settings.pow_count, required) > challenge.count:
            self._raise(challenge.network, required)
            return await self._refused(
                actor, "more proof of work is needed now; the next random asks for it"
            )
        try:
            token, principal = await self._auth.password_login(body.username, body.password, ip)
        except AuthError as exc:  # audited and counted by the auth service
            return {"error": exc.message}
        return {
            "session_token": token,
            "screenusername": principal.username,
            "servercreatepermission": may_create_servers(principal),
            "permissions": permissions_of(principal.flags),
        }

    async def _refused(self, actor: Actor, reason: str) -> dict[str, Any]:
        await self._audit.record(
            "auth", f"login failed (GameConsole): {reason}", actor=actor, level="warning"
        )
        return {"error": reason}

    def _raise(self, network: str, difficulty: int) -> None:
        self._raised.pop(network, None)
        self._raised[network] = (difficulty, self._now() + self._settings.failure_window)
        while len(self._raised) > _MAX_RAISED:
            self._raised.popitem(last=False)

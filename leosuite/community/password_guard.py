"""Wrong session passwords (a room user's ``joinRoom``, a chat channel's join
password), counted per address and per session, as plain state.

An address (an IPv6 /64 counts as one) that sent ``wrong_passwords_per_ip`` wrong
passwords within ``wrong_password_window`` seconds is refused, before any password
is checked, until the oldest of them leaves the window. A session that got
``wrong_passwords_per_session`` wrong passwords within the window is under attack:
then an address that guessed wrong on it within the window is refused there too,
while an address that has not may still try, so the session's own users are not
locked out by guessers elsewhere. A refusal is :class:`~leosuite.errors.RateLimited`.

An attempt counts from the moment it is admitted (:meth:`PasswordGuard.reserve`), not
from when its password turns out wrong: attempts still being checked count as wrong
ones, so concurrent attempts cannot all pass the check before the first is recorded;
a right password gives its place back.

Wrong passwords and refusals are audited (``RuleBreak``) once per burst: the first
of each kind in a minute per address, with how many were passed over since.
"""

from __future__ import annotations

from collections.abc import Callable

from ..auth.limits import InFlight, Limiter
from ..auth.login_limits import address_key
from ..errors import RateLimited
from .models import AuditRecord, ChatLimits, normalize_channel

__all__ = ["Attempt", "PasswordGuard"]

#: One audit entry per address and kind (wrong password, refusal) per this many seconds.
_BURST = 60.0


class PasswordGuard:
    """Who may try a session password now, and the record of those that were wrong."""

    def __init__(
        self,
        clock: Callable[[], float],
        limits: ChatLimits,
        *,
        on_audit: Callable[[AuditRecord], None] = lambda _record: None,
    ) -> None:
        window = limits.wrong_password_window
        self._addresses = Limiter(clock, window=window, limit=limits.wrong_passwords_per_ip)
        self._sessions = Limiter(clock, window=window, limit=limits.wrong_passwords_per_session)
        self._pairs = Limiter(clock, window=window, limit=1)
        self._bursts = Limiter(clock, window=_BURST, limit=1)
        self._on_audit = on_audit
        #: Attempts admitted and not settled yet, per address, session and pair.
        self._pending = InFlight()

    def check(self, ip: str, session: str, *, name: str = "", session_id: str = "") -> None:
        """Refuse (RateLimited) a password attempt by ``ip`` on ``session`` (a room or
        channel name) while its address or the session is over its limit (attempts
        being checked count as wrong ones)."""
        network, target = address_key(ip), _fold(session)
        pair, pending = f"{target} {network}", self._pending
        if self._addresses.count(network) + pending["ip " + network] >= self._addresses.limit:
            reason = "too many wrong passwords from this address"
        elif (
            self._sessions.count(target) + pending["session " + target] >= self._sessions.limit
            and self._pairs.count(pair) + pending["pair " + pair] > 0
        ):
            reason = f"too many wrong passwords for {session}"
        else:
            return
        self._audit(
            "refused " + network,
            f"password attempt for {session} refused: {reason}",
            ip,
            name,
            session_id,
        )
        raise RateLimited(f"{reason}; try again in a few minutes")

    def reserve(self, ip: str, session: str, *, name: str = "", session_id: str = "") -> Attempt:
        """:meth:`check`, then hold a place for the attempt until it is settled."""
        self.check(ip, session, name=name, session_id=session_id)
        return Attempt(self, ip, session, name, session_id)

    def failed(self, ip: str, session: str, *, name: str = "", session_id: str = "") -> None:
        """Count a wrong password (or an unknown room or user) from ``ip``."""
        network, target = address_key(ip), _fold(session)
        self._addresses.note(network)
        self._sessions.note(target)
        self._pairs.note(f"{target} {network}")
        self._audit("wrong " + network, f"wrong password for {session}", ip, name, session_id)

    def _audit(self, key: str, message: str, ip: str, name: str, session_id: str) -> None:
        skipped = self._bursts.first(key)
        if skipped is None:
            return
        more = f" ({skipped} more since the last entry)" if skipped else ""
        self._on_audit(
            AuditRecord(
                topic="RuleBreak",
                message=message + more,
                session=session_id,
                ip=ip,
                name=name[:64],
                level="warning",
            )
        )


class Attempt:
    """One admitted password attempt; :meth:`settle` it exactly once, wrong or right
    (an attempt abandoned before its verdict counts as wrong)."""

    __slots__ = ("_guard", "_keys", "ip", "name", "session", "session_id")

    def __init__(self, guard: PasswordGuard, ip: str, session: str, name: str,
                 session_id: str) -> None:  # fmt: skip
        network, target = address_key(ip), _fold(session)
        self._guard: PasswordGuard | None = guard
        self._keys = ("ip " + network, "session " + target, f"pair {target} {network}")
        self.ip, self.session, self.name, self.session_id = ip, session, name, session_id
        guard._pending.add(*self._keys)

    def settle(self, ok: bool) -> None:
        """Give the place back; a wrong password is then counted as one."""
        guard, self._guard = self._guard, None
        if guard is None:
            return
        guard._pending.remove(*self._keys)
        if not ok:
            guard.failed(self.ip, self.session, name=self.name, session_id=self.session_id)


def _fold(session: str) -> str:
    return normalize_channel(session).casefold()

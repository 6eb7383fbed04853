"""The login's limits as plain state: the pending challenges (``login_info`` randoms)
and the proof-of-work difficulty that failed logins earn.

Addresses are counted by network (:func:`address_key`): an IPv4 address on its own,
an IPv6 address by its /64, the block one subscriber gets and can rotate through
freely.

Pending challenges (:class:`PendingLogins`) are bounded per network and in all. A
network at its own bound gives up its own oldest challenge; when every place is
taken, the network holding the most gives up its oldest, so no network can evict the
challenge of one that holds fewer.

Difficulty (:class:`LoginFailures`): one extra bit per two failures from the network
within the window, up to the maximum (every failure for an account from a network is
one from that network, so guessing one account from one address escalates for that
pair as fast); failures against an account from anywhere add at most
``auth.pow_account_max_extra`` bits, so a distributed guesser cannot price the owner
out of a login from a network that has not failed.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Callable

import msgspec

from ..settings import AuthSettings
from .limits import Limiter

__all__ = ["Challenge", "LoginFailures", "PendingLogins", "address_key"]

#: Failures remembered per network or account within the window.
_FAILURES_REMEMBERED = 64


def address_key(ip: str) -> str:
    """The network an address is counted as: IPv4 itself (also IPv4-mapped IPv6),
    IPv6 its /64; anything that is not an address, as given."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)


class Challenge(msgspec.Struct, kw_only=True):
    """One unspent ``login_info`` random: what its login must show, and whose it is."""

    expires_at: float
    difficulty: int
    count: int
    network: str


class PendingLogins:
    """Unspent randoms, oldest first: at most ``per_network`` per network and ``limit``
    in all (see the module docstring for who gives one up)."""

    def __init__(self, *, limit: int, per_network: int) -> None:
        if limit < 1 or per_network < 1:
            raise ValueError("pending logins need limit >= 1 and per_network >= 1")
        self.limit = limit
        self.per_network = min(per_network, limit)
        self._all: OrderedDict[str, Challenge] = OrderedDict()
        #: network -> its randoms, oldest first
        self._held: dict[str, OrderedDict[str, None]] = {}
        #: ``_holders[n]``: the networks holding exactly n randoms (n >= 1)
        self._holders: list[dict[str, None]] = [{} for _ in range(self.per_network + 1)]

    def __len__(self) -> int:
        return len(self._all)

    def add(self, random: str, challenge: Challenge, now: float) -> None:
        """Keep a new random, after dropping the expired ones and making room."""
        self.purge(now)
        network = challenge.network
        held = self._held.get(network)
        if held is not None and len(held) >= self.per_network:
            self.pop(next(iter(held)))
        elif len(self._all) >= self.limit:
            richest = next(n for n in reversed(self._holders) if n)
            self.pop(next(iter(self._held[next(iter(richest))])))
        held = self._held.setdefault(network, OrderedDict())
        self._move(network, len(held), len(held) + 1)
        held[random] = None
        self._all[random] = challenge

    def pop(self, random: str) -> Challenge | None:
        """Take a random out (spent, expired or given up); None if it is not pending."""
        challenge = self._all.pop(random, None)
        if challenge is None:
            return None
        network = challenge.network
        held = self._held[network]
        del held[random]
        self._move(network, len(held) + 1, len(held))
        if not held:
            del self._held[network]
        return challenge

    def purge(self, now: float) -> int:
        """Drop the randoms that have expired (all live equally long: oldest first)."""
        dropped = 0
        while self._all and next(iter(self._all.values())).expires_at <= now:
            self.pop(next(iter(self._all)))
            dropped += 1
        return dropped

    def held_by(self, network: str) -> int:
        held = self._held.get(network)
        return 0 if held is None else len(held)

    def _move(self, network: str, old: int, new: int) -> None:
        if old:
            del self._holders[old][network]
        if new:
            self._holders[new][network] = None


class LoginFailures:
    """Recent failed logins by network and by account, and the difficulty they earn."""

    def __init__(self, clock: Callable[[], float], settings: AuthSettings) -> None:
        self._failures = Limiter(clock, window=settings.failure_window, limit=_FAILURES_REMEMBERED)
        self.base = settings.pow_difficulty
        self.maximum = settings.pow_max_difficulty
        self.account_extra = settings.pow_account_max_extra

    def note(self, ip: str, username: str | None = None) -> None:
        """One failure from ``ip``, and against ``username`` when it names an account."""
        self._failures.note("ip:" + address_key(ip))
        if username:
            self._failures.note("user:" + username.lower())

    def difficulty(self, ip: str, username: str | None = None) -> int:
        bits = self._failures.count("ip:" + address_key(ip)) // 2
        if username:
            account = self._failures.count("user:" + username.lower()) // 2
            bits = max(bits, min(account, self.account_extra))
        return min(self.base + bits, self.maximum)

    def prune(self) -> None:
        self._failures.prune()

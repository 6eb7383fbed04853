"""The login's limits as plain state, with a fake clock: networks as addresses are
counted, pending randoms bounded per network and in all (who gives one up), and the
difficulty failures earn per network and, boundedly, per account."""

from __future__ import annotations

import pytest

from leosuite.auth.login_limits import Challenge, LoginFailures, PendingLogins, address_key
from leosuite.settings import AuthSettings


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("", ""),
        ("not an address", "not an address"),
    ],
)
def test_address_key(ip: str, key: str) -> None:
    assert address_key(ip) == key


def challenge(network: str, expires_at: float = 100.0) -> Challenge:
    return Challenge(expires_at=expires_at, difficulty=4, count=2, network=network)


def test_a_network_at_its_bound_gives_up_its_own_oldest() -> None:
    pending = PendingLogins(limit=10, per_network=2)
    pending.add("v", challenge("victim"), 0.0)
    for n in range(5):
        pending.add(f"a{n}", challenge("attacker"), 0.0)
    assert pending.held_by("attacker") == 2
    assert len(pending) == 3
    assert pending.pop("a2") is None  # given up
    assert pending.pop("a4") is not None
    assert pending.pop("v") is not None
    assert pending.pop("v") is None  # spent
    assert len(pending) == 1


def test_when_full_the_network_holding_most_gives_up_its_oldest() -> None:
    pending = PendingLogins(limit=4, per_network=3)
    pending.add("v", challenge("victim"), 0.0)
    for n in range(3):
        pending.add(f"a{n}", challenge("attacker"), 0.0)
    pending.add("b0", challenge("other"), 0.0)  # full: the attacker's oldest goes
    assert pending.pop("a0") is None
    pending.add("b1", challenge("other"), 0.0)  # the attacker still holds the most
    assert pending.pop("a1") is None
    assert pending.held_by("victim") == 1
    assert len(pending) == 4
    # even when every network holds one, the newcomer takes one place only
    pending = PendingLogins(limit=2, per_network=3)
    pending.add("x", challenge("x"), 0.0)
    pending.add("y", challenge("y"), 0.0)
    pending.add("z", challenge("z"), 0.0)
    assert (pending.held_by("x"), pending.held_by("y"), pending.held_by("z")) == (0, 1, 1)


def test_expired_randoms_are_dropped() -> None:
    pending = PendingLogins(limit=4, per_network=4)
    pending.add("old", challenge("n", expires_at=10.0), 0.0)
    pending.add("new", challenge("n", expires_at=20.0), 5.0)
    assert pending.purge(10.0) == 1
    assert pending.held_by("n") == 1
    pending.add("newer", challenge("n", expires_at=40.0), 20.0)  # adding purges too
    assert len(pending) == 1
    assert pending.pop("newer") is not None


def test_failures_escalate_per_network_and_boundedly_per_account() -> None:
    clock = Clock()
    settings = AuthSettings(
        pow_difficulty=4, pow_max_difficulty=12, pow_account_max_extra=2, failure_window=100.0
    )
    failures = LoginFailures(clock, settings)
    for n in range(32):  # a guesser spread over four addresses
        failures.note(f"192.0.2.{n % 4}", "Admin")
    assert failures.difficulty("192.0.2.0", "admin") == 8  # 8 failures: 4 bits
    assert failures.difficulty("192.0.2.0") == 8
    assert failures.difficulty("198.51.100.1", "ADMIN") == 6  # the owner: at most 2 more
    assert failures.difficulty("198.51.100.1", "bob") == 4
    for _ in range(20):
        failures.note("192.0.2.0")
    assert failures.difficulty("192.0.2.0") == 12  # capped
    # one IPv6 /64 is one network
    for n in range(4):
        failures.note(f"2001:db8::{n}")
    assert failures.difficulty("2001:db8::ffff") == 6
    clock.t = 100.0
    assert failures.difficulty("192.0.2.0", "admin") == 4
    failures.prune()

"""The guard of room and channel passwords as plain state, with a fake clock: the
per-address limit, a session under attack (its guessers refused, fresh addresses
not), the window, and one audit record per burst."""

from __future__ import annotations

import msgspec
import pytest

from leosuite.community.models import AuditRecord, ChatLimits
from leosuite.community.password_guard import PasswordGuard
from leosuite.errors import RateLimited

LIMITS = msgspec.structs.replace(
    ChatLimits(), wrong_passwords_per_ip=3, wrong_passwords_per_session=5,
    wrong_password_window=100.0,
)  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def records() -> list[AuditRecord]:
    return []


@pytest.fixture
def guard(clock: Clock, records: list[AuditRecord]) -> PasswordGuard:
    return PasswordGuard(clock, LIMITS, on_audit=records.append)


def guess(guard: PasswordGuard, ip: str, session: str = "den") -> None:
    guard.check(ip, session, name="mallory")
    guard.failed(ip, session, name="mallory")


def test_an_address_is_refused_after_its_limit_until_the_window_passes(
    guard: PasswordGuard, clock: Clock, records: list[AuditRecord]
) -> None:
    for n in range(3):
        clock.t = float(n)
        guess(guard, "192.0.2.1", f"room{n}")  # any sessions: the address counts
    with pytest.raises(RateLimited, match="from this address"):
        guard.check("192.0.2.1", "#Room9", name="mallory")
    guard.check("192.0.2.2", "room0")  # another address is not concerned
    guard.check("2001:db8::1", "room0")
    clock.t = 100.0  # the first wrong one has left the window
    guard.check("192.0.2.1", "room9")
    assert [(r.topic, r.message, r.ip, r.name, r.level) for r in records] == [
        ("RuleBreak", "wrong password for room0", "192.0.2.1", "mallory", "warning"),
        ("RuleBreak", "password attempt for #Room9 refused: too many wrong passwords from "
         "this address", "192.0.2.1", "mallory", "warning"),
    ]  # fmt: skip


def test_one_ipv6_network_is_one_address(guard: PasswordGuard) -> None:
    for n in range(3):
        guess(guard, f"2001:db8::{n}")
    with pytest.raises(RateLimited):
        guard.check("2001:db8::ffff", "den")
    guard.check("2001:db8:0:1::1", "den")


def test_a_session_under_attack_refuses_only_its_guessers(guard: PasswordGuard) -> None:
    for ip in ("192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.2", "192.0.2.3"):
        guess(guard, ip)  # five wrong ones for den: under attack
    with pytest.raises(RateLimited, match="for DEN"):
        guard.check("192.0.2.3", "DEN")
    guard.check("192.0.2.4", "den")  # a fresh address may still try
    guard.check("192.0.2.3", "other")  # and the guesser elsewhere


def test_bursts_are_audited_once_with_what_was_passed_over(
    guard: PasswordGuard, clock: Clock, records: list[AuditRecord]
) -> None:
    guess(guard, "192.0.2.1")
    guess(guard, "192.0.2.1")
    clock.t = 30.0
    guess(guard, "192.0.2.1")
    assert len(records) == 1
    clock.t = 200.0
    guess(guard, "192.0.2.1")
    assert records[-1].message == "wrong password for den (2 more since the last entry)"

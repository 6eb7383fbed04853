"""Bans: validation, the pure matcher (IPv4, IPv6, subnets, mapped peers, expiry with
an injected clock) and the BanList service over a real store (enforcement, purge,
rate-limited refusal audit)."""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from leosuite.audit import Actor, AuditLog
from leosuite.auth.ban_rules import BanMatcher, covers, parse_expires, parse_target
from leosuite.auth.bans import REFUSAL_LOG_PER_MINUTE, BanList
from leosuite.clock import iso_utc
from leosuite.community.core import ChatCore
from leosuite.community.models import ChatLimits, Member
from leosuite.errors import InvalidInput, NotFound
from leosuite.store import Database, accounts, audit
from leosuite.store.bans import BanRecord
from tests.helpers.store import open_test_store

NOW = 1_800_000_000.0


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def add_admin(conn: sqlite3.Connection) -> None:
    accounts.create(conn, username="admin", password_hash="-", created_at=NOW, flags="ADMIN")


def ban(ban_id: int, ip: str, subnet: int = 0, expires: float | None = None) -> BanRecord:
    return BanRecord(id=ban_id, ip=ip, subnet=subnet, expires=expires, comment="", added=NOW)


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "subnet", "expected"),
    [
        ("1.2.3.4", None, ("1.2.3.4", 0)),
        (" 1.2.3.4 ", 0, ("1.2.3.4", 0)),
        ("10.0.0.0/8", None, ("10.0.0.0", 8)),
        ("10.0.0.0/8", 8, ("10.0.0.0", 8)),
        ("10.1.2.3", "16", ("10.1.2.3", 16)),
        ("10.1.2.3", "", ("10.1.2.3", 0)),
        ("1.2.3.4", 32, ("1.2.3.4", 32)),
        ("2001:DB8:0::1", 0, ("2001:db8::1", 0)),
        ("2001:db8::/32", None, ("2001:db8::", 32)),
        ("2001:db8::", 128, ("2001:db8::", 128)),
        ("::ffff:1.2.3.4", None, ("1.2.3.4", 0)),
        ("::ffff:10.0.0.0/104", None, ("10.0.0.0", 8)),
    ],
)
def test_valid_targets(ip: str, subnet: object, expected: tuple[str, int]) -> None:
    assert parse_target(ip, subnet) == expected


@pytest.mark.parametrize(
    ("ip", "subnet", "field"),
    [
        ("999.1.1.1", None, "ip"),
        ("10.0.0.0/33", None, "ip"),
        ("", None, "ip"),
        ("   ", None, "ip"),
        (5, None, "ip"),
        (None, None, "ip"),
        ("example.org", None, "ip"),
        ("1.2.3.4/", None, "ip"),
        ("1.2.3.4/x", None, "ip"),
        ("1.2.3.4/-1", None, "ip"),
        ("fe80::1%eth0", None, "ip"),
        ("1" * 100, None, "ip"),
        ("1.2.3.4", 33, "subnet"),
        ("::1", 129, "subnet"),
        ("1.2.3.4", -1, "subnet"),
        ("1.2.3.4", "-1", "subnet"),
        ("1.2.3.4", "abc", "subnet"),
        ("1.2.3.4", True, "subnet"),
        ("1.2.3.4", 1.5, "subnet"),
        ("1.2.3.4", 10**40, "subnet"),
        ("10.0.0.0/8", 16, "subnet"),
        ("::ffff:1.2.3.4", 64, "subnet"),
    ],
)
def test_invalid_targets_name_the_field(ip: object, subnet: object, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_target(ip, subnet)
    assert info.value.field == field
    assert info.value.message.startswith(f"{field}: ")


def test_expiry_parsing() -> None:
    assert parse_expires(None, NOW) is None
    assert parse_expires("", NOW) is None
    later = datetime.datetime.fromtimestamp(NOW + 3600, tz=datetime.UTC)
    assert parse_expires(later.isoformat(), NOW) == NOW + 3600
    naive = later.replace(tzinfo=None).isoformat()  # naive dates are UTC
    assert parse_expires(naive, NOW) == NOW + 3600
    assert parse_expires(iso_utc(NOW + 60), NOW) == NOW + 60
    bad: object
    for bad in ("tomorrow", "1h", "2026-13-01", 12345, [], iso_utc(NOW - 1), iso_utc(NOW)):
        with pytest.raises(InvalidInput) as info:
            parse_expires(bad, NOW)
        assert info.value.field == "expires"


def test_iso_utc() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00Z"


# -- matching -----------------------------------------------------------------------------


def test_single_addresses_v4_and_v6() -> None:
    matcher = BanMatcher()
    matcher.add(ban(1, "192.0.2.7"))
    matcher.add(ban(2, "2001:db8::7"))
    assert matcher.match("192.0.2.7", NOW) == ban(1, "192.0.2.7")
    assert matcher.match("192.0.2.8", NOW) is None
    assert matcher.match("2001:db8::7", NOW) is not None
    assert matcher.match("2001:DB8:0:0::7", NOW) is not None
    assert matcher.match("2001:db8::8", NOW) is None
    assert matcher.match("not an address", NOW) is None
    assert matcher.match("", NOW) is None


def test_subnets() -> None:
    matcher = BanMatcher()
    matcher.add(ban(1, "10.1.2.3", 16))  # host bits set: the network is 10.1.0.0/16
    matcher.add(ban(2, "2001:db8:aa00::", 40))
    matcher.add(ban(3, "198.51.100.1", 32))  # /32 is the single address, like 0
    assert matcher.match("10.1.255.255", NOW) is not None
    assert matcher.match("10.1.0.0", NOW) is not None
    assert matcher.match("10.2.0.0", NOW) is None
    assert matcher.match("10.0.255.255", NOW) is None
    assert matcher.match("2001:db8:aaff:1234::1", NOW) is not None
    assert matcher.match("2001:db8:ab00::", NOW) is None
    assert matcher.match("198.51.100.1", NOW) is not None
    assert matcher.match("198.51.100.2", NOW) is None


def test_mapped_peers_match_ipv4_bans_only_as_ipv4() -> None:
    matcher = BanMatcher()
    matcher.add(ban(1, "192.0.2.0", 24))
    assert matcher.match("::ffff:192.0.2.200", NOW) is not None
    assert matcher.match("::ffff:192.0.3.1", NOW) is None
    v6 = BanMatcher()
    v6.add(ban(2, "::", 8))  # an IPv6 network does not catch IPv4 (or mapped) peers
    assert v6.match("1.2.3.4", NOW) is None
    assert v6.match("::ffff:1.2.3.4", NOW) is None
    assert v6.match("::1", NOW) is not None


def test_expiry_with_an_explicit_now() -> None:
    matcher = BanMatcher()
    matcher.add(ban(1, "192.0.2.1", expires=NOW + 10))
    assert matcher.match("192.0.2.1", NOW) is not None
    assert matcher.match("192.0.2.1", NOW + 9.999) is not None
    assert matcher.match("192.0.2.1", NOW + 10) is None
    # a longer-lived ban of the same network still applies after the first expires
    matcher.add(ban(2, "192.0.2.0", 24))
    assert matcher.match("192.0.2.1", NOW + 10) == ban(2, "192.0.2.0", 24)


def test_longest_prefix_first_and_remove() -> None:
    matcher = BanMatcher()
    matcher.add(ban(1, "10.0.0.0", 8))
    matcher.add(ban(2, "10.1.0.0", 16))
    matcher.add(ban(3, "10.1.0.0", 16))
    matcher.add(ban(4, "10.1.2.3"))
    assert len(matcher) == 4
    assert [b.id for b in matcher.bans()] == [1, 2, 3, 4]
    assert matcher.match("10.1.2.3", NOW) == ban(4, "10.1.2.3")
    assert matcher.remove(4) is not None
    assert matcher.remove(4) is None
    assert matcher.match("10.1.2.3", NOW) == ban(2, "10.1.0.0", 16)
    matcher.remove(2)
    assert matcher.match("10.1.2.3", NOW) == ban(3, "10.1.0.0", 16)
    matcher.remove(3)
    assert matcher.match("10.1.2.3", NOW) == ban(1, "10.0.0.0", 8)
    matcher.remove(1)
    assert matcher.match("10.1.2.3", NOW) is None
    assert len(matcher) == 0


def test_covers() -> None:
    assert covers(ban(1, "10.0.0.0", 8), "10.200.0.1")
    assert covers(ban(1, "10.0.0.0", 8), "::ffff:10.200.0.1")
    assert not covers(ban(1, "10.0.0.0", 8), "11.0.0.1")
    assert not covers(ban(1, "::a00:0", 104), "10.0.0.1")
    assert not covers(ban(1, "10.0.0.0", 8), "junk")


# -- the service --------------------------------------------------------------------------


class FakeConnection:
    def __init__(self, ip: str) -> None:
        self.ip = ip
        self.closed: str | None = None

    def close_policy(self, reason: str) -> None:
        self.closed = reason


class FakeHub:
    def __init__(self, *ips: str) -> None:
        self.connections = {FakeConnection(ip) for ip in ips}


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = open_test_store(tmp_path)
    yield database
    database.close()


def entries(db: Database, topic: str) -> list[audit.AuditEntry]:
    return [e for e in db.call_sync(lambda c: audit.page(c, limit=1000)) if e.topic == topic]


async def test_add_enforces_checks_and_survives_a_reload(db: Database) -> None:
    clock = Clock()
    hub = FakeHub("192.0.2.1", "192.0.2.99", "::ffff:192.0.2.2", "2001:db8::1")
    core = ChatCore(ChatLimits(), clock)
    gone: list[str] = []
    banned_member = Member("bad", ip="192.0.2.5", disconnect=gone.append)
    other = Member("good", ip="198.51.100.1", disconnect=gone.append)
    room_user = Member("roomy", ip="192.0.2.6", kind="room", disconnect=gone.append)
    for member in (banned_member, other, room_user):
        core.connect(member)
    bans = BanList(db, AuditLog(db, clock), clock, ws_hub=hub, chat=core)
    assert await bans.load() == 0
    assert bans.is_banned("192.0.2.1") is None

    await db.call(lambda conn: add_admin(conn))  # the acting account must be an ADMIN
    added = await bans.add("192.0.2.0/25", None, None, "spam", actor=Actor(id=1, ip="127.0.0.1"))
    assert (added.ip, added.subnet, added.comment, added.expires) == ("192.0.2.0", 25, "spam", None)
    assert bans.is_banned("192.0.2.1") == added
    assert bans.is_banned("::ffff:192.0.2.1") == added
    assert bans.is_banned("192.0.2.128") is None
    closed = {c.ip: c.closed for c in hub.connections}
    assert closed == {
        "192.0.2.1": "your address is banned",
        "192.0.2.99": "your address is banned",
        "::ffff:192.0.2.2": "your address is banned",
        "2001:db8::1": None,
    }
    assert gone == ["your address is banned"]  # the chat member; room users are per request
    assert set(core.members) == {other.id, room_user.id}
    (entry,) = entries(db, "Ban")
    assert "192.0.2.0/25" in entry.message
    assert "3 WebSocket connection(s) closed, 1 chat member(s) disconnected" in entry.message
    assert entry.user_ip == "127.0.0.1"

    v6 = await bans.add("2001:db8::", 32, iso_utc(NOW + 60), None)
    assert v6.expires == NOW + 60
    assert bans.is_banned("2001:db8:ffff::1") == v6

    reloaded = BanList(db, AuditLog(db, clock), clock)
    assert await reloaded.load() == 2
    assert reloaded.bans() == [added, v6]
    assert reloaded.is_banned("192.0.2.3") == added
    assert reloaded.is_banned("2001:db8::2") == v6


async def test_bad_input_stores_nothing(db: Database) -> None:
    clock = Clock()
    bans = BanList(db, AuditLog(db, clock), clock)
    for args, field in [
        (("999.1.1.1",), "ip"),
        (("10.0.0.0/33",), "ip"),
        (("",), "ip"),
        (("1.2.3.4", 33), "subnet"),
        (("::1", 129), "subnet"),
        (("1.2.3.4", -1), "subnet"),
        (("1.2.3.4", None, iso_utc(NOW - 5)), "expires"),
        (("1.2.3.4", None, "next week"), "expires"),
        (("1.2.3.4", None, None, "x" * 1001), "comment"),
    ]:
        with pytest.raises(InvalidInput) as info:
            await bans.add(*args)
        assert info.value.field == field, args
    assert bans.bans() == []
    assert db.call_sync(lambda c: c.execute("SELECT count(*) FROM bans").fetchone()[0]) == 0
    assert entries(db, "Ban") == []


async def test_expiry_without_restart_and_purge(db: Database) -> None:
    clock = Clock()
    bans = BanList(db, AuditLog(db, clock), clock)
    short = await bans.add("192.0.2.1", 0, iso_utc(NOW + 30))
    forever = await bans.add("192.0.2.2")
    assert bans.is_banned("192.0.2.1") == short
    clock.t = NOW + 30
    assert bans.is_banned("192.0.2.1") is None  # stops applying at once
    assert bans.is_banned("192.0.2.2") == forever
    assert await bans.purge_expired() == 1
    assert bans.bans() == [forever]
    assert db.call_sync(lambda c: c.execute("SELECT id FROM bans").fetchall()) == [(forever.id,)]
    assert await bans.purge_expired() == 0
    (unban,) = entries(db, "Unban")
    assert f"ban #{short.id}" in unban.message
    assert "expired" in unban.message


async def test_remove(db: Database) -> None:
    clock = Clock()
    bans = BanList(db, AuditLog(db, clock), clock)
    first = await bans.add("192.0.2.1")
    await db.call(lambda conn: add_admin(conn))  # the acting account must be an ADMIN
    await bans.remove(first.id, actor=Actor(id=1, ip="127.0.0.1", name="admin"))
    assert bans.is_banned("192.0.2.1") is None
    for missing in (first.id, 999, 0, -1, 2**70):
        with pytest.raises(NotFound):
            await bans.remove(missing)
    (unban,) = entries(db, "Unban")
    assert unban.user_name == "admin"
    second = await bans.add("192.0.2.1")
    assert second.id > first.id  # ids are never reused


async def test_refusals_are_audited_rate_limited(db: Database, autojump_clock: object) -> None:
    clock = Clock()
    bans = BanList(db, AuditLog(db, clock), clock)
    added = await bans.add("192.0.2.0/24")
    for _ in range(500):
        await bans.refused("192.0.2.1", added, "HTTP GET /")
    assert len(entries(db, "Ban")) == 2  # the add, and the first refusal
    await trio.sleep(61)
    await bans.refused("192.0.2.1", added, "HTTP GET /")
    refusals = [e for e in entries(db, "Ban") if "refused" in e.message]
    assert len(refusals) == 2
    assert "499 more refusal(s)" in refusals[0].message  # newest first
    # many addresses at once: at most REFUSAL_LOG_PER_MINUTE entries a minute in all
    await trio.sleep(61)
    for host in range(1, 200):
        await bans.refused(f"192.0.2.{host}", added, "WebSocket /")
    refusals = [e for e in entries(db, "Ban") if "refused" in e.message]
    assert len(refusals) == 2 + REFUSAL_LOG_PER_MINUTE

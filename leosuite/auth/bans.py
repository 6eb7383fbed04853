"""Server-wide IP bans: validation, matching and enforcement.

A ban is an address and a prefix length (``subnet``; 0 bans the one address, as
seed 002 says), with an optional expiry and a comment. :class:`BanMatcher` is the
pure core: bans compiled into one table per address family, keyed by prefix
length and then by the network's leading bits, so a check costs one dict lookup
per distinct prefix length in use. An IPv4-mapped IPv6 peer (``::ffff:1.2.3.4``)
is matched as the IPv4 address it carries.

:class:`BanList` is the daemon's service around it: loaded from the store at
start, asked by every listener (HTTP API and rooms, admin API, WebSocket
handshake), adding a ban closes the open WebSocket API connections and chat
members it covers at once (1008). Expiry is read from the injected clock at each
check, so an expired ban stops applying without a restart; housekeeping calls
:meth:`BanList.purge_expired` to delete it. Adds, removals and purges are audited;
refused connections too, at most once a minute per address (and
:data:`REFUSAL_LOG_PER_MINUTE` entries a minute in all), so a banned flooder
cannot flood the log.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import logging
import sqlite3
from collections import defaultdict, deque
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Protocol

import trio

from ..audit import Actor, AuditLog
from ..clock import iso_utc
from ..errors import Conflict, InvalidInput, NotFound
from ..store import bans as table
from ..store.bans import BanRecord
from ..store.db import Database

if TYPE_CHECKING:
    from ..community.core import ChatCore

__all__ = [
    "BANNED_MESSAGE",
    "Ban",
    "BanList",
    "BanMatcher",
    "iso_utc",
    "parse_expires",
    "parse_target",
]

log = logging.getLogger("leosuite.bans")

Ban = BanRecord

#: What a banned peer is told, on every surface.
BANNED_MESSAGE = "your address is banned"
#: WebSocket close code for connections closed by a new ban (policy violation).
CLOSE_POLICY = 1008
#: At most this many bans exist at once (adding more is a Conflict).
MAX_BANS = 10_000
MAX_COMMENT = 1000
#: Refused connections written to the audit log per minute, over all addresses.
REFUSAL_LOG_PER_MINUTE = 30
_REFUSAL_WINDOW = 60.0

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


# -- validation -----------------------------------------------------------------------


def _parse_subnet(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidInput("subnet: must be a prefix length (a whole number)", field="subnet")
    if isinstance(value, str):
        text = value.strip()
        if not text.isascii() or not text.lstrip("-").isdigit() or len(text) > 4:
            raise InvalidInput(f"subnet: {value[:40]!r} is not a prefix length", field="subnet")
        value = int(text)
    if not isinstance(value, int):
        raise InvalidInput("subnet: must be a prefix length (a whole number)", field="subnet")
    if value < 0:
        raise InvalidInput("subnet: must not be negative", field="subnet")
    return value


def parse_target(ip: object, subnet: object = None) -> tuple[str, int]:
    """Validate a ban's address and prefix length; returns ``(ip, subnet)`` as stored.

    ``ip`` may carry the prefix itself (``10.0.0.0/8``, ``2001:db8::/32``); ``subnet``
    then must be missing or the same. 0 means the single address; at most 32 for IPv4
    and 128 for IPv6. An IPv4-mapped address becomes the IPv4 address it carries
    (its prefix 97-128 becomes 1-32). Raises InvalidInput naming the field.
    """
    if not isinstance(ip, str):
        raise InvalidInput("ip: must be a string", field="ip")
    text = ip.strip()
    if not text:
        raise InvalidInput("ip: must not be empty", field="ip")
    if len(text) > 64 or "%" in text:
        raise InvalidInput(f"ip: {text[:64]!r} is not an IPv4 or IPv6 address", field="ip")
    prefix = _parse_subnet(subnet)
    field = "subnet"
    address_text, slash, inline = text.partition("/")
    if slash:
        field = "ip"
        try:
            inline_prefix = _parse_subnet(inline)
        except InvalidInput:
            inline_prefix = None
        if inline_prefix is None:
            raise InvalidInput(f"ip: {text!r} has no valid prefix after '/'", field="ip")
        if prefix is not None and prefix != inline_prefix:
            raise InvalidInput(
                f"subnet: {prefix} contradicts the prefix /{inline_prefix} in ip", field="subnet"
            )
        prefix = inline_prefix
    try:
        address: _Address = ipaddress.ip_address(address_text)
    except ValueError:
        raise InvalidInput(
            f"ip: {address_text[:64]!r} is not an IPv4 or IPv6 address", field="ip"
        ) from None
    prefix = prefix or 0
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        if 0 < prefix <= 96:
            raise InvalidInput(
                f"{field}: an IPv4-mapped address takes a prefix of 0 or 97-128; use the IPv4 form",
                field=field,
            )
        address, prefix = address.ipv4_mapped, max(prefix - 96, 0)
    if prefix > address.max_prefixlen:
        raise InvalidInput(
            f"{field}: the prefix is at most {address.max_prefixlen} for an "
            f"IPv{address.version} address",
            field=field,
        )
    return str(address), prefix


def parse_expires(value: object, now: float) -> float | None:
    """An ISO 8601 date (UTC unless it says otherwise) in the future, or None for
    never (missing, null or ``""``). Raises InvalidInput naming ``expires``."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidInput("expires: must be an ISO 8601 date, or empty for never", field="expires")
    try:
        when = datetime.datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"expires: {value!r} is not an ISO 8601 date", field="expires") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    try:
        stamp = when.timestamp()
    except (OverflowError, ValueError, OSError):
        raise InvalidInput(f"expires: {value!r} is out of range", field="expires") from None
    if stamp <= now:
        raise InvalidInput(f"expires: {value!r} is in the past", field="expires")
    return stamp


def describe(ban: BanRecord) -> str:
    return f"{ban.ip}/{ban.subnet}" if ban.subnet else ban.ip


# -- matching (pure) ------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _peer(text: str) -> tuple[int, int] | None:
    """``(version, integer)`` of a peer address; IPv4-mapped IPv6 as IPv4."""
    try:
        address: _Address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.version, int(address)


def _key(ban: BanRecord) -> tuple[int, int, int]:
    """``(version, prefix length, leading bits)`` of a ban's network."""
    version, value = _peer(ban.ip) or (0, 0)
    bits = 32 if version == 4 else 128
    length = ban.subnet or bits
    return version, length, value >> (bits - length)


class BanMatcher:
    """Bans by family, prefix length and network bits. Not thread-safe; no I/O."""

    def __init__(self) -> None:
        # version -> prefix length -> network bits -> bans
        self._tables: dict[int, dict[int, dict[int, list[BanRecord]]]] = {4: {}, 6: {}}
        self._bans: dict[int, BanRecord] = {}

    def __len__(self) -> int:
        return len(self._bans)

    def bans(self) -> list[BanRecord]:
        return sorted(self._bans.values(), key=lambda b: b.id)

    def add(self, ban: BanRecord) -> None:
        if ban.id in self._bans:
            self.remove(ban.id)
        version, length, bits = _key(ban)
        if version not in self._tables:
            log.warning("ban #%d has an unusable address %r; ignored", ban.id, ban.ip)
            return
        self._tables[version].setdefault(length, {}).setdefault(bits, []).append(ban)
        self._bans[ban.id] = ban

    def remove(self, ban_id: int) -> BanRecord | None:
        ban = self._bans.pop(ban_id, None)
        if ban is None:
            return None
        version, length, bits = _key(ban)
        by_bits = self._tables[version][length]
        rest = [b for b in by_bits[bits] if b.id != ban_id]
        if rest:
            by_bits[bits] = rest
        else:
            del by_bits[bits]
            if not by_bits:
                del self._tables[version][length]
        return ban

    def match(self, ip: str, now: float) -> BanRecord | None:
        """The ban (not expired at ``now``) covering ``ip``, longest prefix first."""
        peer = _peer(ip)
        if peer is None:
            return None
        version, value = peer
        bits = 32 if version == 4 else 128
        table = self._tables[version]
        for length in sorted(table, reverse=True):
            for ban in table[length].get(value >> (bits - length), ()):
                if not ban.expired(now):
                    return ban
        return None


def covers(ban: BanRecord, ip: str) -> bool:
    """Whether ``ban``'s address or network contains ``ip`` (expiry aside)."""
    peer = _peer(ip)
    if peer is None:
        return False
    version, length, network = _key(ban)
    bits = 32 if version == 4 else 128
    return peer[0] == version and peer[1] >> (bits - length) == network


# -- the service ------------------------------------------------------------------------


class _Connection(Protocol):
    @property
    def ip(self) -> str: ...

    def close(self, code: int, reason: str) -> None: ...


class _Hub(Protocol):
    @property
    def connections(self) -> Collection[_Connection]: ...


class BanList:
    """The daemon's bans: the store, the in-memory matcher, enforcement, audit."""

    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        now: Callable[[], float],
        *,
        ws_hub: _Hub | None = None,
        chat: ChatCore | None = None,
    ) -> None:
        self._db = db
        self._audit = audit
        self._now = now
        self._hub = ws_hub
        self._chat = chat
        self._matcher = BanMatcher()
        self._lock = trio.Lock()
        # refusal audit limits: last entry per address (trio time), suppressed counts
        self._refusal_logged: dict[str, float] = {}
        self._refusal_suppressed: defaultdict[str, int] = defaultdict(int)
        self._refusal_recent: deque[float] = deque()

    async def load(self) -> int:
        """Read every ban from the store (before the listeners start)."""
        for ban in await self._db.call(table.list_all):
            self._matcher.add(ban)
        return len(self._matcher)

    def bans(self) -> list[BanRecord]:
        """Every ban in memory (expired ones too, until purged), by id."""
        return self._matcher.bans()

    def is_banned(self, ip: str, now: float | None = None) -> BanRecord | None:
        """The ban in force now covering ``ip`` (a peer address), or None."""
        if not self._matcher:
            return None
        return self._matcher.match(ip, self._now() if now is None else now)

    async def add(
        self,
        ip: object,
        subnet: object = None,
        expires: object = None,
        comment: object = "",
        *,
        actor: Actor | None = None,
    ) -> BanRecord:
        """Validate, store and enforce a ban: the open WebSocket API connections and
        chat members it covers are closed at once. InvalidInput names the field."""
        address, prefix = parse_target(ip, subnet)
        now = self._now()
        until = parse_expires(expires, now)
        if comment is None:
            comment = ""
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
            raise InvalidInput(
                f"comment: must be a string of at most {MAX_COMMENT} characters", field="comment"
            )
        async with self._lock:
            if len(self._matcher) >= MAX_BANS:
                raise Conflict(f"there are {MAX_BANS} bans already; remove some first")

            def insert(conn: sqlite3.Connection) -> BanRecord:
                return table.create(
                    conn, ip=address, subnet=prefix, expires=until, comment=comment, added=now
                )

            ban = await self._db.call(insert)
            self._matcher.add(ban)
        members, connections = self._enforce(ban)
        until_text = "never expires" if until is None else f"expires {iso_utc(until)}"
        await self._audit.record(
            "Ban",
            f"ban #{ban.id} of {describe(ban)} added ({until_text}): {comment or 'no comment'}; "
            f"{connections} WebSocket connection(s) closed, {members} chat member(s) disconnected",
            actor=actor,
        )
        return ban

    def _enforce(self, ban: BanRecord) -> tuple[int, int]:
        members = connections = 0
        if self._chat is not None:
            for member in list(self._chat.members.values()):
                if member.kind == "chat" and covers(ban, member.ip):
                    self._chat.disconnect(member, BANNED_MESSAGE)
                    members += 1
        if self._hub is not None:
            for conn in list(self._hub.connections):
                if covers(ban, conn.ip):
                    conn.close(CLOSE_POLICY, BANNED_MESSAGE)
                    connections += 1
        return members, connections

    async def remove(self, ban_id: int, *, actor: Actor | None = None) -> BanRecord:
        """Delete a ban (NotFound if there is none); it stops applying at once."""
        async with self._lock:
            ban = await self._db.call(lambda conn: table.delete(conn, ban_id))
            if ban is None:
                raise NotFound(f"no ban with id {ban_id}", field="id")
            self._matcher.remove(ban.id)
        await self._audit.record("Unban", f"ban #{ban.id} of {describe(ban)} removed", actor=actor)
        return ban

    async def purge_expired(self) -> int:
        """Delete the bans that have expired (housekeeping); how many."""
        now = self._now()
        async with self._lock:
            gone = await self._db.call(lambda conn: table.purge_expired(conn, now))
            for ban in gone:
                self._matcher.remove(ban.id)
        for ban in gone:
            await self._audit.record("Unban", f"ban #{ban.id} of {describe(ban)} expired")
        return len(gone)

    async def refused(self, ip: str, ban: BanRecord, where: str) -> None:
        """Audit a refused connection, rate-limited (see the module docstring)."""
        clock = trio.current_time()
        last = self._refusal_logged.get(ip)
        recent = self._refusal_recent
        while recent and recent[0] <= clock - _REFUSAL_WINDOW:
            recent.popleft()
        logged_lately = last is not None and clock - last < _REFUSAL_WINDOW
        if logged_lately or len(recent) >= REFUSAL_LOG_PER_MINUTE:
            if len(self._refusal_suppressed) >= MAX_BANS:
                self._refusal_suppressed.clear()
            self._refusal_suppressed[ip] += 1
            return
        if len(self._refusal_logged) >= MAX_BANS:
            cutoff = clock - _REFUSAL_WINDOW
            for key in [k for k, t in self._refusal_logged.items() if t <= cutoff]:
                del self._refusal_logged[key]
        self._refusal_logged[ip] = clock
        recent.append(clock)
        skipped = self._refusal_suppressed.pop(ip, 0)
        more = f" ({skipped} more refusal(s) since the last entry)" if skipped else ""
        await self._audit.record(
            "Ban",
            f"{where}: connection refused, address banned by ban #{ban.id} ({describe(ban)}){more}",
            actor=Actor(ip=ip),
            level="warning",
        )

"""Server-wide IP ban rules: validation, matching and description; no I/O.

A ban is an address and a prefix length (``subnet``; 0 bans the one address, as
seed 002 says), with an optional expiry and a comment. :class:`BanMatcher` holds
bans compiled into one table per address family, keyed by prefix length and then
by the network's leading bits, so a check costs one dict lookup per distinct prefix
length in use. An IPv4-mapped IPv6 peer (``::ffff:1.2.3.4``) is matched as the IPv4
address it carries. Expiry is compared with the ``now`` the caller passes.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import logging

from ..errors import InvalidInput
from ..store.bans import BanRecord

__all__ = [
    "BANNED_MESSAGE",
    "MAX_COMMENT",
    "BanMatcher",
    "covers",
    "describe",
    "parse_comment",
    "parse_expires",
    "parse_target",
]

log = logging.getLogger("leosuite.bans")

#: What a banned peer is told, on every surface.
BANNED_MESSAGE = "your address is banned"
#: A ban's comment is at most this many characters.
MAX_COMMENT = 1000

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


def parse_comment(value: object) -> str:
    """A ban's comment (None is empty); raises InvalidInput naming ``comment``."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_COMMENT:
        raise InvalidInput(
            f"comment: must be a string of at most {MAX_COMMENT} characters", field="comment"
        )
    return value


def describe(ban: BanRecord) -> str:
    """``ip/subnet``, or the address alone for a single-address ban."""
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

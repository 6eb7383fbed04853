"""The client address of a request that came through trusted reverse proxies.

``http.trusted_proxies`` lists the addresses and networks of the proxies in front of
the daemon. Only a connection from one of them has its client address taken from
the header its proxy writes (``http.forwarded_header``: ``X-Forwarded-For`` or
``Forwarded``); from any other peer the headers are ignored, so nobody can claim
another address by sending them.

The header is read from the right: every proxy appends the address it received the
request from, so the rightmost hop that is not itself a trusted proxy is the client
(what a client wrote further left is ignored). A hop the proxy could not name
(``unknown``, an obfuscated ``_name``, garbage) stops the walk at the proxy that wrote
it. Only the one header chosen is read: a proxy that writes the other leaves a
client's forged copy in place. Pure code, no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from .errors import ConfigError

__all__ = [
    "FORWARDED_HEADERS",
    "TrustedProxies",
    "check_forwarded_header",
    "forwarded_hops",
    "parse_networks",
    "x_forwarded_for_hops",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The headers a proxy may name the client in (lowercase), by setting value.
FORWARDED_HEADERS = {"x-forwarded-for": b"x-forwarded-for", "forwarded": b"forwarded"}
#: The most hops of one request that are looked at (a longer chain is not a proxy's).
_MAX_HOPS = 64


def parse_networks(values: Iterable[str], *, key: str) -> tuple[Network, ...]:
    """``10.0.0.5``, ``10.0.0.0/8``, ``::1`` or ``fd00::/8`` -> networks; anything
    else is a :class:`ConfigError` naming ``key``."""
    networks = []
    for value in values:
        text = value.strip()
        if text.startswith("[") and "]" in text:
            inside, _, rest = text[1:].partition("]")
            text = inside + rest
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ConfigError(
                f"{key}: {value!r} is not an IP address or network (e.g. 127.0.0.1, "
                "10.0.0.0/8, ::1 or fd00::/8)",
                field=key,
            ) from None
        networks.append(network)
    return tuple(networks)


def check_forwarded_header(value: str, *, key: str) -> str:
    """The lowercase header name of ``http.forwarded_header``."""
    name = value.strip().lower()
    if name not in FORWARDED_HEADERS:
        raise ConfigError(f"{key}: {value!r} is neither X-Forwarded-For nor Forwarded", field=key)
    return name


def _address(text: str) -> Address | None:
    """One hop as written by a proxy: ``1.2.3.4``, ``1.2.3.4:5678``, ``::1``,
    ``[::1]`` or ``[::1]:5678`` (quotes around it allowed); None if it names none."""
    text = text.strip().strip('"').strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def x_forwarded_for_hops(values: Iterable[str]) -> list[Address | None]:
    """The hops of ``X-Forwarded-For`` header lines, leftmost first."""
    hops: list[Address | None] = []
    for value in values:
        hops.extend(_address(part) for part in value.split(",") if part.strip())
    return hops[-_MAX_HOPS:]


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def forwarded_hops(values: Iterable[str]) -> list[Address | None]:
    """The ``for=`` of each element of ``Forwarded`` header lines (RFC 7239),
    leftmost first; an element without one is a hop nobody could name."""
    hops: list[Address | None] = []
    for value in values:
        for element in _split_outside_quotes(value, ","):
            if not element.strip():
                continue
            found: Address | None = None
            for pair in _split_outside_quotes(element, ";"):
                name, sep, text = pair.partition("=")
                if sep and name.strip().lower() == "for":
                    found = _address(text)
                    break
            hops.append(found)
    return hops[-_MAX_HOPS:]


class TrustedProxies:
    """The proxies whose forwarding header is believed, and which header that is."""

    def __init__(self, networks: Iterable[str], header: str = "x-forwarded-for") -> None:
        self.networks = parse_networks(networks, key="http.trusted_proxies")
        self.header = FORWARDED_HEADERS[check_forwarded_header(header, key="http.forwarded_header")]
        self._parse = forwarded_hops if self.header == b"forwarded" else x_forwarded_for_hops

    def __bool__(self) -> bool:
        return bool(self.networks)

    def _trusted(self, ip: Address) -> bool:
        return any(ip in network for network in self.networks)

    def trusts(self, peer: str) -> bool:
        """Whether ``peer`` (an address as text) is one of the trusted proxies."""
        if not self.networks:
            return False
        ip = _address(peer)
        return ip is not None and self._trusted(ip)

    def client_ip(self, peer: str, headers: Iterable[tuple[bytes, bytes]]) -> str:
        """The client's address: ``peer`` itself unless it is a trusted proxy, else the
        rightmost hop of the forwarding header that is not a trusted proxy."""
        if not self.trusts(peer):
            return peer
        values = [v.decode("latin-1") for k, v in headers if k.lower() == self.header]
        client = _address(peer)
        for hop in reversed(self._parse(values)):
            if hop is None:
                break
            client = hop
            if not self._trusted(hop):
                break
        return str(client) if client is not None else peer

"""Which ``Host`` and ``Origin`` names the listeners answer to (DNS rebinding).

A web page under a DNS name its owner points at this machine reaches a loopback-only
daemon with that name in ``Host`` and ``Origin``; refusing names the daemon is not
served under stops it. A listener answers to:

* the loopback names ``localhost``, ``127.0.0.1`` and ``[::1]``;
* the addresses the listeners are bound to (``0.0.0.0`` too: the daemon's own
  ``endpoints.json`` names it so, and the command line client uses it);
* the address the connection arrived on: for a listener bound to ``0.0.0.0`` or
  ``::``, whichever of the machine's addresses the client connected to (the
  dashboard works at a LAN address with nothing to set);
* the names in ``http.allowed_hosts`` (a reverse proxy's name, a DNS name on the LAN,
  an address that NAT or a container maps to this one);
* the names of ``http.public_url`` and ``ws.public_url`` (the URLs clients reach
  through a reverse proxy), given as ``public``.

Ports are not compared for ``Host``: rebinding changes the name, never the port. An
``Origin`` (a browser's page) must name an allowed host too, and, unless the name is
listed in ``http.allowed_hosts`` (where a proxy may use its own port), one of the
daemon's own ports; the origin of ``http.public_url`` (the dashboard behind its proxy)
is accepted exactly, scheme and port included. Pure code, no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable, Mapping

__all__ = [
    "LOOPBACK_NAMES",
    "HostPolicy",
    "bound_addresses",
    "host_names_url",
    "normal_ip",
    "split_authority",
]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_FORBIDDEN = frozenset("/?#@\\ \t\r\n")


def normal_ip(address: object) -> str:
    """An address as text, canonical: ``::ffff:1.2.3.4`` is the IPv4 ``1.2.3.4``,
    IPv6 compressed and lowercase; anything that is not an address is returned as is."""
    text = str(address)
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def split_authority(value: str) -> tuple[str, int | None] | None:
    """``name``, ``name:port``, ``[v6]`` or ``[v6]:port`` as (name, port): the name in
    lowercase without brackets or a trailing dot, an IP address canonical; None when
    it is not a host at all."""
    if not value or any(c in _FORBIDDEN for c in value):
        return None
    if value.startswith("["):
        name, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            return None
        port_text = rest[1:] if rest else ""
    else:
        name, _, port_text = value.partition(":")
        if ":" in port_text:  # a bare IPv6 address is not a Host
            return None
    if port_text and not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5):
        return None
    port = int(port_text) if port_text else None
    if port is not None and port > 65535:
        return None
    name = name.lower()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        return None
    return normal_ip(name), port


def host_names_url(host: str | None, url: str) -> bool:
    """Whether a request with this ``Host`` header was sent to ``url``'s host: its
    name, and its port when the header names one (a proxy may leave the port out)."""
    reached = split_authority(host or "")
    scheme, _, rest = url.partition("://")
    own = split_authority(rest.partition("/")[0])
    if reached is None or own is None or reached[0] != own[0]:
        return False
    port = _DEFAULT_PORTS.get(scheme.lower()) if own[1] is None else own[1]
    return reached[1] is None or reached[1] == port


def bound_addresses(endpoints: Mapping[str, str]) -> list[str]:
    """The addresses in the listeners' URLs (``http://0.0.0.0:8975`` -> ``0.0.0.0``)."""
    found = []
    for url in endpoints.values():
        parts = split_authority(url.partition("://")[2].partition("/")[0])
        if parts is not None:
            found.append(parts[0])
    return found


class HostPolicy:
    """The names one listener answers to: the loopback names, the ``bound`` addresses
    and the connection's own address always, ``allowed_hosts`` (names the operator
    serves the daemon under) too; ``allowed_origins`` are whole origins a WebSocket
    handshake may come from. ``public`` are the canonical public URLs (see
    :func:`leosuite.public_address.public_urls`): their names are served, and the
    pages of the ``http``/``https`` ones are allowed origins."""

    def __init__(
        self,
        allowed_hosts: Iterable[str],
        allowed_origins: Iterable[str] = (),
        *,
        bound: Iterable[str] = (),
        public: Iterable[str] = (),
    ) -> None:
        public = [url for url in public if url]
        names = (split_authority(host.strip()) for host in allowed_hosts)
        self.allowed_hosts = frozenset(parts[0] for parts in names if parts is not None)
        public_names = (
            split_authority(url.partition("://")[2].partition("/")[0]) for url in public
        )
        self.public_hosts = frozenset(parts[0] for parts in public_names if parts is not None)
        pages = (url.rstrip("/") for url in public if url.startswith(("http://", "https://")))
        self.allowed_origins = frozenset(origin.rstrip("/") for origin in allowed_origins)
        self.allowed_origins |= frozenset(pages)
        self.defaults = LOOPBACK_NAMES | {normal_ip(address) for address in bound}

    def _default(self, name: str, local_ip: str) -> bool:
        return name in self.defaults or (bool(local_ip) and name == normal_ip(local_ip))

    def host_allowed(self, host: str | None, local_ip: str) -> bool:
        """Whether a request with this ``Host`` header, arriving on ``local_ip``, is
        for us. No header at all is not a browser (every browser sends one): allowed."""
        if host is None:
            return True
        parts = split_authority(host)
        if parts is None:
            return False
        name = parts[0]
        return (
            name in self.allowed_hosts or name in self.public_hosts or self._default(name, local_ip)
        )

    def origin_allowed(self, origin: str | None, local_ip: str, own_ports: Collection[int]) -> bool:
        """Whether a page of this ``Origin`` may use the listener: no Origin (not a
        browser) may; ``null`` and other schemes may not; an allowed name may on one of
        ``own_ports`` (the daemon's own pages), a name of ``allowed_hosts`` on any."""
        if origin is None:
            return True
        origin = origin.strip().rstrip("/")
        if origin in self.allowed_origins:
            return True
        scheme, _, authority = origin.partition("://")
        if scheme.lower() not in _DEFAULT_PORTS:
            return False
        parts = split_authority(authority)
        if parts is None:
            return False
        name, port = parts
        if name in self.allowed_hosts:
            return True
        port = _DEFAULT_PORTS[scheme.lower()] if port is None else port
        return self._default(name, local_ip) and port in own_ports

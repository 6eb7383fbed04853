"""Connections of install downloads (blocking, for a worker thread): a stop from
another thread ends a connect at once, and a download whose URL takes a setting
reaches public addresses only.

A name is resolved once, every address it has is checked, and the connection goes to
an address that was checked (a second lookup could answer otherwise). Loopback,
link-local, private, unspecified, multicast and reserved addresses are refused, an
IPv4 address inside IPv6 included. The lookup itself (``getaddrinfo``) cannot be
interrupted: a stop waits for it (the resolver's own timeout bounds it).
"""

from __future__ import annotations

import errno
import ipaddress
import select
import socket
import time
from typing import Any, Protocol

__all__ = ["AddressRefused", "connect", "is_public"]

#: How often a connect in progress looks whether it was stopped (seconds).
_POLL = 0.25


class Stopping(Protocol):
    def is_set(self) -> bool: ...


class AddressRefused(OSError):
    """The host resolves to an address a user-controlled download may not reach."""


class ConnectStopped(OSError):
    """The connect was stopped from another thread."""


def is_public(address: str) -> bool:
    """Whether ``address`` (an IP address, maybe with an IPv6 zone) is a public one."""
    ip = ipaddress.ip_address(address.partition("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or ip.is_unspecified
        or ip.is_multicast
        or ip.is_reserved
        or not ip.is_global
    )


def _connect_one(sock: socket.socket, address: Any, timeout: float, stop: Stopping) -> None:
    sock.setblocking(False)
    err = sock.connect_ex(address)
    if err not in (0, errno.EINPROGRESS, errno.EAGAIN):
        raise OSError(err, errno.errorcode.get(err, str(err)))
    end = time.monotonic() + timeout
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    while err:
        if stop.is_set():
            raise ConnectStopped("stopped")
        left = end - time.monotonic()
        if left <= 0:
            raise TimeoutError("connect timed out")
        if poller.poll(int(min(_POLL, left) * 1000) + 1):
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, errno.errorcode.get(err, str(err)))
            break
    sock.settimeout(timeout)


def connect(
    host: str, port: int, *, timeout: float, stop: Stopping, public_only: bool
) -> socket.socket:
    """A connected socket to ``host``:``port`` (``public_only``: refuse any address of
    the host that is not public, see :func:`is_public`)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError:
        raise OSError(f"invalid host name {host[:100]!r}") from None
    if public_only:
        for *_, sockaddr in found:
            if not is_public(str(sockaddr[0])):
                raise AddressRefused(f"{host[:100]} resolves to a non-public address")
    last: OSError = OSError(f"{host[:100]} has no address")
    for family, kind, proto, _, sockaddr in found:
        sock = socket.socket(family, kind, proto)
        try:
            _connect_one(sock, sockaddr, timeout, stop)
        except ConnectStopped:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            last = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise last

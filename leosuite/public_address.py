"""Where clients reach the daemon from outside: ``ws.public_address`` (a host name or
an IP address, with an optional port, as it would appear in a URL's authority, for
chat clients) and ``http.public_url``/``ws.public_url`` (the URLs of the dashboard and
of the WebSocket API, e.g. behind a TLS reverse proxy)."""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import NamedTuple
from urllib.parse import urlsplit

from .errors import ConfigError

__all__ = ["PublicUrls", "parse_public_address", "parse_public_url", "public_urls"]

#: A DNS name: dot-separated labels of letters, digits and inner hyphens.
_NAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+", re.ASCII)


def parse_public_address(value: str, *, key: str) -> tuple[str, int | None]:
    """``HOST``, ``HOST:PORT``, ``[v6]`` or ``[v6]:PORT`` -> (host, port or None)."""
    problem = ConfigError(
        f"{key}: {value!r} is not HOST or HOST:PORT (e.g. chat.example.org, "
        "chat.example.org:443, 203.0.113.5:8976 or [2001:db8::5]:8976)",
        field=key,
    )
    host, port_text = value, ""
    if value.startswith("["):
        inside, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise problem
        host, port_text = inside, rest[1:]
        if rest == ":":
            raise problem
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise problem from None
    else:
        host, sep, port_text = value.partition(":")
        if sep and not port_text:
            raise problem
        if _NAME.fullmatch(host) is None:
            raise problem
    if not port_text:
        return host, None
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ConfigError(f"{key}: the port of {value!r} is not 1-65535", field=key)
    return host, int(port_text)


class PublicUrls(NamedTuple):
    """The URLs clients reach the daemon under (``""``: not set)."""

    #: The dashboard and the HTTP API: ``scheme://host[:port]``, no path.
    http: str
    #: The WebSocket API: ``scheme://host[:port]/path/``, always ending in ``/``.
    ws: str


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
#: A URL path of unreserved characters, sub-delimiters and percent escapes.
_PATH = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%/-]*", re.ASCII)


def parse_public_url(value: str, *, key: str, schemes: tuple[str, ...], path: bool) -> str:
    """``scheme://host[:port][/path]`` in a canonical form: lowercase scheme and host,
    no default port, and (``path``) a path ending in ``/``, else none at all."""
    example = f"{schemes[-1]}://games.example.org" + ("/ws/" if path else "")
    problem = ConfigError(f"{key}: {value!r} is not a URL like {example}", field=key)
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        raise problem from None
    scheme = parts.scheme.lower()
    if scheme not in schemes or not parts.netloc or parts.query or parts.fragment:
        raise problem
    if _PATH.fullmatch(parts.path) is None:
        raise problem
    if "@" in parts.netloc or parts.hostname is None or port == 0:
        raise problem
    authority = parts.netloc.rpartition(":")[0] if port is not None else parts.netloc
    try:
        host, _ = parse_public_address(authority, key=key)
    except ConfigError:
        raise problem from None
    host = f"[{host.lower()}]" if ":" in host else host.lower().rstrip(".")
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    if not path:
        if parts.path not in ("", "/"):
            raise ConfigError(
                f"{key}: {value!r} has a path; the dashboard is served at the root of its "
                "origin (e.g. https://games.example.org)",
                field=key,
            )
        return f"{scheme}://{host}"
    return f"{scheme}://{host}{parts.path.rstrip('/')}/"


@functools.cache
def public_urls(http_url: str, ws_url: str) -> PublicUrls:
    """``http.public_url`` and ``ws.public_url`` checked and canonical. Without a
    ``ws.public_url``, an ``http.public_url`` implies the WebSocket API at ``/ws/`` of
    the same origin (``wss`` under ``https``)."""
    http = ""
    if http_url:
        http = parse_public_url(
            http_url, key="http.public_url", schemes=("http", "https"), path=False
        )
    if ws_url:
        ws = parse_public_url(ws_url, key="ws.public_url", schemes=("ws", "wss"), path=True)
    elif http:
        scheme, _, rest = http.partition("://")
        ws = f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws/"
    else:
        ws = ""
    return PublicUrls(http, ws)

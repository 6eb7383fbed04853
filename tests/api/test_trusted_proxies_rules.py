"""The rules behind a reverse proxy, case by case: which client address a forwarding
header yields and from whom, the public URLs' canonical forms and the names and
origins they add (through the real listeners: test_trusted_proxies.py and
test_trusted_proxies_public_urls.py)."""

from __future__ import annotations

import pytest

from leosuite.api.hosts import HostPolicy, host_names_url
from leosuite.errors import ConfigError
from leosuite.forwarded import TrustedProxies, forwarded_hops, x_forwarded_for_hops
from leosuite.public_address import public_urls
from leosuite.settings import load_settings

PROXIES = TrustedProxies(["127.0.0.1", "10.0.0.0/8", "fd00::/8"])


def headers(name: str, *values: str) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value.encode()) for value in values]


@pytest.mark.parametrize(
    ("peer", "values", "client"),
    [
        # From a trusted proxy: the rightmost hop that is not a trusted proxy.
        ("127.0.0.1", ["203.0.113.9"], "203.0.113.9"),
        ("127.0.0.1", ["198.51.100.1, 203.0.113.9"], "203.0.113.9"),  # left: the client's claim
        ("127.0.0.1", ["203.0.113.9, 10.1.2.3"], "203.0.113.9"),  # a chain of proxies
        ("127.0.0.1", ["198.51.100.1", "203.0.113.9, 10.1.2.3"], "203.0.113.9"),  # two lines
        ("127.0.0.1", ["10.0.0.7, 10.1.2.3"], "10.0.0.7"),  # nothing but proxies: the first
        ("127.0.0.1", ["203.0.113.9:5566"], "203.0.113.9"),
        ("127.0.0.1", ["[2001:db8::9]:443"], "2001:db8::9"),
        ("127.0.0.1", ["2001:DB8::9"], "2001:db8::9"),
        ("127.0.0.1", ["::ffff:203.0.113.9"], "203.0.113.9"),
        ("::ffff:127.0.0.1", ["203.0.113.9"], "203.0.113.9"),
        ("fd00::1", ["203.0.113.9"], "203.0.113.9"),
        # A hop nobody could name stops the walk at the proxy that wrote it.
        ("127.0.0.1", ["203.0.113.9, unknown"], "127.0.0.1"),
        ("127.0.0.1", ["203.0.113.9, unknown, 10.1.2.3"], "10.1.2.3"),
        ("127.0.0.1", ["not an address"], "127.0.0.1"),
        ("127.0.0.1", [], "127.0.0.1"),
        ("127.0.0.1", [""], "127.0.0.1"),
        # From anyone else: the peer itself, whatever it claims.
        ("127.0.0.2", ["203.0.113.9"], "127.0.0.2"),
        ("203.0.113.50", ["127.0.0.1"], "203.0.113.50"),
        ("11.0.0.1", ["203.0.113.9"], "11.0.0.1"),
    ],
)
def test_x_forwarded_for(peer: str, values: list[str], client: str) -> None:
    assert PROXIES.client_ip(peer, headers("X-Forwarded-For", *values)) == client


def test_forwarded_is_read_only_when_chosen() -> None:
    forged = headers("Forwarded", "for=198.51.100.66")
    written = headers("X-Forwarded-For", "203.0.113.9")
    assert PROXIES.client_ip("127.0.0.1", forged + written) == "203.0.113.9"
    assert PROXIES.client_ip("127.0.0.1", forged) == "127.0.0.1"
    rfc = TrustedProxies(["127.0.0.1"], "Forwarded")
    assert rfc.client_ip("127.0.0.1", written) == "127.0.0.1"
    line = 'for=198.51.100.66;proto=https, for="[2001:db8::5]:4711";by=10.0.0.1'
    assert rfc.client_ip("127.0.0.1", headers("forwarded", line)) == "2001:db8::5"
    assert rfc.client_ip("127.0.0.2", headers("Forwarded", "for=203.0.113.9")) == "127.0.0.2"


def test_hops_as_proxies_write_them() -> None:
    assert x_forwarded_for_hops(["1.2.3.4,5.6.7.8", " ", "unknown"]) == [
        *x_forwarded_for_hops(["1.2.3.4"]),
        *x_forwarded_for_hops(["5.6.7.8"]),
        None,
    ]
    found = forwarded_hops(['for="_hidden";by=1.1.1.1, proto=https, For=192.0.2.60:8080'])
    assert [None if hop is None else str(hop) for hop in found] == [None, None, "192.0.2.60"]
    # A quoted comma is not an element boundary.
    assert [str(h) for h in forwarded_hops(['for=192.0.2.1;x="a,b"'])] == ["192.0.2.1"]
    assert len(x_forwarded_for_hops([", ".join(["192.0.2.1"] * 500)])) == 64


def test_nobody_is_trusted_by_default() -> None:
    none = TrustedProxies([])
    assert not none
    assert not none.trusts("127.0.0.1")
    assert none.client_ip("127.0.0.1", headers("X-Forwarded-For", "203.0.113.9")) == "127.0.0.1"


G = "games.example.org"


@pytest.mark.parametrize(
    ("http", "ws", "expected"),
    [
        ("", "", ("", "")),
        (f"https://{G}", "", (f"https://{G}", f"wss://{G}/ws/")),
        ("HTTPS://Games.Example.Org:443/", "", (f"https://{G}", f"wss://{G}/ws/")),
        ("http://games.lan:8080", "", ("http://games.lan:8080", "ws://games.lan:8080/ws/")),
        (
            "https://[2001:DB8::5]:8443",
            "",
            ("https://[2001:db8::5]:8443", "wss://[2001:db8::5]:8443/ws/"),
        ),
        (f"https://{G}", "wss://ws.example.org", (f"https://{G}", "wss://ws.example.org/")),
        ("", f"WSS://{G}:443/live", ("", f"wss://{G}/live/")),
        ("", "ws://192.0.2.5:8976/", ("", "ws://192.0.2.5:8976/")),
    ],
)
def test_public_urls_canonical(http: str, ws: str, expected: tuple[str, str]) -> None:
    assert tuple(public_urls(http, ws)) == expected


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("http_public_url", "games.example.org", "not a URL like"),
        ("http_public_url", "ftp://games.example.org", "not a URL like"),
        ("http_public_url", "wss://games.example.org", "not a URL like"),
        ("http_public_url", "https://games.example.org/leosuite", "has a path"),
        ("http_public_url", "https://admin@games.example.org", "not a URL like"),
        ("http_public_url", "https://games.example.org/?x", "not a URL like"),
        ("http_public_url", "https://games.example.org:0", "not a URL like"),
        ("http_public_url", "https://games.example.org:99999", "not a URL like"),
        ("http_public_url", "https://bad_name.org", "not a URL like"),
        ("ws_public_url", "https://games.example.org/ws/", "not a URL like"),
        ("ws_public_url", "wss://games.example.org/a b/", "not a URL like"),
        ("ws_public_url", "wss://games.example.org/ws#x", "not a URL like"),
        ("http_trusted_proxies", "127.0.0.1,proxy.lan", "not an IP address or network"),
        ("http_trusted_proxies", "10.0.0.0/33", "not an IP address or network"),
        ("http_forwarded_header", "X-Real-IP", "neither X-Forwarded-For nor Forwarded"),
    ],
)
def test_bad_values_stop_start_up(key: str, value: str, problem: str) -> None:
    name = key.replace("_", ".", 1)
    with pytest.raises(ConfigError, match=problem) as info:
        load_settings(None, environ={f"LEOSUITE_{key.upper()}": value})
    assert info.value.field == name


def test_good_values_load() -> None:
    settings = load_settings(
        None,
        environ={
            "LEOSUITE_HTTP_PUBLIC_URL": "https://games.example.org",
            "LEOSUITE_WS_PUBLIC_URL": "wss://games.example.org/ws/",
            "LEOSUITE_HTTP_TRUSTED_PROXIES": "127.0.0.1, ::1, [fd00::1], 10.0.0.0/8",
            "LEOSUITE_HTTP_FORWARDED_HEADER": "forwarded",
        },
    )
    assert settings.http.trusted_proxies == ["127.0.0.1", "::1", "[fd00::1]", "10.0.0.0/8"]
    proxies = TrustedProxies(settings.http.trusted_proxies, settings.http.forwarded_header)
    assert proxies.trusts("fd00::1")
    assert proxies.trusts("10.200.0.1")
    assert not proxies.trusts("fd00::2")


def test_public_names_and_origin() -> None:
    policy = HostPolicy([], public=public_urls("https://games.example.org", "wss://ws.example.org"))
    for host in (
        "games.example.org",
        "GAMES.example.org:443",
        "ws.example.org",
        "ws.example.org:8443",
    ):
        assert policy.host_allowed(host, "127.0.0.1"), host
    assert not policy.host_allowed("evil.example.org", "127.0.0.1")
    # Exactly the dashboard's origin: scheme and port included.
    assert policy.origin_allowed("https://games.example.org", "127.0.0.1", (8976,))
    for origin in (
        "http://games.example.org",
        "https://games.example.org:8443",
        "https://ws.example.org",
        "https://evil.example.org",
    ):
        assert not policy.origin_allowed(origin, "127.0.0.1", (8976,)), origin


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("games.example.org", True),  # nginx's $host: no port
        ("games.example.org:8443", True),
        ("Games.Example.Org.:8443", True),
        ("games.example.org:8975", False),  # the listener's own port: reached directly
        ("127.0.0.1:8975", False),
        (None, False),
        ("", False),
    ],
)
def test_a_request_under_the_public_url(host: str | None, ok: bool) -> None:
    assert host_names_url(host, "https://games.example.org:8443") is ok

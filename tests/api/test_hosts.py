"""The Host rule of every listener, case by case (through the real listeners:
tests/api/test_security_rebinding.py)."""

from __future__ import annotations

import pytest

from leosuite.api.hosts import HostPolicy, bound_addresses, split_authority
from leosuite.errors import ConfigError
from leosuite.settings import load_settings

POLICY = HostPolicy(["dash.example.org", "[fd00::9]", "203.0.113.7"])


@pytest.mark.parametrize(
    ("host", "local", "ok"),
    [
        (None, "127.0.0.1", True),  # no Host: not a browser
        ("127.0.0.1:8975", "127.0.0.1", True),
        ("localhost:8975", "127.0.0.1", True),
        ("LOCALHOST.:8975", "127.0.0.1", True),
        ("[::1]:8975", "::1", True),
        ("[0:0:0:0:0:0:0:1]:8975", "::1", True),
        ("localhost", "::1", True),
        # The address the connection arrived on (a LAN address of a 0.0.0.0 listener).
        ("192.168.1.5:8975", "192.168.1.5", True),
        ("192.168.1.5:8975", "::ffff:192.168.1.5", True),
        ("[fd00::5]:8975", "fd00::5", True),
        # http.allowed_hosts, on any port.
        ("dash.example.org", "127.0.0.1", True),
        ("Dash.Example.Org:443", "10.0.0.2", True),
        ("[fd00::9]:8975", "fd00::5", True),
        ("203.0.113.7:18975", "172.17.0.2", True),  # NAT: the published address
        # Everything else.
        ("evil.example:8975", "127.0.0.1", False),  # DNS rebinding
        ("evil.example", "192.168.1.5", False),
        ("localhost.evil.example", "127.0.0.1", False),
        ("192.168.1.6:8975", "192.168.1.5", False),
        ("192.168.1.5:8975", "127.0.0.1", False),
        ("203.0.113.8", "172.17.0.2", False),
        ("::1", "::1", False),  # IPv6 without brackets is not a Host
        ("127.0.0.1:port", "127.0.0.1", False),
        ("127.0.0.1:99999", "127.0.0.1", False),
        ("user@127.0.0.1", "127.0.0.1", False),
        ("127.0.0.1/x", "127.0.0.1", False),
        ("", "127.0.0.1", False),
        (":8975", "127.0.0.1", False),
    ],
)
def test_host_rule(host: str | None, local: str, ok: bool) -> None:
    assert POLICY.host_allowed(host, local) is ok


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("Example.ORG", ("example.org", None)),
        ("example.org.:80", ("example.org", 80)),
        ("[FD00::0005]:1", ("fd00::5", 1)),
        ("[::ffff:127.0.0.1]", ("127.0.0.1", None)),
        ("host:", ("host", None)),
        ("[fd00::5", None),
        ("[fd00::5]x", None),
        ("[not-v6]", None),
        ("a b", None),
    ],
)
def test_split_authority(value: str, parts: tuple[str, int | None] | None) -> None:
    assert split_authority(value) == parts


def test_the_bound_addresses_are_names_too() -> None:
    endpoints = {"http": "http://0.0.0.0:8975", "ws": "ws://[::]:8976", "admin": "http://x/"}
    assert bound_addresses(endpoints) == ["0.0.0.0", "::", "x"]
    policy = HostPolicy([], bound=["0.0.0.0"])
    assert policy.host_allowed("0.0.0.0:8975", "127.0.0.1")  # the CLI, from endpoints.json
    assert policy.origin_allowed("http://0.0.0.0:8975", "127.0.0.1", (8975,))
    assert not HostPolicy([]).host_allowed("0.0.0.0:8975", "127.0.0.1")


def test_allowed_hosts_is_a_list_of_names() -> None:
    environ = {"LEOSUITE_HTTP_ALLOWED_HOSTS": "dash.example.org, 192.168.1.5,[fd00::5]"}
    settings = load_settings(None, environ=environ)
    assert settings.http.allowed_hosts == ["dash.example.org", "192.168.1.5", "[fd00::5]"]
    for wrong in ("https://dash.example.org", "dash.example.org:8975", "fd00::5", "a/b", ""):
        with pytest.raises(ConfigError, match=r"http\.allowed_hosts"):
            load_settings(None, environ={}, overrides={"http": {"allowed_hosts": [wrong]}})

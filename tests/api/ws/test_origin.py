"""The WebSocket Origin rule, case by case (the handshake path is in test_ws_faults and
tests/api/test_security_rebinding.py)."""

from __future__ import annotations

import pytest

from leosuite.api.hosts import HostPolicy

POLICY = HostPolicy(["dash.lan"], ["https://dash.example.org"])
#: The WebSocket's port and the dashboard's (the HTTP API's).
OWN = (8976, 8975)


@pytest.mark.parametrize(
    ("origin", "local", "ok"),
    [
        (None, "127.0.0.1", True),  # not a browser
        ("http://127.0.0.1:8976", "127.0.0.1", True),  # the WebSocket's own origin
        ("http://127.0.0.1:8975", "127.0.0.1", True),  # the daemon's dashboard
        ("http://localhost:8975", "127.0.0.1", True),
        ("http://[::1]:8975", "::1", True),
        ("http://127.0.0.1:8975/", "127.0.0.1", True),
        # A daemon bound to 0.0.0.0 reached at a LAN address: its dashboard at that address.
        ("http://192.168.1.5:8975", "192.168.1.5", True),
        ("http://[fd00::5]:8975", "fd00::5", True),
        ("http://192.168.1.5:8975", "::ffff:192.168.1.5", True),
        ("https://dash.example.org", "127.0.0.1", True),  # ws.allowed_origins
        ("http://dash.lan:8080", "192.168.1.5", True),  # http.allowed_hosts, any port
        ("https://DASH.LAN", "192.168.1.5", True),
        # Another port of an allowed name, another name on the dashboard's port: refused.
        ("http://127.0.0.1:8080", "127.0.0.1", False),
        ("http://localhost", "127.0.0.1", False),
        ("http://192.168.1.5:8080", "192.168.1.5", False),
        ("http://evil.example:8975", "192.168.1.5", False),
        ("http://evil.example:8975", "127.0.0.1", False),  # DNS rebinding
        ("http://192.168.1.6:8975", "192.168.1.5", False),
        ("http://192.168.1.5:notaport", "192.168.1.5", False),
        ("http://192.168.1.5:8975/path", "192.168.1.5", False),
        ("http://user@127.0.0.1:8975", "127.0.0.1", False),
        ("file://192.168.1.5:8975", "192.168.1.5", False),
        ("https://dash.example.org.evil", "127.0.0.1", False),
        ("null", "127.0.0.1", False),
        ("", "127.0.0.1", False),
    ],
)
def test_origin_rule(origin: str | None, local: str, ok: bool) -> None:
    assert POLICY.origin_allowed(origin, local, OWN) is ok

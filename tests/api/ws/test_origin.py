"""The WebSocket Origin rule, case by case (the handshake path is in test_ws_faults)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from leosuite.api.ws.listener import origin_allowed


def request(origin: str | None, host: str) -> Any:
    headers = [(b"Host", host.encode())]
    if origin is not None:
        headers.append((b"Origin", origin.encode()))
    return SimpleNamespace(headers=headers, _event=SimpleNamespace(host=host))


OWN = ("http://127.0.0.1:8975",)


@pytest.mark.parametrize(
    ("origin", "host", "ok"),
    [
        (None, "127.0.0.1:8976", True),  # not a browser
        ("http://127.0.0.1:8976", "127.0.0.1:8976", True),  # the WebSocket's own origin
        ("http://127.0.0.1:8975", "127.0.0.1:8976", True),  # the daemon's dashboard
        # A daemon bound to 0.0.0.0 reached at a LAN address: its dashboard at that address.
        ("http://192.168.1.5:8975", "192.168.1.5:8976", True),
        ("http://[fd00::5]:8975", "[fd00::5]:8976", True),
        ("https://dash.example.org", "127.0.0.1:8976", True),  # allow list
        # Another port of the same host, another host on the dashboard's port: refused.
        ("http://192.168.1.5:8080", "192.168.1.5:8976", False),
        ("http://evil.example:8975", "192.168.1.5:8976", False),
        ("http://192.168.1.6:8975", "192.168.1.5:8976", False),
        ("http://192.168.1.5:notaport", "192.168.1.5:8976", False),
        ("file://192.168.1.5:8975", "192.168.1.5:8976", False),
        ("null", "127.0.0.1:8976", False),
    ],
)
def test_origin_rule(origin: str | None, host: str, ok: bool) -> None:
    allowed = ["https://dash.example.org"]
    assert origin_allowed(request(origin, host), allowed, own_origins=OWN, http_port=8975) is ok

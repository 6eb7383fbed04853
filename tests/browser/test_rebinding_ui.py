"""DNS rebinding in a real browser: chromium resolves ``lan.leosuite.test`` to
127.0.0.1 (as an attacker's DNS would), and a daemon that does not list the name in
``http.allowed_hosts`` serves nothing under it, neither the page nor the WebSocket,
while the same browser reaches it under its own address."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .conftest import (
    LAN_HOST,
    start_dashboard_daemon,
    stop_dashboard_daemon,
)

OPEN_WEBSOCKET = """url => new Promise(resolve => {
  const ws = new WebSocket(url);
  ws.onopen = () => { ws.close(); resolve("open"); };
  ws.onerror = () => resolve("refused");
})"""


def test_a_rebound_name_gets_neither_page_nor_websocket(browser: Any, tmp_path: Path) -> None:
    daemon = start_dashboard_daemon(tmp_path / "data", LEOSUITE_HTTP_ALLOWED_HOSTS="")
    # Bypass the JSON answers' CSP so only the daemon can refuse the WebSocket.
    context = browser.new_context(bypass_csp=True)
    try:
        page = context.new_page()
        rebound = daemon.url.replace("127.0.0.1", LAN_HOST)
        response = page.goto(rebound)
        assert response is not None
        assert response.status == 421
        assert response.json()["error_type"] == "misdirected"
        for ws in (daemon.ws.replace("127.0.0.1", LAN_HOST), daemon.ws):
            assert page.evaluate(OPEN_WEBSOCKET, ws + "/") == "refused"
        # Under the daemon's own address the page and its WebSocket work.
        response = page.goto(daemon.url)
        assert response is not None
        assert response.status == 200
        assert page.evaluate(OPEN_WEBSOCKET, daemon.ws + "/") == "open"
    finally:
        context.close()
        stop_dashboard_daemon(daemon)

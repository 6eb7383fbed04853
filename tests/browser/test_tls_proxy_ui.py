"""The dashboard through a real nginx over TLS (docs/proxy.md's site, a self-signed
certificate) in Debian's chromium: log in at ``https://games.leosuite.test:<port>/``,
open a server and use its console, every request (the WebSocket at ``wss://.../ws/``
included) going to the proxy's origin, with no console error or CSP violation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from leosuite.auth.pow import solve
from tests.helpers.tls_proxy import (
    ADMIN_PASSWORD,
    PUBLIC_NAME,
    ProxiedDaemon,
    client_tls,
    proxied_daemon,
)

from .conftest import CHROMIUM, shot
from .conftest import CHROMIUM_ARGS as BROWSER_ARGS

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

# The public name resolves to 127.0.0.1 (nginx listens there); the rest as every test.
CHROMIUM_ARGS = [
    *(arg for arg in BROWSER_ARGS if not arg.startswith("--host-resolver-rules=")),
    f"--host-resolver-rules=MAP {PUBLIC_NAME} 127.0.0.1",
]


def create_demo_game(proxy: ProxiedDaemon, name: str) -> None:
    """Log in and create and start a demo-game, through the proxy."""
    host = {"Host": f"{PUBLIC_NAME}:{proxy.port}"}
    with httpx.Client(
        base_url=f"https://127.0.0.1:{proxy.port}",
        verify=client_tls(proxy.cert),
        headers=host,
        timeout=15,
    ) as client:
        info = client.get("/api/auth/login_info").json()
        proofs = solve(info["random"], count=info["proof_of_works"], difficulty=info["difficulty"])
        body = {
            "username": "admin",
            "password": ADMIN_PASSWORD,
            "random": info["random"],
            "proof_of_works": proofs,
        }
        token = client.post("/api/auth/login", json=body).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        settings = {"ready_delay": 0.2, "player_interval": 0}
        create = {"server": name, "type": "demo-game", "settings": settings}
        for path, payload in (("server_create", create), ("server_start", {"server": name})):
            answer = client.post(f"/api/{path}", json=payload, headers=bearer)
            assert answer.status_code == 200, answer.text


def test_the_dashboard_through_nginx(tmp_path: Path, browser: Any) -> None:
    """A chromium of its own (it must resolve the public name to 127.0.0.1), launched by
    the suite's one Playwright: a second Playwright cannot run beside it."""
    with proxied_daemon(tmp_path) as proxy:
        create_demo_game(proxy, "world1")
        own = browser.browser_type.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # The certificate is self-signed: only that is overlooked, nothing else.
            context = own.new_context(ignore_https_errors=True)
            context.set_default_timeout(20_000)
            page = context.new_page()
            problems: list[str] = []
            origins: set[str] = set()
            sockets: list[str] = []
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on(
                "console",
                lambda msg: problems.append(msg.text) if msg.type == "error" else None,
            )
            page.on("request", lambda r: origins.add(r.url.split("/", 3)[2]))
            page.on("websocket", lambda ws: sockets.append(ws.url))

            page.goto(proxy.public + "/")
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill(ADMIN_PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/#/servers")
            page.locator("#conn-state[data-state=open]").wait_for()

            page.get_by_role("link", name="world1").click()
            page.wait_for_url("**/#/servers/world1")
            rows = page.locator(".console .xterm-rows")
            expect(rows).to_contain_text("Server ready on port 25565")
            command = page.locator(".console-input")
            command.fill("say through the proxy")
            command.press("Enter")
            expect(rows).to_contain_text("[Server] through the proxy")
            shot(page, "tls-proxy-console")

            authority = f"{PUBLIC_NAME}:{proxy.port}"
            assert origins == {authority}, origins
            assert sockets, "the dashboard opened no WebSocket"
            assert set(sockets) == {f"wss://{authority}/ws/"}, sockets
            assert not problems, "\n".join(problems)
            context.close()
        finally:
            own.close()
        # nginx reached the daemon for every request (an upstream failure is an [error]).
        logged = proxy.nginx_errors.read_text()
        assert not any(f"[{level}]" in logged for level in ("error", "crit", "alert", "emerg"))

"""The dashboard survives a daemon restart: it shows the lost connection, retries with
backoff, logs in again with its token and re-subscribes (live badges keep working)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from .conftest import (
    free_ports,
    open_logged_in,
    shot,
    start_dashboard_daemon,
    stop_dashboard_daemon,
)


def test_reconnects_after_daemon_restart(browser: Any, tmp_path: Path) -> None:
    ports = free_ports(3)
    daemon = start_dashboard_daemon(tmp_path / "data", ports)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    try:
        answer = open_logged_in(page, daemon)
        token = answer["access_token"]
        daemon.api(
            "/api/server_create", {"server": "world1", "type": "demo-game", "settings": {}}, token
        )
        badge = page.locator(".badge[data-server=world1]")
        expect(badge).to_have_attribute("data-state", "stopped")

        stop_dashboard_daemon(daemon)
        state = page.locator("#conn-state")
        expect(state).to_contain_text("Disconnected, retrying in")
        expect(state.get_by_role("button", name="Retry now")).to_be_visible()
        shot(page, "reconnecting")

        # The backoff grows while the daemon is away (1 s, 2 s, 4 s ...); Retry now tries
        # at once (the next try would be 4 s away) and the backoff goes on.
        expect(state).to_contain_text("retrying in 4s", timeout=30_000)
        state.get_by_role("button", name="Retry now").click()
        expect(state).to_contain_text("retrying in 8s", timeout=2_000)
        daemon = start_dashboard_daemon(tmp_path / "data", ports)
        # Do not wait 8 s; the timer may win the race (then the button is gone).
        with contextlib.suppress(PlaywrightTimeoutError):
            state.get_by_role("button", name="Retry now").click(timeout=3_000)
        expect(state).to_contain_text("Connected")
        # The same token (the store keeps it) and a new events subscription: a start
        # made elsewhere shows up live.
        daemon.api("/api/server_start", {"server": "world1"}, token)
        expect(badge).to_have_attribute("data-state", "running")
        assert page.url.endswith("#/servers")
    finally:
        context.close()
        stop_dashboard_daemon(daemon)
    assert not page_errors, page_errors

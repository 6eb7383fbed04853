"""The issue's walk-through, all in the browser as a new user does it: log in with the
admin password, create a demo-game, start it, see its ready line, talk to it, watch the
badge, stop it. Its screenshots are the ones in docs/dashboard.md."""

from __future__ import annotations

import os
import re
import shutil
from typing import Any

from playwright.sync_api import expect

from .conftest import OUTPUT, ROOT, DashboardDaemon, log_in, shot

DOC_SHOTS = {"login": "login", "e2e-servers": "servers", "e2e-console": "console"}


def test_new_user_runs_a_demo_game(make_page: Any, dashboard: DashboardDaemon) -> None:
    page = make_page(1280, 800)
    page.goto(dashboard.url)
    shot(page, "login")
    log_in(page, dashboard)

    # The empty list points at the create form.
    page.get_by_role("link", name="Create your first server").click()
    page.get_by_label("demo-game", exact=True).check()
    page.get_by_label("Name").fill("world1")
    page.get_by_role("button", name="Create server").click()
    page.wait_for_url("**/#/servers/world1")
    badge = page.locator(".badge[data-server=world1]").first
    expect(badge).to_have_attribute("data-state", "stopped")

    page.get_by_role("button", name="Start", exact=True).click()
    rows = page.locator(".console .xterm-rows")
    expect(rows).to_contain_text("Server ready on port", timeout=20_000)
    expect(badge).to_have_attribute("data-state", "running")

    command = page.get_by_label("Command", exact=True)
    command.fill("say hello")
    command.press("Enter")
    expect(rows).to_contain_text("[Server] hello")
    expect(command).to_have_value("")
    command.press("ArrowUp")
    expect(command).to_have_value("say hello")
    command.fill("")
    shot(page, "e2e-console")

    # The list shows it running, with its stats.
    page.get_by_role("link", name="Servers", exact=True).click()
    card = page.locator(".server-card[data-server=world1]")
    expect(card.locator(".badge")).to_have_attribute("data-state", "running")
    memory = card.locator(".spark-memory .spark-value")
    expect(memory).to_have_text(re.compile(r"\d.* (KiB|MiB)"), timeout=20_000)
    shot(page, "e2e-servers")

    card.get_by_role("button", name="Stop", exact=True).click()
    expect(card.locator(".badge")).to_have_attribute("data-state", "stopped", timeout=20_000)
    token = dashboard.token()
    status = dashboard.api("/api/server_status", {"server": "world1"}, token)
    assert status["status"] == "stopped"
    assert status["exit_code"] == 0  # it obeyed the stop command, not a signal

    # Refresh the pictures in docs/ when asked (LEOSUITE_DOC_SCREENSHOTS=1).
    if os.environ.get("LEOSUITE_DOC_SCREENSHOTS") == "1":
        for source, target in DOC_SHOTS.items():
            shutil.copyfile(
                OUTPUT / "screenshots" / f"{source}.png",
                ROOT / "docs" / "screenshots" / f"{target}.png",
            )

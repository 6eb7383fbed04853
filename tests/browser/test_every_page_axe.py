"""axe-core on every page of the dashboard, in the light and the dark scheme, at desktop
and phone width: the login (empty and with an error), the server list (empty and with a
running server), the create form, each tab of a server's page, a page for an unknown
server, the chat, and each admin page. Pages with their own flows check their other
states in their own tests."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from .axe import assert_accessible
from .conftest import DashboardDaemon, new_page, open_logged_in

FAST = {"ready_delay": 0.1, "player_interval": 0}
TABS = ("Console", "Files", "Stats", "Settings", "Sharing", "Logs", "Schedules", "Backups")
ADMIN_PAGES = ("accounts", "bans", "sessions", "log")


@pytest.mark.parametrize(("scheme", "width", "height"), [("light", 1280, 800), ("dark", 390, 844)])
def test_every_page_has_no_axe_violation(
    browser: Any, dashboard: DashboardDaemon, scheme: str, width: int, height: int
) -> None:
    context, page = new_page(browser, dashboard, width=width, height=height)
    try:
        page.emulate_media(color_scheme=scheme)
        page.problems.expect("403")  # the refused login below
        page.goto(dashboard.url)
        expect(page.get_by_label("Username")).to_be_focused()
        assert_accessible(page)
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_contain_text("Login failed")
        assert_accessible(page)
    finally:
        context.close()
    page.problems.check()

    context, page = new_page(browser, dashboard, width=width, height=height)
    try:
        page.emulate_media(color_scheme=scheme)
        open_logged_in(page, dashboard, "#/servers")
        expect(page.get_by_text("No servers yet.")).to_be_visible()
        assert_accessible(page)

        page.goto(dashboard.url + "#/new")
        expect(page.get_by_role("button", name="Create server")).to_be_visible()
        assert_accessible(page)

        token = dashboard.token()
        dashboard.api(
            "/api/server_create",
            {"server": "world1", "type": "demo-game", "settings": FAST},
            token,
        )
        dashboard.api("/api/server_start", {"server": "world1"}, token)
        page.goto(dashboard.url + "#/servers")
        card = page.locator(".server-card[data-server=world1]")
        expect(card.locator(".badge")).to_have_attribute("data-state", "running")
        assert_accessible(page)

        page.goto(dashboard.url + "#/servers/world1")
        expect(page.get_by_role("heading", name="world1")).to_be_visible()
        for tab in TABS:
            page.get_by_role("tab", name=tab).click()
            panel = page.locator(f"[role=tabpanel][aria-labelledby=tab-{tab.lower()}]")
            expect(panel).to_be_visible()
            expect(panel.locator(".loading, .muted:text-is('Loading…')")).to_have_count(0)
            assert_accessible(page)

        page.goto(dashboard.url + "#/servers/nosuch")
        expect(page.get_by_role("alert")).to_contain_text("There is no server named")
        assert_accessible(page)

        page.goto(dashboard.url + "#/chat")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert_accessible(page)

        for name in ADMIN_PAGES:
            page.goto(dashboard.url + f"#/admin/{name}")
            expect(page.get_by_role("heading", level=1)).to_be_visible()
            expect(page.locator("#view .loading")).to_have_count(0)
            assert_accessible(page)
    finally:
        context.close()
    page.problems.check()

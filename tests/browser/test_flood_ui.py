"""A console flood (a demo-game server with ``flood`` on) in a real browser: the page
keeps answering, tabs switch back and forth, a command round-trips, the skip notice
speaks in human units and lies over the screen without moving it. Long tasks the
browser reports are printed for information only: nothing here measures time."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .axe import assert_accessible
from .conftest import DashboardDaemon, open_logged_in, shot

expect = pytest.importorskip("playwright.sync_api").expect

# Long tasks the page reports (PerformanceObserver), kept for the test's output only.
LONG_TASKS = """
window.__longTasks = [];
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longTasks.push(Math.round(e.duration));
  }).observe({ type: "longtask", buffered: true });
} catch (err) {}
"""


def _box(locator: Any) -> tuple[float, float, float, float]:
    box = locator.bounding_box()
    assert box is not None
    return (box["x"], box["y"], box["width"], box["height"])


def test_flood_keeps_the_page_usable(dashboard: DashboardDaemon, make_page: Any) -> None:
    token = dashboard.token()
    settings = {"ready_delay": 0.1, "player_interval": 0, "flood": True, "stop_timeout": 2}
    dashboard.api(
        "/api/server_create", {"server": "flood", "type": "demo-game", "settings": settings}, token
    )
    page = make_page(1280, 860)
    page.add_init_script(LONG_TASKS)
    open_logged_in(page, dashboard, "#/servers/flood")
    screen = page.locator(".console-screen")
    expect(screen.locator(".xterm-rows")).to_be_visible()
    expect(page.locator(".console-overrun")).to_have_count(0)
    before = _box(screen)

    try:
        page.get_by_role("group", name="Power: flood").get_by_role(
            "button", name="Start", exact=True
        ).click()
        expect(page.locator(".badge[data-server=flood]")).to_have_attribute("data-state", "running")

        # The page cannot show everything: it says how much it skipped, in units.
        notice = page.locator(".console-overrun")
        expect(notice).to_be_visible(timeout=30_000)
        expect(notice).to_have_text(re.compile(r"^\d+(\.\d)? (B|KiB|MiB|GiB|TiB) skipped — "))
        assert "bytes" not in notice.inner_text()
        # ... over the screen: the console did not move or change size.
        assert _box(screen) == before
        notice_box = _box(notice)
        assert before[1] <= notice_box[1] < before[1] + before[3]
        shot(page, "console-flood")
        assert_accessible(page)

        # Tabs switch back and forth while the flood goes on, each one shown.
        page.evaluate("window.__longTasks = []")  # axe-core's own run is one
        tabs = page.get_by_role("tablist")
        for _ in range(3):
            for name, panel in (("Settings", "#panel-settings"), ("Console", "#panel-console")):
                tabs.get_by_role("tab", name=name).click()
                expect(tabs.get_by_role("tab", name=name)).to_have_attribute(
                    "aria-selected", "true"
                )
                expect(page.locator(panel)).to_be_visible()
        assert _box(screen) == before

        # The page still answers: a command is sent and acknowledged.
        command = page.locator(".console-input")
        command.fill("say still here")
        command.press("Enter")
        expect(command).to_have_value("")
        expect(page.locator(".console-cmd-error")).to_have_text("")

        # Dismissed, it stays away until more is skipped; the console stays in place.
        notice.get_by_role("button", name="Dismiss").click()
        assert _box(screen) == before
    finally:
        dashboard.api("/api/server_force_kill", {"server": "flood"}, token)
    expect(page.locator(".badge[data-server=flood]")).to_have_attribute(
        "data-state", re.compile("stopped|crashed")
    )
    long_tasks = page.evaluate("window.__longTasks")
    print(f"long tasks after the notice (ms, information only): {sorted(long_tasks)[-10:]}")

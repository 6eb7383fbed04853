"""The server page's Stats tab draws the daemon's kept hour of samples (and live ones)
as a uPlot chart with a time axis and CPU and memory axes, again after a reload; each
view names itself in the tab title; the destructive power actions say what they do and
ask first, Force kill behind "More"."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .axe import assert_accessible
from .conftest import (
    DashboardDaemon,
    open_logged_in,
    shot,
    start_dashboard_daemon,
    stop_dashboard_daemon,
)

expect = pytest.importorskip("playwright.sync_api").expect

FAST = {"ready_delay": 0.1, "player_interval": 0, "stop_timeout": 2}


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[DashboardDaemon]:
    """The conftest daemon, sampling every 0.2 s so that a history builds up quickly."""
    daemon = start_dashboard_daemon(tmp_path / "data", LEOSUITE_SERVERS_STATS_INTERVAL="0.2")
    try:
        yield daemon
    finally:
        stop_dashboard_daemon(daemon)


def kept_samples(daemon: DashboardDaemon, token: str, server: str) -> int:
    answer = daemon.api("/api/server_stats_history", {"server": server}, token)
    return len(answer["samples"])


def samples_shown(chart: Any) -> int:
    return int(chart.get_attribute("data-samples") or "0")


def test_stats_chart_with_history_and_titles(dashboard: DashboardDaemon, make_page: Any) -> None:
    token = dashboard.token()
    dashboard.api(
        "/api/server_create", {"server": "world1", "type": "demo-game", "settings": FAST}, token
    )
    dashboard.api("/api/server_start", {"server": "world1"}, token)
    page = make_page(1280, 860)
    open_logged_in(page, dashboard, "#/servers")
    expect(page).to_have_title("Servers — leosuite")
    page.get_by_role("link", name="Chat").first.click()
    expect(page).to_have_title("Chat — leosuite")

    page.goto(dashboard.url + "#/servers/world1")
    expect(page).to_have_title("world1 · running — leosuite")
    # The kept samples build up while the page is elsewhere.
    page.wait_for_function(
        "async () => (await (await import('/ui/js/main.js')).app.conn.call("
        "'server.stats_history', {server: 'world1'})).samples.length >= 6"
    )
    page.get_by_role("tab", name="Stats").click()
    chart = page.locator(".stats-chart")
    expect(chart).to_have_class(re.compile(r"\bhas-plot\b"))
    # A time axis below, CPU % on the left, memory on the right, each drawn with a size.
    axes = chart.locator(".stats-plot .u-axis")
    expect(axes).to_have_count(3)
    for i in range(3):
        box = axes.nth(i).bounding_box()
        assert box is not None
        assert box["width"] > 0
        assert box["height"] > 0
    expect(chart.locator(".stats-plot canvas").first).to_be_visible()
    # The kept samples are drawn (a failed read draws the live ones alone, then retries).
    expect(chart).to_have_attribute("data-history", "loaded")
    page.wait_for_function(
        "() => Number(document.querySelector('.stats-chart').dataset.samples) >= 6"
    )
    expect(chart.locator("figcaption")).to_have_text(
        re.compile(r"^CPU \d+\.\d % \(peak \d+\.\d %\), memory \d.* (KiB|MiB) .* samples over ")
    )
    # Live samples are added as they come.
    first = samples_shown(chart)
    page.wait_for_function(
        f"() => Number(document.querySelector('.stats-chart').dataset.samples) > {first}"
    )
    shot(page, "stats-chart")
    assert_accessible(page)

    # After a reload the chart starts from the daemon's kept hour, not from nothing.
    kept = kept_samples(dashboard, token, "world1")
    page.reload()
    expect(page).to_have_title("world1 · running — leosuite")
    page.get_by_role("tab", name="Stats").click()
    chart = page.locator(".stats-chart")
    expect(chart).to_have_class(re.compile(r"\bhas-plot\b"))
    expect(chart).to_have_attribute("data-history", "loaded")
    assert samples_shown(chart) >= kept

    # Stopped: the title says so, and the kept samples stay on the chart.
    dashboard.api("/api/server_stop", {"server": "world1"}, token)
    expect(page).to_have_title("world1 · stopped — leosuite", timeout=20_000)
    assert samples_shown(chart) >= kept


def test_destructive_power_actions_explained(dashboard: DashboardDaemon, make_page: Any) -> None:
    token = dashboard.token()
    dashboard.api(
        "/api/server_create", {"server": "keys", "type": "demo-game", "settings": FAST}, token
    )
    dashboard.api("/api/server_start", {"server": "keys"}, token)
    page = make_page(1280, 860)
    open_logged_in(page, dashboard, "#/servers/keys")
    power = page.get_by_role("group", name="Power: keys")
    badge = page.locator(".badge[data-server=keys]")
    expect(badge).to_have_attribute("data-state", "running")

    # Each says what it does (tooltip and accessible description).
    kill = power.get_by_role("button", name="Kill", exact=True)
    expect(kill).to_have_accessible_description(re.compile(r"SIGTERM .* SIGKILL after"))
    expect(kill).to_have_attribute("title", re.compile("SIGTERM"))
    expect(power.get_by_role("button", name="Stop", exact=True)).to_have_accessible_description(
        re.compile("stop command")
    )
    # Kill stands apart from Force kill, which is not in the row while Stop is on offer.
    assert "btn-warn" in (kill.get_attribute("class") or "")
    force = power.locator("[data-action=force_kill]")
    expect(force).to_be_hidden()
    more = power.get_by_role("button", name="More", exact=True)
    more.click()
    expect(more).to_have_attribute("aria-expanded", "true")
    expect(force).to_be_visible()
    expect(power.locator(".power-menu")).to_contain_text("no chance to save")
    assert "btn-danger" in (force.get_attribute("class") or "")
    assert_accessible(page)
    page.keyboard.press("Escape")
    expect(force).to_be_hidden()
    expect(more).to_be_focused()

    # Kill asks first; cancelled, nothing happens.
    kill.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("SIGTERM")
    shot(page, "power-kill-confirm")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(kill).to_be_focused()
    assert dashboard.api("/api/server_status", {"server": "keys"}, token)["status"] == "running"

    # Confirmed, it kills; the toast says so.
    kill.click()
    page.get_by_role("dialog").get_by_role("button", name="Kill").click()
    expect(badge).to_have_attribute("data-state", re.compile("stopped|crashed"), timeout=20_000)
    expect(page).to_have_title(re.compile(r"^keys · (stopped|crashed) — leosuite$"))

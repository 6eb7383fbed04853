"""Browser tests of the server pages: the list with live badges, sparklines and power
buttons, the create form, the settings form, destroy, and phone width."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    DashboardDaemon,
    open_logged_in,
    shot,
    start_dashboard_daemon,
    stop_dashboard_daemon,
)

expect = pytest.importorskip("playwright.sync_api").expect

# A type with a readonly variable (demo-game has none), to see it disabled in Settings.
FIXED_GAME = """\
description = "Demo game whose port is fixed at creation (browser tests)"
command = ["{python}", "-m", "leosuite.templates.demo_game", "--port", "{port}",
           "--ready-delay", "{ready_delay}", "--player-interval", "0"]
stop_command = "stop"
ready_pattern = 'Server ready'

[env]
PYTHONUNBUFFERED = "1"

[[variables]]
name = "port"
type = "port"
default = 25565
readonly = true
description = "Port it says it listens on"

[[variables]]
name = "ready_delay"
type = "number"
default = 0.1
min = 0
max = 600
description = "Seconds until the ready line"
"""

FAST = {"ready_delay": 0.1, "player_interval": 0}


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[DashboardDaemon]:
    """The conftest daemon with a readonly-variable type and stats every 0.3 s."""
    data = tmp_path / "data"
    (data / "templates").mkdir(parents=True)
    (data / "templates" / "fixed-game.toml").write_text(FIXED_GAME)
    daemon = start_dashboard_daemon(data, LEOSUITE_SERVERS_STATS_INTERVAL="0.3")
    try:
        yield daemon
    finally:
        stop_dashboard_daemon(daemon)


def api(dashboard: DashboardDaemon, path: str, **body: Any) -> Any:
    return dashboard.api(path, body, dashboard.token())


def server_names(dashboard: DashboardDaemon) -> list[str]:
    return list(api(dashboard, "/api/server_list")["servers"])


def assert_no_horizontal_scroll(page: Any) -> None:
    """The page does not scroll sideways, and nothing in the view sticks out of it
    (body has overflow-x: hidden, which would hide such overflow from scrollWidth)."""
    sizes = page.evaluate(
        """() => {
          const doc = document.documentElement;
          const right = Math.max(0, ...[...document.querySelectorAll('#view *')]
            .filter((e) => !e.closest('.xterm'))
            .map((e) => e.getBoundingClientRect().right));
          return {scroll: doc.scrollWidth, client: doc.clientWidth, right};
        }"""
    )
    assert sizes["scroll"] <= sizes["client"], sizes
    assert sizes["right"] <= sizes["client"] + 0.5, sizes


def wait_for_samples(page: Any, server: str, n: int) -> None:
    """Wait until the memory sparkline of ``server``'s card has ``n`` samples."""
    page.wait_for_function(
        """([server, n]) => {
          const chart = document.querySelector(
            `.server-card[data-server="${server}"] .spark-memory .spark-chart`);
          return chart && Number(chart.dataset.samples) >= n;
        }""",
        arg=[server, n],
        timeout=10_000,
    )


def watch_states(page: Any) -> None:
    """Record every data-state a badge takes in window.__states ("server:state")."""
    page.evaluate(
        """() => {
          window.__states = [];
          new MutationObserver((records) => {
            for (const r of records) {
              const el = r.target;
              if (el.classList && el.classList.contains('badge') && el.dataset.server) {
                window.__states.push(el.dataset.server + ':' + el.dataset.state);
              }
            }
          }).observe(document.body, {subtree: true, attributes: true,
                                     attributeFilter: ['data-state']});
        }"""
    )


def test_list_live_states_power_sparklines(dashboard: DashboardDaemon, make_page: Any) -> None:
    page = make_page(1280, 800)
    open_logged_in(page, dashboard, "#/servers")
    # Empty: it says what to do.
    expect(page.get_by_text("No servers yet.")).to_be_visible()
    expect(page.get_by_role("link", name="Create your first server")).to_be_visible()

    # Created elsewhere: the card appears without a reload.
    api(dashboard, "/api/server_create", server="alpha", type="demo-game", settings=FAST)
    card = page.locator(".server-card[data-server=alpha]")
    badge = card.locator(".badge[data-server=alpha]")
    expect(badge).to_have_attribute("data-state", "stopped", timeout=10_000)
    expect(page.get_by_text("No servers yet.")).to_be_hidden()
    expect(card.get_by_role("link", name="alpha")).to_have_attribute("href", "#/servers/alpha")
    expect(card.get_by_role("button", name="Stop", exact=True)).to_be_hidden()
    expect(card.get_by_role("button", name="Force kill")).to_be_hidden()
    watch_states(page)

    card.get_by_role("button", name="Start", exact=True).click()
    expect(badge).to_have_attribute("data-state", "running", timeout=10_000)
    expect(badge).to_have_text("running")
    expect(badge).to_have_class(re.compile(r"\bstate-running\b"))
    expect(page.locator(".toast", has_text="alpha started")).to_be_visible()
    for name in ("Stop", "Restart", "Kill"):
        expect(card.get_by_role("button", name=name, exact=True)).to_be_visible()
    # Force kill waits behind "More" while a graceful stop is on offer.
    expect(card.get_by_role("button", name="Force kill")).to_be_hidden()
    card.get_by_role("button", name="More", exact=True).click()
    expect(card.get_by_role("button", name="Force kill")).to_be_visible()
    card.get_by_role("button", name="More", exact=True).click()
    expect(card.get_by_role("button", name="Start", exact=True)).to_be_hidden()
    # Stats pushes draw the sparklines (from two samples on) and show the values.
    wait_for_samples(page, "alpha", 3)
    expect(card.locator(".spark-cpu canvas")).to_be_visible()
    expect(card.locator(".spark-memory canvas")).to_be_visible()
    expect(card.locator(".spark-memory .spark-value")).to_have_text(re.compile(r"\d.* (KiB|MiB)"))
    expect(card.locator(".spark-cpu .spark-value")).to_have_text(re.compile(r"^\d+\.\d %$"))
    expect(card.locator(".uptime")).to_have_text(re.compile(r"^\d+s$|^\d+m \d+s$"))
    shot(page, "servers-list")

    card.get_by_role("button", name="Stop", exact=True).click()
    expect(badge).to_have_attribute("data-state", "stopped", timeout=15_000)
    expect(card.get_by_role("button", name="Start", exact=True)).to_be_visible()
    states = page.evaluate("window.__states")
    # Each state once, in order (no flicker back from a late stats sample).
    assert states == ["alpha:starting", "alpha:running", "alpha:stopping", "alpha:stopped"]

    # Created and destroyed elsewhere: the card comes and goes.
    api(dashboard, "/api/server_create", server="beta", type="demo-game", settings=FAST)
    beta = page.locator(".server-card[data-server=beta]")
    expect(beta).to_be_visible(timeout=10_000)
    api(dashboard, "/api/server_destroy", server="beta")
    expect(beta).to_have_count(0, timeout=10_000)
    assert page.locator(".server-card").count() == 1


def test_create_form_errors_next_to_fields(dashboard: DashboardDaemon, make_page: Any) -> None:
    page = make_page(1280, 900)
    open_logged_in(page, dashboard, "#/servers")
    page.get_by_role("link", name="New server").first.click()
    expect(page).to_have_url(re.compile(r"#/new$"))
    page.get_by_label("demo-game", exact=True).check()
    port = page.get_by_label("Port", exact=True)
    expect(port).to_have_value("25565")  # the default is filled in
    expect(page.get_by_label("Flood")).not_to_be_checked()
    name = page.get_by_label("Name")
    expect(name).to_have_attribute("aria-required", "true")

    # A bad name: the API's error next to the name field, nothing created.
    name.fill("Bad Name")
    page.get_by_role("button", name="Create server").click()
    name_error = page.locator("[data-field=server] .field-error")
    expect(name_error).to_contain_text("Server name must be")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(name).to_be_focused()
    error_id = name_error.get_attribute("id")
    assert error_id
    assert error_id in (name.get_attribute("aria-describedby") or "").split()

    # A bad port: the error moves to the port field.
    name.fill("gamma")
    port.fill("70000")
    page.get_by_role("button", name="Create server").click()
    port_error = page.locator("[data-field=port] .field-error")
    expect(port_error).to_contain_text("Port must be a port number")
    expect(port).to_have_attribute("aria-invalid", "true")
    expect(name).not_to_have_attribute("aria-invalid", "true")
    expect(name_error).to_be_hidden()
    shot(page, "server-create")
    assert server_names(dashboard) == []

    port.fill("25570")
    page.get_by_label("Ready delay").fill("0.5")
    page.get_by_role("button", name="Create server").click()
    expect(page).to_have_url(re.compile(r"#/servers/gamma$"))
    expect(page.locator(".toast", has_text="gamma created")).to_be_visible()
    expect(page.locator(".badge[data-server=gamma]")).to_have_attribute("data-state", "stopped")
    settings = {
        s["name"]: s["value"] for s in api(dashboard, "/api/server_settings", server="gamma")
    }
    assert settings["port"] == 25570
    assert settings["ready_delay"] == 0.5

    # The same name again: said next to the name.
    page.goto(dashboard.url + "#/new")
    page.get_by_label("demo-game", exact=True).check()
    page.get_by_label("Name").fill("gamma")
    page.get_by_role("button", name="Create server").click()
    expect(page.locator("[data-field=server] .field-error")).to_contain_text("name not available")


def test_settings_form(dashboard: DashboardDaemon, make_page: Any) -> None:
    api(
        dashboard, "/api/server_create", server="delta", type="fixed-game", settings={"port": 25600}
    )
    page = make_page(1280, 1000)
    open_logged_in(page, dashboard, "#/servers/delta")
    console_tab = page.get_by_role("tab", name="Console")
    expect(console_tab).to_have_attribute("aria-selected", "true")
    # Keyboard: arrow right moves from tab to tab, on to Settings.
    console_tab.focus()
    names = page.get_by_role("tab").all_inner_texts()
    for _ in range(names.index("Settings")):
        page.keyboard.press("ArrowRight")
    settings_tab = page.get_by_role("tab", name="Settings")
    expect(settings_tab).to_have_attribute("aria-selected", "true")
    expect(settings_tab).to_be_focused()
    panel = page.get_by_role("tabpanel", name="Settings")
    port = panel.get_by_label("Port", exact=True)
    expect(port).to_have_value("25600")
    expect(port).to_be_disabled()
    delay = panel.get_by_label("Ready delay")
    expect(delay).to_be_enabled()
    save = panel.get_by_role("button", name="Save settings")

    delay.fill("601")
    save.click()
    expect(panel.locator("[data-field=ready_delay] .field-error")).to_contain_text("at most 600")
    expect(delay).to_have_attribute("aria-invalid", "true")

    delay.fill("2.5")
    panel.get_by_text("Supervision").click()
    panel.get_by_label("Restart", exact=True).select_option("never")
    save.click()
    expect(panel.get_by_role("status").filter(has_text="apply at the next start")).to_be_visible()
    expect(delay).not_to_have_attribute("aria-invalid", "true")
    shot(page, "server-settings")
    values = {s["name"]: s["value"] for s in api(dashboard, "/api/server_settings", server="delta")}
    assert values["ready_delay"] == 2.5
    assert values["restart"] == "never"
    assert values["port"] == 25600

    save.click()
    expect(panel.get_by_text("Nothing changed.")).to_be_visible()


def test_destroy_with_confirmation(dashboard: DashboardDaemon, make_page: Any) -> None:
    api(dashboard, "/api/server_create", server="eps", type="demo-game", settings=FAST)
    files = dashboard.data_dir / "servers" / "eps"
    assert files.is_dir()
    page = make_page(1280, 900)
    open_logged_in(page, dashboard, "#/servers/eps")
    page.get_by_role("tab", name="Settings").click()
    destroy = page.get_by_role("button", name="Destroy server")

    destroy.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Destroy server “eps”?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(destroy).to_be_focused()
    assert server_names(dashboard) == ["eps"]

    page.get_by_label("Also delete its files").check()
    destroy.click()
    expect(dialog).to_contain_text("deleted too")
    dialog.get_by_role("button", name="Destroy").click()
    expect(page).to_have_url(re.compile(r"#/servers$"))
    expect(page.locator(".toast", has_text="eps destroyed with its files")).to_be_visible()
    expect(page.get_by_text("No servers yet.")).to_be_visible()
    assert server_names(dashboard) == []
    assert not files.exists()
    # Its page now says it is gone, not a blank page.
    page.goto(dashboard.url + "#/servers/eps")
    expect(page.get_by_role("alert")).to_contain_text("There is no server named “eps”")


def test_phone_width(dashboard: DashboardDaemon, make_page: Any) -> None:
    long_name = "a-very-long-server-name-" + "x" * 40
    api(dashboard, "/api/server_create", server=long_name, type="demo-game", settings=FAST)
    api(dashboard, "/api/server_create", server="zeta", type="demo-game", settings=FAST)
    api(dashboard, "/api/server_start", server="zeta")
    page = make_page(390, 844)
    open_logged_in(page, dashboard, "#/servers")
    card = page.locator(".server-card[data-server=zeta]")
    expect(card.locator(".badge")).to_have_attribute("data-state", "running", timeout=10_000)
    wait_for_samples(page, "zeta", 3)
    expect(card.locator(".spark-cpu canvas")).to_be_visible()
    assert_no_horizontal_scroll(page)
    shot(page, "servers-list-phone")

    page.goto(dashboard.url + "#/new")
    page.get_by_label("demo-game", exact=True).check()
    expect(page.get_by_label("Port", exact=True)).to_be_visible()
    assert_no_horizontal_scroll(page)

    page.goto(dashboard.url + f"#/servers/{long_name}")
    expect(page.locator(f".badge[data-server={long_name}]")).to_be_visible()
    assert_no_horizontal_scroll(page)
    page.get_by_role("tab", name="Settings").click()
    expect(page.get_by_role("button", name="Destroy server")).to_be_visible()
    assert_no_horizontal_scroll(page)
    api(dashboard, "/api/server_stop", server="zeta")

"""The create and settings forms speak of labels, not internal names, fold test switches
under "Advanced settings" and give a command line the form's width; the server list
shows an ADMIN whose each server is, with owner and name filters (a HOST sees neither
owners nor the owner filter); while the daemon is away the list shows every state as
unknown and offers no action."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from .axe import assert_accessible
from .conftest import (
    ADMIN_PASSWORD,
    DashboardDaemon,
    free_ports,
    new_page,
    open_logged_in,
    shot,
    start_dashboard_daemon,
    stop_dashboard_daemon,
)

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

FAST = {"ready_delay": 0.1, "player_interval": 0}
HANA_PASSWORD = "hana-password-1"
NONE = "\N{EN DASH}"  # what the page shows for a figure it does not know
# Words of the old forms that a user should never meet.
INTERNAL = re.compile(r"Player_interval|Ignore_sigterm|for benchmarks|for tests|_")


def _add_host(daemon: DashboardDaemon, username: str, password: str) -> None:
    response = httpx.post(
        daemon.admin + "/accounts/",
        json={"username": username, "password": password, "flags": "HOST"},
        auth=("admin", ADMIN_PASSWORD),
        timeout=15,
    )
    response.raise_for_status()


def _create(daemon: DashboardDaemon, token: str, name: str) -> None:
    body = {"server": name, "type": "demo-game", "settings": FAST}
    daemon.api("/api/server_create", body, token)


def _labels(scope: Any) -> list[str]:
    return [text.strip() for text in scope.locator(".field label").all_inner_texts()]


def test_create_form_labels_advanced_settings_and_a_wide_command(
    dashboard: DashboardDaemon, make_page: Any
) -> None:
    page = make_page(1280, 900)
    open_logged_in(page, dashboard, "#/new")
    page.get_by_label("demo-game", exact=True).check()
    form = page.locator(".create-form")
    interval = form.get_by_label("Player interval", exact=True)
    expect(interval).to_be_visible()
    for label in _labels(form):
        assert not INTERNAL.search(label), label
    expect(form).not_to_contain_text("for benchmarks")
    expect(form).not_to_contain_text("for tests")

    # The test switches are folded under "Advanced settings", closed at first.
    advanced = form.locator("details.form-advanced")
    expect(advanced.locator("summary")).to_have_text("Advanced settings")
    expect(advanced).not_to_have_attribute("open", "")
    flood = form.get_by_label("Flood the console")
    expect(flood).to_be_hidden()
    expect(form.get_by_label("Ignore the stop signal")).to_be_hidden()
    assert_accessible(page)
    advanced.locator("summary").click()
    expect(flood).to_be_visible()
    expect(flood).not_to_be_checked()
    expect(advanced).to_contain_text("Leave off to play")
    assert_accessible(page)
    shot(page, "forms-create-advanced")

    # An error names the label, next to its field.
    page.get_by_label("Name", exact=True).fill("lab")
    interval.fill("90000")
    page.get_by_role("button", name="Create server").click()
    error = form.locator("[data-field=player_interval] .field-error")
    expect(error).to_have_text("Player interval must be at most 86400")
    expect(interval).to_have_attribute("aria-invalid", "true")
    expect(interval).to_be_focused()
    assert_accessible(page)

    # The command type's command line spans the form.
    page.get_by_label("command", exact=True).check()
    command = form.get_by_label("Command line", exact=True)
    expect(command).to_be_visible()
    box = command.bounding_box()
    whole = form.bounding_box()
    assert box is not None
    assert whole is not None
    assert box["width"] >= 0.9 * whole["width"], (box, whole)
    assert_accessible(page)
    shot(page, "forms-create-command")


def test_settings_form_labels_and_advanced_settings(
    dashboard: DashboardDaemon, make_page: Any
) -> None:
    _create(dashboard, dashboard.token(), "lab")
    page = make_page(1280, 1000)
    open_logged_in(page, dashboard, "#/servers/lab")
    page.get_by_role("tab", name="Settings").click()
    panel = page.get_by_role("tabpanel", name="Settings")
    delay = panel.get_by_label("Player interval", exact=True)
    expect(delay).to_have_value("0")
    for label in _labels(panel):
        assert not INTERNAL.search(label), label
    advanced = panel.locator("details.form-advanced")
    expect(panel.get_by_label("Ignore the stop signal")).to_be_hidden()
    assert_accessible(page)

    delay.fill("90000")
    panel.get_by_role("button", name="Save settings").click()
    error = panel.locator("[data-field=player_interval] .field-error")
    expect(error).to_have_text("Player interval must be at most 86400")
    delay.fill("2")
    # A stop timeout out of range opens the folded group and names the label.
    advanced.locator("summary").click()
    panel.get_by_label("Stop timeout", exact=True).fill("0")
    panel.get_by_role("button", name="Save settings").click()
    expect(panel.locator("[data-field=stop_timeout] .field-error")).to_have_text(
        "Stop timeout must be at least 0.1"
    )
    panel.get_by_label("Stop timeout", exact=True).fill("2")
    panel.get_by_role("button", name="Save settings").click()
    saved = panel.get_by_role("status").filter(has_text="Saved")
    expect(saved).to_contain_text("Player interval")
    expect(saved).to_contain_text("Stop timeout")
    assert_accessible(page)
    shot(page, "forms-settings-advanced")


def test_owner_column_and_filters_for_an_admin_only(
    dashboard: DashboardDaemon, make_page: Any
) -> None:
    _add_host(dashboard, "hana", HANA_PASSWORD)
    hana = dashboard.token("hana", HANA_PASSWORD)
    _create(dashboard, dashboard.token(), "mine")
    _create(dashboard, hana, "hanas-one")
    _create(dashboard, hana, "hanas-two")

    page = make_page(1280, 900)
    open_logged_in(page, dashboard, "#/servers")
    cards = page.locator(".server-card")
    expect(cards).to_have_count(3)
    owner_of = {
        "mine": "admin",
        "hanas-one": "hana",
        "hanas-two": "hana",
    }
    for name, owner in owner_of.items():
        card = page.locator(f".server-card[data-server={name}]")
        expect(card.locator(".server-owner")).to_have_text(f"Owner {owner}")
    owner = page.get_by_label("Owner", exact=True)
    options = owner.locator("option").all_inner_texts()
    assert options == ["Everyone", "Me (admin)", "hana"], options
    assert_accessible(page)

    owner.select_option(label="hana")
    expect(cards.locator("visible=true")).to_have_count(2)
    expect(page.locator(".server-card[data-server=mine]")).to_be_hidden()
    expect(page.locator(".filter-count")).to_have_text("Showing 2 of 3 servers.")
    page.get_by_label("Name", exact=True).fill("two")
    expect(cards.locator("visible=true")).to_have_count(1)
    expect(page.locator(".server-card[data-server=hanas-two]")).to_be_visible()
    owner.select_option(label="Me (admin)")
    expect(cards.locator("visible=true")).to_have_count(0)
    expect(page.locator(".filter-count")).to_have_text("No server matches the filter (3 in all).")
    page.get_by_label("Name", exact=True).fill("")
    expect(cards.locator("visible=true")).to_have_count(1)
    expect(page.locator(".server-card[data-server=mine]")).to_be_visible()
    assert_accessible(page)
    shot(page, "servers-owner-filter")
    owner.select_option(label="Everyone")
    expect(cards.locator("visible=true")).to_have_count(3)
    expect(page.locator(".filter-count")).to_be_hidden()

    # A HOST sees its own servers: no owners, no owner filter.
    host_page = make_page(1280, 900)
    open_logged_in(host_page, dashboard, "#/servers", username="hana", password=HANA_PASSWORD)
    expect(host_page.locator(".server-card")).to_have_count(2)
    expect(host_page.locator(".server-owner")).to_have_count(0)
    expect(host_page.get_by_label("Owner", exact=True)).to_have_count(0)
    expect(host_page.get_by_label("Name", exact=True)).to_be_visible()
    assert_accessible(host_page)


def test_away_daemon_shows_unknown_states_on_the_list(browser: Any, tmp_path: Path) -> None:
    ports = free_ports(3)
    daemon = start_dashboard_daemon(tmp_path / "data", ports)
    context, page = new_page(browser, daemon, width=1280, height=860, timeout_ms=20_000)
    # The lost connection's own console errors are expected here: only page errors count.
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    try:
        token = daemon.token()
        _create(daemon, token, "world1")
        _create(daemon, token, "world2")
        daemon.api("/api/server_start", {"server": "world1"}, token)
        open_logged_in(page, daemon, "#/servers")
        card = page.locator(".server-card[data-server=world1]")
        badge = card.locator(".badge")
        expect(badge).to_have_attribute("data-state", "running")
        uptime = card.locator(".uptime")
        expect(uptime).not_to_have_text(NONE)

        stop_dashboard_daemon(daemon)
        expect(page.locator("#conn-state")).to_contain_text("Disconnected")
        expect(page.locator(".servers-away")).to_be_visible()
        for name in ("world1", "world2"):
            other = page.locator(f".server-card[data-server={name}]")
            expect(other.locator(".badge")).to_have_attribute("data-state", "unknown")
            expect(other.locator(".badge")).to_have_text("unknown")
            buttons = other.get_by_role("group").get_by_role("button")
            assert buttons.count() == 5
            for i in range(buttons.count()):
                expect(buttons.nth(i)).to_be_disabled()
        expect(uptime).to_have_text(NONE)
        assert_accessible(page)
        shot(page, "servers-away")

        daemon = start_dashboard_daemon(tmp_path / "data", ports)
        with contextlib.suppress(sync_api.TimeoutError):
            page.locator("#conn-state").get_by_role("button", name="Retry now").click(timeout=3_000)
        expect(page.locator("#conn-state")).to_contain_text("Connected")
        expect(page.locator(".servers-away")).to_be_hidden()
        expect(badge).not_to_have_attribute("data-state", "unknown")
        shown = card.locator(".power button:visible")
        expect(shown.first).to_be_visible()
        for i in range(shown.count()):
            expect(shown.nth(i)).to_be_enabled()
    finally:
        context.close()
        stop_dashboard_daemon(daemon)
    assert not page_errors, page_errors

"""The Schedules tab of a server page in a real browser: the owner creates a schedule
(a bad cron expression first: the daemon's reason next to the form), edits it, runs it
now and deletes it; a grantee has no Schedules tab. axe-core on every state."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .axe import assert_accessible
from .conftest import ADMIN_PASSWORD, DashboardDaemon, open_logged_in, shot

expect = pytest.importorskip("playwright.sync_api").expect

FAST = {"ready_delay": 0.1, "player_interval": 0}
FRIEND_PASSWORD = "friend-password-1"


def _schedules(daemon: DashboardDaemon, token: str) -> list[dict[str, Any]]:
    answer = daemon.api("/api/server_schedule_list", {"server": "game"}, token)
    listed: list[dict[str, Any]] = answer["schedules"]
    return listed


def test_owner_creates_edits_runs_and_deletes(dashboard: DashboardDaemon, make_page: Any) -> None:
    token = dashboard.token()
    dashboard.api(
        "/api/server_create", {"server": "game", "type": "demo-game", "settings": FAST}, token
    )
    dashboard.api("/api/server_start", {"server": "game"}, token)
    page = make_page()
    open_logged_in(page, dashboard, "#/servers/game")
    page.get_by_role("tab", name="Schedules").click()
    panel = page.locator(".panel-schedules")
    expect(panel.get_by_text("No schedules yet.")).to_be_visible()
    assert_accessible(page)

    panel.get_by_label("Name").fill("nightly")
    panel.get_by_label("Cron (minute hour day month weekday)").fill("0 4 * *")
    panel.get_by_label("Time zone of the cron fields").fill("Europe/Berlin")
    panel.get_by_label("Steps").fill("command say restart soon\nrestart")
    panel.get_by_role("button", name="Create", exact=True).click()
    expect(panel.locator("#schedule-error")).to_contain_text("five fields")
    assert_accessible(page)

    panel.get_by_label("Cron (minute hour day month weekday)").fill("0 4 * * *")
    panel.get_by_role("button", name="Create", exact=True).click()
    row = panel.locator("tr[data-schedule=nightly]")
    expect(row).to_contain_text("0 4 * * * (Europe/Berlin)")
    expect(row).to_contain_text("command say restart soon; restart")
    expect(panel.locator("#schedule-error")).to_have_text("")
    [stored] = _schedules(dashboard, token)
    assert (stored["cron"], stored["zone"]) == ("0 4 * * *", "Europe/Berlin")
    assert_accessible(page)
    shot(page, "schedules-owner")

    # Edited into a save every ten minutes.
    row.get_by_role("button", name="Edit nightly").click()
    panel.get_by_label("Cron (minute hour day month weekday)").fill("")
    panel.get_by_label("Or every (seconds)").fill("600")
    panel.get_by_label("Steps").fill("command save")
    assert_accessible(page)
    panel.get_by_role("button", name="Save", exact=True).click()
    expect(row).to_contain_text("every 600 s")
    [stored] = _schedules(dashboard, token)
    assert (stored["cron"], stored["interval"], stored["steps"]) == (None, 600.0, ["command save"])

    # Run now: its result shows once the list is loaded again.
    row.get_by_role("button", name="Run nightly now").click()
    expect(page.locator(".toast").last).to_contain_text("nightly started.")
    page.get_by_role("tab", name="Console").click()
    page.get_by_role("tab", name="Schedules").click()
    expect(panel.locator("tr[data-schedule=nightly]")).to_contain_text("done (run now)")

    panel.locator("tr[data-schedule=nightly]").get_by_role("button", name="Delete nightly").click()
    dialog = page.locator("dialog[open]")
    assert_accessible(page)
    dialog.get_by_role("button", name="Delete").click()
    expect(panel.get_by_text("No schedules yet.")).to_be_visible()
    assert _schedules(dashboard, token) == []


def test_a_grantee_has_no_schedules_tab(dashboard: DashboardDaemon, make_page: Any) -> None:
    token = dashboard.token()
    dashboard.api(
        "/api/server_create", {"server": "game", "type": "demo-game", "settings": FAST}, token
    )
    dashboard.api(
        "/api/server_schedule_create",
        {"server": "game", "name": "save", "interval": 600, "steps": ["command save"]},
        token,
    )
    response = httpx.post(
        dashboard.admin + "/accounts/",
        json={"username": "finn", "password": FRIEND_PASSWORD, "flags": ""},
        auth=("admin", ADMIN_PASSWORD),
        timeout=15,
    )
    response.raise_for_status()
    share = {"server": "game", "account": "finn", "rights": ["console", "power", "commands"]}
    dashboard.api("/api/server_share_set", share, token)
    page = make_page()
    open_logged_in(page, dashboard, "#/servers/game", username="finn", password=FRIEND_PASSWORD)
    expect(page.get_by_role("tab", name="Console")).to_be_visible()
    expect(page.get_by_role("tab", name="Schedules")).to_have_count(0)
    assert_accessible(page)

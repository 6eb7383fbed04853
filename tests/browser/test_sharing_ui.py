"""The Sharing tab of a server page in a real browser: the owner shares the server with
another account (a checkbox per right), changes and revokes its rights; the other
account's page shows only the tabs and buttons its rights allow. axe-core on every
state."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .axe import assert_accessible
from .conftest import ADMIN_PASSWORD, DashboardDaemon, open_logged_in, shot

expect = pytest.importorskip("playwright.sync_api").expect

FAST = {"ready_delay": 0.1, "player_interval": 0}
FRIEND_PASSWORD = "friend-password-1"


def _add_account(daemon: DashboardDaemon, username: str, flags: str = "") -> None:
    response = httpx.post(
        daemon.admin + "/accounts/",
        json={"username": username, "password": FRIEND_PASSWORD, "flags": flags},
        auth=("admin", ADMIN_PASSWORD),
        timeout=15,
    )
    response.raise_for_status()


def _shares(daemon: DashboardDaemon, token: str) -> list[tuple[str, list[str]]]:
    answer = daemon.api("/api/server_share_list", {"server": "game"}, token)
    return [(s["account"], s["rights"]) for s in answer["shares"]]


def _tabs(page: Any) -> list[str]:
    return [t.strip() for t in page.get_by_role("tab").all_inner_texts()]


def test_owner_shares_changes_and_revokes(dashboard: DashboardDaemon, make_page: Any) -> None:
    token = dashboard.token()
    dashboard.api(
        "/api/server_create", {"server": "game", "type": "demo-game", "settings": FAST}, token
    )
    _add_account(dashboard, "finn")
    page = make_page()
    open_logged_in(page, dashboard, "#/servers/game")
    page.get_by_role("tab", name="Sharing").click()
    panel = page.locator(".panel-sharing")
    expect(panel.get_by_text("Not shared with any account.")).to_be_visible()
    assert_accessible(page)

    # An unknown account: the daemon's reason, next to the form.
    panel.get_by_label("Account (username)").fill("nobody")
    panel.locator("#share-new-console").check()
    panel.get_by_role("button", name="Share", exact=True).click()
    expect(panel.locator("#share-error")).to_contain_text("no account named 'nobody'")
    expect(panel.get_by_label("Account (username)")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)

    # Shared with finn: console and files, by keyboard for the second box.
    panel.get_by_label("Account (username)").fill("finn")
    panel.locator("#share-new-files").focus()
    page.keyboard.press("Space")
    panel.get_by_role("button", name="Share", exact=True).click()
    row = panel.locator("tr[data-account=finn]")
    expect(row).to_be_visible()
    expect(row.get_by_label("Console for finn")).to_be_checked()
    expect(row.get_by_label("Files for finn")).to_be_checked()
    expect(row.get_by_label("Power for finn")).not_to_be_checked()
    expect(panel.locator("#share-error")).to_have_text("")
    assert _shares(dashboard, token) == [("finn", ["console", "files"])]
    assert_accessible(page)
    shot(page, "sharing-owner")

    # Changed: files off, power on.
    row.get_by_label("Files for finn").uncheck()
    row.get_by_label("Power for finn").check()
    row.get_by_role("button", name="Save the rights of finn").click()
    expect(page.locator(".toast").last).to_contain_text("finn has console, power on game.")
    assert _shares(dashboard, token) == [("finn", ["console", "power"])]

    # Revoked, after a confirmation.
    panel.locator("tr[data-account=finn]").get_by_role(
        "button", name="Revoke every right of finn"
    ).click()
    dialog = page.locator("dialog[open]")
    assert_accessible(page)
    dialog.get_by_role("button", name="Revoke").click()
    expect(panel.get_by_text("Not shared with any account.")).to_be_visible()
    assert _shares(dashboard, token) == []


def test_a_grantee_sees_only_what_its_rights_allow(
    dashboard: DashboardDaemon, make_page: Any
) -> None:
    token = dashboard.token()
    dashboard.api(
        "/api/server_create", {"server": "game", "type": "demo-game", "settings": FAST}, token
    )
    _add_account(dashboard, "finn")
    share = {"server": "game", "account": "finn"}
    dashboard.api("/api/server_share_set", {**share, "rights": ["console", "files"]}, token)

    page = make_page()
    open_logged_in(page, dashboard, "#/servers/game", username="finn", password=FRIEND_PASSWORD)
    expect(page.get_by_role("tab", name="Console")).to_be_visible()
    assert _tabs(page) == ["Console", "Logs", "Files", "Stats", "Backups"]
    expect(page.get_by_role("group", name="Power: game")).to_be_hidden()
    expect(page.get_by_role("button", name="Destroy server")).to_have_count(0)
    assert_accessible(page)
    shot(page, "sharing-grantee-console-files")

    # Power and settings instead: the buttons and the Settings tab, no Destroy.
    dashboard.api("/api/server_share_set", {**share, "rights": ["power", "settings"]}, token)
    page.reload()
    expect(page.get_by_role("tab", name="Settings")).to_be_visible()
    assert _tabs(page) == ["Settings"]
    expect(page.get_by_role("group", name="Power: game")).to_be_visible()
    expect(page.locator(".settings-box")).to_be_visible()
    expect(page.get_by_role("button", name="Destroy server")).to_have_count(0)
    assert_accessible(page)

    # Power alone: no tab list at all.
    dashboard.api("/api/server_share_set", {**share, "rights": ["power"]}, token)
    page.reload()
    expect(page.get_by_role("group", name="Power: game")).to_be_visible()
    expect(page.get_by_role("tablist")).to_be_hidden()
    assert_accessible(page)

    # Revoked: the server no longer exists for finn.
    dashboard.api("/api/server_share_set", {**share, "rights": []}, token)
    page.reload()
    expect(page.get_by_role("alert")).to_contain_text("There is no server named")

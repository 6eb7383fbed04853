"""The admin pages in a real browser: an ADMIN creates an account that then logs in in
another page (which has no Admin entry and is refused the admin URLs), locks it (its
page is logged out), resets its password and deletes it; bans an address and sees it
listed; filters the audit log and sees a new entry appear live (and held while
paused); manages a chat session. axe-core finds nothing on any page or dialog."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .axe import assert_accessible
from .conftest import ADMIN_PASSWORD, DashboardDaemon, open_logged_in, shot

expect = pytest.importorskip("playwright.sync_api").expect

FRIEND_PASSWORD = "friend-password-1"


def _log_in_as(page: Any, dashboard: DashboardDaemon, username: str, password: str) -> None:
    page.goto(dashboard.url)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/#/servers")
    page.locator("#conn-state[data-state=open]").wait_for()


def _rest_account(dashboard: DashboardDaemon, username: str) -> None:
    """An account made through the admin API (an audited ``admin`` entry)."""
    response = httpx.post(
        dashboard.admin + "/accounts/",
        json={"username": username, "password": FRIEND_PASSWORD},
        auth=("admin", ADMIN_PASSWORD),
        timeout=15,
    )
    response.raise_for_status()


def test_accounts_page(dashboard: DashboardDaemon, make_page: Any) -> None:
    admin = make_page(1280, 860)
    open_logged_in(admin, dashboard)
    nav = admin.get_by_role("link", name="Admin", exact=True)
    expect(nav).to_be_visible()
    nav.click()
    admin.wait_for_url("**/#/admin/accounts")
    expect(admin.get_by_role("heading", level=1)).to_have_text("Accounts")
    me = admin.locator("tr[data-account=admin]")
    expect(me).to_contain_text("(you)")
    expect(me).to_contain_text("ADMIN")
    expect(admin).to_have_title("Accounts · Admin — leosuite")
    assert_accessible(admin)

    admin.get_by_role("button", name="New account").click()
    dialog = admin.get_by_role("dialog", name="New account")
    expect(dialog).to_contain_text("At least 8 characters")
    dialog.get_by_label("Username").fill("friend")
    dialog.get_by_label("Password").fill("short")
    dialog.get_by_role("button", name="Create").click()
    password = dialog.get_by_label("Password")
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(dialog).to_contain_text("password must be at least 8 characters")
    assert_accessible(admin)
    shot(admin, "admin-accounts-create")
    password.fill(FRIEND_PASSWORD)
    dialog.get_by_label("HOST").check()
    dialog.get_by_role("button", name="Create").click()
    expect(dialog).to_be_hidden()
    friend_row = admin.locator("tr[data-account=friend]")
    expect(friend_row).to_contain_text("HOST")
    expect(friend_row).to_contain_text("Active")
    shot(admin, "admin-accounts")

    # The new account logs in in another page: no Admin entry, the admin URLs refused.
    friend = make_page(1280, 860)
    _log_in_as(friend, dashboard, "friend", FRIEND_PASSWORD)
    expect(friend.get_by_role("link", name="Admin", exact=True)).to_be_hidden()
    for section in ("accounts", "bans", "sessions", "log"):
        friend.goto(f"{dashboard.url}#/admin/{section}")
        expect(friend.get_by_role("heading", level=1)).to_have_text("Not allowed")
        expect(friend.get_by_role("alert")).to_contain_text("for ADMIN accounts only")
    assert_accessible(friend)
    shot(friend, "admin-not-allowed")

    # Flags: MOD added, HOST kept.
    friend_row.get_by_role("button", name="Change the flags of friend").click()
    flags = admin.get_by_role("dialog", name="Flags of friend")
    expect(flags.get_by_label("HOST")).to_be_checked()
    assert_accessible(admin)
    flags.get_by_label("MOD").check()
    flags.get_by_role("button", name="Save").click()
    expect(flags).to_be_hidden()
    expect(friend_row).to_contain_text("MOD")

    # Locking ends the friend's session at once.
    friend_row.get_by_role("button", name="Lock friend").click()
    admin.get_by_role("dialog").get_by_role("button", name="Lock").click()
    expect(friend_row).to_contain_text("Locked")
    friend.wait_for_url("**/#/login")
    expect(friend.get_by_text("account locked")).to_be_visible()

    friend_row.get_by_role("button", name="Unlock friend").click()
    expect(friend_row).to_contain_text("Active")
    friend_row.get_by_role("button", name="Reset the password of friend").click()
    reset = admin.get_by_role("dialog", name="New password for friend")
    expect(reset).to_contain_text("At least 8 characters (at most 1024).")
    assert_accessible(admin)
    reset.get_by_label("New password").fill("another-password-2")
    reset.get_by_role("button", name="Set password").click()
    expect(reset).to_be_hidden()
    _log_in_as(friend, dashboard, "friend", "another-password-2")

    # The last ADMIN cannot lock itself: the daemon's refusal is shown.
    me.get_by_role("button", name="Lock admin").click()
    admin.get_by_role("dialog").get_by_role("button", name="Lock").click()
    expect(admin.locator(".toast-error")).to_contain_text("last unlocked ADMIN")
    expect(me).to_contain_text("Active")

    friend_row.get_by_role("button", name="Delete friend").click()
    confirm = admin.get_by_role("dialog")
    expect(confirm).to_contain_text("Delete the account friend?")
    assert_accessible(admin)
    confirm.get_by_role("button", name="Delete").click()
    expect(friend_row).to_have_count(0)


def test_bans_page(dashboard: DashboardDaemon, make_page: Any) -> None:
    page = make_page(1280, 860)
    open_logged_in(page, dashboard, "#/admin/bans")
    expect(page.get_by_role("heading", level=1)).to_have_text("Bans")
    expect(page.get_by_role("status").filter(has_text="No bans in force")).to_be_visible()
    assert_accessible(page)

    address = page.get_by_label("Address or network")
    address.fill("10.0.0.0/33")
    page.get_by_role("button", name="Add ban").click()
    expect(address).to_have_attribute("aria-invalid", "true")
    error = page.locator("#ban-address-error")
    expect(error).to_have_text("the prefix is at most 32 for an IPv4 address")
    assert_accessible(page)

    address.fill("203.0.113.0/24")
    page.get_by_label("Reason").fill("spam from this network")
    page.get_by_role("button", name="Add ban").click()
    row = page.locator("tr[data-ban='203.0.113.0/24']")
    expect(row).to_contain_text("spam from this network")
    expect(row).to_contain_text("Never")
    expect(address).to_have_value("")
    shot(page, "admin-bans")
    assert_accessible(page)
    banned = httpx.get(dashboard.admin + "/banlist/", auth=("admin", ADMIN_PASSWORD), timeout=15)
    assert [b["ip"] for b in banned.json()] == ["203.0.113.0"]

    row.get_by_role("button", name="Remove the ban of 203.0.113.0/24").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove ban").click()
    expect(row).to_have_count(0)


def test_log_page_filters_and_live(dashboard: DashboardDaemon, make_page: Any) -> None:
    page = make_page(1280, 860)
    open_logged_in(page, dashboard, "#/admin/log")
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    rows = page.locator(".admin-table tbody tr")
    expect(rows.first).to_contain_text("login")
    assert_accessible(page)

    page.get_by_label("Topic").fill("admin")
    page.get_by_role("button", name="Apply filters").click()
    expect(rows.locator("td[colspan]")).to_have_text("No entry matches.")

    # Live: an account made elsewhere appears at once, and entries of other topics do not.
    _rest_account(dashboard, "livefirst")
    expect(rows.first).to_contain_text("account 'livefirst'")
    expect(rows).to_have_count(1)
    shot(page, "admin-log-live")
    assert_accessible(page)

    # Paused: held back and counted, shown on request.
    page.get_by_role("button", name="Pause live").click()
    expect(page.get_by_role("button", name="Resume live")).to_have_attribute("aria-pressed", "true")
    _rest_account(dashboard, "livesecond")
    held = page.get_by_role("button", name="1 new entry: show")
    expect(held).to_be_visible()
    expect(rows).to_have_count(1)
    held.click()
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("account 'livesecond'")

    # Text and level filters together; clearing shows everything again.
    page.get_by_label("Text").fill("LIVEFIRST")
    page.get_by_role("button", name="Apply filters").click()
    expect(rows).to_have_count(1)
    page.get_by_label("Level").select_option("error")
    page.get_by_role("button", name="Apply filters").click()
    expect(rows.locator("td[colspan]")).to_have_text("No entry matches.")
    page.get_by_role("button", name="Clear filters").click()
    expect(rows.filter(has_text="login")).not_to_have_count(0)
    assert_accessible(page)


def test_sessions_page(dashboard: DashboardDaemon, make_page: Any) -> None:
    chatter = make_page(1280, 860)
    open_logged_in(chatter, dashboard, "#/chat")
    chatter.get_by_label("Channel", exact=True).fill("lobby")
    chatter.get_by_role("button", name="Join", exact=True).click()
    expect(chatter.locator("#chat-text")).to_be_enabled(timeout=30_000)

    page = make_page(1280, 860)
    open_logged_in(page, dashboard, "#/admin/sessions")
    row = page.locator("tr[data-session=lobby]")
    expect(row).to_contain_text("#lobby")
    expect(row).to_contain_text("1")
    assert_accessible(page)

    row.get_by_role("button", name="Members of #lobby").click()
    members = page.get_by_role("dialog", name="Members of #lobby")
    expect(members).to_contain_text("admin")
    expect(members).to_contain_text("127.0.0.1")
    assert_accessible(page)
    members.get_by_role("button", name="Done").click()

    row.get_by_role("button", name="Send a message to #lobby").click()
    say = page.get_by_role("dialog", name="Message to #lobby")
    say.get_by_label("Message").fill("maintenance at noon")
    assert_accessible(page)
    say.get_by_role("button", name="Send").click()
    expect(chatter.get_by_text("maintenance at noon")).to_be_visible()

    row.get_by_role("button", name="Settings of #lobby").click()
    settings = page.get_by_role("dialog", name="Settings of #lobby")
    settings.get_by_label("Title").fill("The lobby")
    settings.get_by_label("Member limit").fill("0")
    settings.get_by_role("button", name="Save").click()
    expect(settings.get_by_label("Member limit")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)
    settings.get_by_label("Member limit").fill("20")
    settings.get_by_role("button", name="Save").click()
    expect(settings).to_be_hidden()
    expect(row).to_contain_text("The lobby")
    shot(page, "admin-sessions")

    row.get_by_role("button", name="Close #lobby").click()
    close = page.get_by_role("dialog", name="Close #lobby")
    close.get_by_label("Reason").fill("closing for the night")
    close.get_by_role("button", name="Close session").click()
    expect(row).to_have_count(0)
    expect(page.locator(".admin-page p[role=status]")).to_have_text("No session is open.")


def test_admin_pages_on_a_phone(dashboard: DashboardDaemon, make_page: Any) -> None:
    page = make_page(390, 844)
    open_logged_in(page, dashboard, "#/admin/accounts")
    for section, heading in (
        ("accounts", "Accounts"),
        ("bans", "Bans"),
        ("sessions", "Sessions"),
        ("log", "Audit log"),
    ):
        page.get_by_role("navigation", name="Admin sections").get_by_role(
            "link", name=heading
        ).click()
        page.wait_for_url(f"**/#/admin/{section}")
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        expect(page.locator(".admin-page")).not_to_contain_text("Loading")
        # Wide tables scroll inside their own box; the page itself never scrolls sideways.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert_accessible(page)
    shot(page, "admin-log-phone")

"""A channel opened in the chat page with a password keeps it: a second account (no
moderator) is refused without it and with a wrong one, and admitted with it; the
refusals shown go once the join works; axe-core finds nothing in any of these states;
after a daemon restart the page opens the channel again with its password."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from .axe import assert_accessible
from .conftest import (
    DashboardDaemon,
    free_ports,
    open_logged_in,
    start_dashboard_daemon,
    stop_dashboard_daemon,
)
from .test_chat_ui import _add_account, _connected, _join

expect = pytest.importorskip("playwright.sync_api").expect

CAROL_PASSWORD = "carol-password-1"
DAVE_PASSWORD = "dave-password-1"


def _join_with(page: Any, channel: str, password: str) -> None:
    page.get_by_label("Password", exact=True).fill(password)
    _join(page, channel)


def test_a_password_given_on_opening_protects_the_channel(
    dashboard: DashboardDaemon, make_page: Any
) -> None:
    _add_account(dashboard, "carol", CAROL_PASSWORD)
    _add_account(dashboard, "dave", DAVE_PASSWORD)
    carol = make_page(1280, 800)
    open_logged_in(carol, dashboard, "#/chat", username="carol", password=CAROL_PASSWORD)
    _connected(carol)
    _join_with(carol, "vault", "sesame-42")
    expect(carol.locator(".chat-title")).to_have_text("#vault")
    expect(carol.locator(".chat-locked")).to_be_visible()
    expect(carol.get_by_label("Password", exact=True)).to_have_value("")

    dave = make_page(1280, 800)
    open_logged_in(dave, dashboard, "#/chat", username="dave", password=DAVE_PASSWORD)
    _connected(dave)
    expect(dave.locator(".chat-open-item", has_text="#vault")).to_contain_text("password")
    # Without the password: the chat refuses, and the page says what to do.
    _join(dave, "vault")
    error = dave.locator(".chat-error")
    expect(error.locator("span")).to_have_text(
        "vault needs a password: type it in Password, then Join."
    )
    assert_accessible(dave)
    _join_with(dave, "vault", "sesame-43")
    expect(error).to_have_count(2)
    expect(dave.locator(".chat-title")).to_have_text("Chat")
    expect(carol.locator(".chat-users li")).to_have_text(["carol"])

    # With it: admitted, and the refusals before are gone.
    _join_with(dave, "vault", "sesame-42")
    expect(dave.locator(".chat-title")).to_have_text("#vault")
    expect(error).to_have_count(0)
    expect(dave.locator(".chat-users li")).to_have_text(["carol", "dave"])
    expect(carol.locator(".chat-log")).to_contain_text("dave joined")
    assert_accessible(dave)


def test_a_reopened_channel_keeps_its_password(browser: Any, tmp_path: Path) -> None:
    """After a daemon restart the page rejoins its channel, which is opened again with
    the password it was opened with: another account still needs it."""
    ports = free_ports(3)
    daemon = start_dashboard_daemon(tmp_path / "data", ports)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    page_errors: list[str] = []
    try:
        _add_account(daemon, "carol", CAROL_PASSWORD)
        _add_account(daemon, "dave", DAVE_PASSWORD)
        carol = context.new_page()
        carol.on("pageerror", lambda exc: page_errors.append(str(exc)))
        open_logged_in(carol, daemon, "#/chat", username="carol", password=CAROL_PASSWORD)
        _connected(carol)
        _join_with(carol, "vault", "sesame-42")
        expect(carol.locator(".chat-title")).to_have_text("#vault")

        stop_dashboard_daemon(daemon)
        state = carol.locator(".chat-state")
        expect(state).to_contain_text("Disconnected from the chat")
        daemon = start_dashboard_daemon(tmp_path / "data", ports)
        with contextlib.suppress(PlaywrightTimeoutError):  # the timer may win the race
            state.get_by_role("button", name="Reconnect now").click(timeout=3_000)
        expect(state).to_be_empty()
        expect(carol.locator(".chat-users li")).to_have_text(["carol"])
        vault = carol.locator(".chat-open-item", has_text="#vault")
        carol.get_by_role("button", name="Refresh").click()
        expect(vault).to_contain_text("password")

        dave = context.new_page()
        dave.on("pageerror", lambda exc: page_errors.append(str(exc)))
        open_logged_in(dave, daemon, "#/chat", username="dave", password=DAVE_PASSWORD)
        _connected(dave)
        _join(dave, "vault")
        expect(dave.locator(".chat-error span")).to_contain_text("vault needs a password")
        _join_with(dave, "vault", "sesame-42")
        expect(dave.locator(".chat-title")).to_have_text("#vault")
        expect(carol.locator(".chat-users li")).to_have_text(["carol", "dave"])
    finally:
        context.close()
        stop_dashboard_daemon(daemon)
    assert not page_errors, page_errors

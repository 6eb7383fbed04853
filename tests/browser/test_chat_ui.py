"""The chat view in a real browser: it says what it is (the community's chat, not a
game's); two accounts in one channel see each other's messages and the channel's
members (the token never in a URL); refusals (a bad channel name, the same account's
nick already connected) are shown; axe-core finds nothing in any of these states, on a
phone too."""

from __future__ import annotations

import os
import re
import signal
import time
from typing import Any

import httpx
import pytest

from .axe import assert_accessible
from .conftest import ADMIN_PASSWORD, DashboardDaemon, open_logged_in, shot

expect = pytest.importorskip("playwright.sync_api").expect

BOB_PASSWORD = "bob-password-1"
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def _add_account(daemon: DashboardDaemon, username: str, password: str) -> None:
    response = httpx.post(
        daemon.admin + "/accounts/",
        json={"username": username, "password": password},
        auth=("admin", ADMIN_PASSWORD),
        timeout=15,
    )
    response.raise_for_status()


def _wait_chat_gone(daemon: DashboardDaemon, channel: str) -> None:
    """Wait until the daemon has seen the last member of ``channel`` disconnect (a
    closed tab's socket ends a moment after the tab)."""
    while True:
        response = httpx.get(
            daemon.admin + "/sessions/", auth=("admin", ADMIN_PASSWORD), timeout=15
        )
        response.raise_for_status()
        if channel not in [s["alias"] for s in response.json()]:
            return
        time.sleep(0.1)


def _connected(page: Any) -> None:
    expect(page.locator(".chat-state")).to_be_empty()
    expect(page.locator("#chat-text")).to_be_disabled()  # nothing joined yet


def _join(page: Any, channel: str) -> None:
    page.get_by_label("Channel", exact=True).fill(channel)
    page.get_by_role("button", name="Join", exact=True).click()


def _send(page: Any, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")
    expect(box).to_have_value("")


def test_two_accounts_chat_in_one_channel(dashboard: DashboardDaemon, make_page: Any) -> None:
    _add_account(dashboard, "bob", BOB_PASSWORD)
    alice = make_page(1280, 800)
    sockets: list[str] = []
    alice.on("websocket", lambda ws: sockets.append(ws.url))
    open_logged_in(alice, dashboard, "#/chat")
    _connected(alice)
    heading = alice.get_by_role("heading", level=1)
    expect(heading).to_have_text("Community chat")
    expect(alice.locator(".chat-about")).to_contain_text("not a game server's in-game chat")
    assert_accessible(alice)  # nothing joined yet
    # the chat's token travels in Sec-WebSocket-Protocol, never in a URL
    assert [url for url in sockets if "/chat/login/admin" in url]
    assert not [url for url in sockets if "token" in url]
    _join(alice, "#lobby")
    expect(alice.locator(".chat-title")).to_have_text("#lobby")
    expect(alice.locator(".chat-users")).to_contain_text("admin")
    assert_accessible(alice)  # joined, no message yet
    _send(alice, "hello before bob")
    alice_log = alice.locator(".chat-log")
    expect(alice_log.locator(".chat-msg").last).to_contain_text("admin hello before bob")

    bob = make_page(1280, 800)
    open_logged_in(bob, dashboard, "#/chat", username="bob", password=BOB_PASSWORD)
    _connected(bob)
    # The open channels come from session.list; joining one replays its recent history.
    bob.get_by_role("button", name="Join #lobby").click()
    expect(bob.locator(".chat-title")).to_have_text("#lobby")
    bob_log = bob.locator(".chat-log")
    expect(bob_log).to_contain_text("hello before bob")
    expect(bob.locator(".chat-users li")).to_have_text(["admin", "bob"])
    expect(alice.locator(".chat-users")).to_contain_text("bob")
    expect(alice_log).to_contain_text("bob joined")
    assert_accessible(bob)  # history replayed, two members

    _send(alice, "hi bob <b>not bold</b>")
    message = bob_log.locator(".chat-msg", has_text="hi bob")
    expect(message.locator(".chat-nick")).to_have_text("admin")
    expect(message.locator(".chat-text")).to_have_text("hi bob <b>not bold</b>")
    expect(message.locator("time")).to_have_attribute("datetime", ISO_TIME)
    _send(bob, "hello admin")
    expect(
        alice_log.locator(".chat-msg", has_text="hello admin").locator(".chat-nick")
    ).to_have_text("bob")
    assert_accessible(alice)  # messages both ways

    # A refused action is shown: a channel name with a space.
    _join(alice, "bad name")
    expect(alice.locator(".chat-error")).to_contain_text("no spaces")
    assert_accessible(alice)  # an error shown
    alice.locator(".chat-error").get_by_role("button", name="Dismiss").click()
    expect(alice.locator(".chat-error")).to_have_count(0)
    shot(alice, "chat")

    # Leaving: the other side sees it and its member list shrinks.
    bob.get_by_role("button", name="Leave").click()
    expect(bob.locator(".chat-title")).to_have_text("Chat")
    expect(alice_log).to_contain_text("bob left")
    expect(alice.locator(".chat-users li")).to_have_text(["admin"])


def test_same_account_in_two_tabs_and_phone_width(
    dashboard: DashboardDaemon, make_page: Any
) -> None:
    first = make_page(1280, 800)
    open_logged_in(first, dashboard, "#/chat")
    _connected(first)
    _join(first, "lobby")
    expect(first.locator(".chat-title")).to_have_text("#lobby")

    phone = make_page(390, 844)
    open_logged_in(phone, dashboard, "#/chat")
    state = phone.locator(".chat-state")
    expect(state).to_contain_text("this account has the chat open in another tab")
    expect(phone.locator(".chat-error")).to_contain_text("taken")
    assert_accessible(phone)  # the login refused, at 390 px

    # Once the first tab has gone, trying again works.
    first.close()
    _wait_chat_gone(dashboard, "lobby")
    state.get_by_role("button", name="Try again").click()
    _connected(phone)
    phone.get_by_role("button", name="Join #lobby").click()
    _send(phone, "from the phone")
    expect(phone.locator(".chat-log")).to_contain_text("admin from the phone")
    expect(phone.locator(".chat-error")).to_have_count(0)  # the refusal before is stale
    assert_accessible(phone)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= phone.evaluate("document.documentElement.clientWidth")
    shot(phone, "chat-phone")


def test_a_join_clicked_before_the_chat_connects_is_sent_once_it_has(
    dashboard: DashboardDaemon, make_page: Any
) -> None:
    page = make_page(1280, 860)
    open_logged_in(page, dashboard, "#/chat")
    _connected(page)  # the chat's code is loaded
    page.evaluate("location.hash = '#/servers'")
    expect(page.locator(".chat-state")).to_have_count(0)
    # The daemon stopped: the chat's new socket is taken by the kernel and not answered.
    os.kill(dashboard.proc.pid, signal.SIGSTOP)
    try:
        page.evaluate("location.hash = '#/chat'")
        expect(page.locator(".chat-state")).not_to_be_empty()  # still connecting
        _join(page, "early")
        expect(page.locator("#chat-text")).to_be_disabled()
    finally:
        os.kill(dashboard.proc.pid, signal.SIGCONT)
    expect(page.locator("#chat-text")).to_be_enabled(timeout=30_000)
    expect(page.locator(".chat-title")).to_have_text("#early")

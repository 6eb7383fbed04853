"""The server page as a new user meets it: reached and used by keyboard alone, console
and command line in sight on a laptop and a phone, nothing live-looking while the
daemon is away, and a server that crashes at once reported as such."""

from __future__ import annotations

import contextlib
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    DashboardDaemon,
    free_ports,
    open_logged_in,
    shot,
    start_dashboard_daemon,
    stop_dashboard_daemon,
)

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

DEMO = {"ready_delay": 0.1, "player_interval": 0}
NONE = "\N{EN DASH}"  # what the page shows for a figure it does not know
# The focused element: the terminal's own text area, or what has the focus otherwise.
ACTIVE = """() => {
  const el = document.activeElement;
  if (el && el.closest('.console-screen')) return 'terminal';
  return el ? (el.id || el.className || el.tagName) : '';
}"""


def _demo_server(daemon: DashboardDaemon, name: str) -> None:
    token = daemon.token()
    daemon.api("/api/server_create", {"server": name, "type": "demo-game", "settings": DEMO}, token)
    daemon.api("/api/server_start", {"server": name}, token)


def _rows(page: Any) -> Any:
    return page.locator(".console .xterm-rows")


def test_keyboard_only_from_the_top_to_a_sent_command(
    dashboard: DashboardDaemon, make_page: Any
) -> None:
    _demo_server(dashboard, "world1")
    page = make_page(1280, 860)
    open_logged_in(page, dashboard, "#/servers/world1")
    expect(_rows(page)).to_contain_text("Server ready on port 25565")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")

    # Tab from the top of the page until the terminal has the focus.
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate(ACTIVE) == "terminal":
            break
    assert page.evaluate(ACTIVE) == "terminal"
    screen = page.locator(".console-screen")
    ring = screen.evaluate("el => getComputedStyle(el).outlineStyle")
    assert ring != "none", "the focused terminal shows no focus ring"
    shot(page, "walkthrough-terminal-focus")

    # Tab leaves it forward (to the command line), Shift+Tab comes back, Esc leaves too.
    page.keyboard.press("Tab")
    command = page.get_by_label("Command", exact=True)
    expect(command).to_be_focused()
    assert screen.evaluate("el => getComputedStyle(el).outlineStyle") == "none"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(ACTIVE) == "terminal"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(ACTIVE) != "terminal"
    page.keyboard.press("Tab")
    assert page.evaluate(ACTIVE) == "terminal"
    page.keyboard.press("Escape")
    expect(command).to_be_focused()

    page.keyboard.type("say typed by keyboard")
    page.keyboard.press("Enter")
    expect(_rows(page)).to_contain_text("[Server] typed by keyboard")
    expect(command).to_have_value("")
    expect(command).to_be_focused()


@pytest.mark.parametrize(("width", "height"), [(1280, 860), (390, 844)])
def test_console_and_command_line_fit_and_the_connection_state_stays(
    dashboard: DashboardDaemon, make_page: Any, width: int, height: int
) -> None:
    _demo_server(dashboard, "world1")
    page = make_page(width, height)
    open_logged_in(page, dashboard, "#/servers/world1")
    expect(_rows(page)).to_contain_text("Server ready on port 25565")
    assert page.evaluate("window.scrollY") == 0
    for part in (page.get_by_label("Command", exact=True), page.get_by_role("button", name="Send")):
        box = part.bounding_box()
        assert box is not None
        assert box["y"] >= 0, (part, box)
        assert box["y"] + box["height"] <= height, (part, box, height)
    screen = page.locator(".console-screen").bounding_box()
    assert screen is not None
    assert screen["height"] >= 180
    shot(page, f"walkthrough-fit-{width}")

    # A longer page scrolls; the top bar with the connection state stays in sight.
    page.get_by_role("tab", name="Settings").click()
    page.get_by_role("button", name="Save settings").wait_for()
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    assert page.evaluate("window.scrollY") > 0
    state = page.locator("#conn-state")
    expect(state).to_contain_text("Connected")
    expect(state).to_be_in_viewport(ratio=1)


def test_away_daemon_shows_unknown_state_and_disabled_actions(browser: Any, tmp_path: Path) -> None:
    ports = free_ports(3)
    daemon = start_dashboard_daemon(tmp_path / "data", ports)
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    try:
        _demo_server(daemon, "world1")
        open_logged_in(page, daemon, "#/servers/world1")
        badge = page.locator(".server-head .badge")
        expect(badge).to_have_attribute("data-state", "running")
        power = page.get_by_role("group", name="Power: world1")
        pid = page.locator(".server-details .fact", has_text="PID").locator("dd")
        expect(pid).to_have_text(re.compile(r"^\d+$"))

        stop_dashboard_daemon(daemon)
        expect(page.locator("#conn-state")).to_contain_text("Disconnected")
        expect(badge).to_have_text("unknown")
        expect(badge).to_have_attribute("data-state", "unknown")
        expect(page.locator(".server-away")).to_be_visible()
        expect(pid).to_have_text(NONE)
        uptime = page.locator(".server-details .fact", has_text="Uptime").locator("dd")
        expect(uptime).to_have_text(NONE)
        buttons = power.get_by_role("button")
        assert buttons.count() == 5
        for i in range(buttons.count()):
            expect(buttons.nth(i)).to_be_visible()
            expect(buttons.nth(i)).to_have_attribute("aria-disabled", "true")
            expect(buttons.nth(i)).to_be_disabled()
        # A disabled button keeps the focus and does nothing when pressed.
        stop = power.get_by_role("button", name="Stop", exact=True)
        stop.focus()
        page.keyboard.press("Enter")
        expect(stop).to_be_focused()
        expect(page.locator("#toasts")).to_be_empty()
        shot(page, "walkthrough-away")

        daemon = start_dashboard_daemon(tmp_path / "data", ports)
        with contextlib.suppress(sync_api.TimeoutError):
            page.locator("#conn-state").get_by_role("button", name="Retry now").click(timeout=3_000)
        expect(page.locator("#conn-state")).to_contain_text("Connected")
        expect(page.locator(".server-away")).to_be_hidden()
        expect(badge).not_to_have_attribute("data-state", "unknown")
        shown = power.locator("button:visible")
        expect(shown.first).to_be_visible()
        for i in range(shown.count()):
            expect(shown.nth(i)).not_to_have_attribute("aria-disabled", "true")
    finally:
        context.close()
        stop_dashboard_daemon(daemon)
    assert not page_errors, page_errors


@pytest.fixture
def slow_backoff(tmp_path: Path) -> Iterator[DashboardDaemon]:
    """The conftest daemon with a 5-minute restart backoff (the page is seen waiting)."""
    daemon = start_dashboard_daemon(
        tmp_path / "data",
        LEOSUITE_SERVERS_BACKOFF_INITIAL="300",
        LEOSUITE_SERVERS_BACKOFF_MAX="300",
    )
    try:
        yield daemon
    finally:
        stop_dashboard_daemon(daemon)


def test_server_that_crashes_at_once(slow_backoff: DashboardDaemon, browser: Any) -> None:
    daemon = slow_backoff
    token = daemon.token()
    command = shlex.join([sys.executable, "-c", "import sys; sys.exit(3)"])
    daemon.api(
        "/api/server_create",
        {
            "server": "crash1",
            "type": "command",
            "settings": {"command": command, "restart": "on-failure", "max_restarts": 5},
        },
        token,
    )
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    try:
        open_logged_in(page, daemon, "#/servers/crash1")
        power = page.get_by_role("group", name="Power: crash1")
        power.get_by_role("button", name="Start", exact=True).click()

        badge = page.locator(".server-head .badge")
        expect(badge).to_have_attribute("data-state", "backoff")
        toasts = page.locator("#toasts")
        expect(toasts).to_contain_text("crash1 started but crashed at once (exited with code 3)")
        expect(toasts).to_contain_text("attempt 1 of 5")
        assert "now running" not in toasts.inner_text()
        expect(toasts.locator(".toast-error")).to_have_count(1)

        # Exactly the daemon's actions (Force kill behind "More"); Start says it skips the wait.
        actions = daemon.api("/api/server_status", {"server": "crash1"}, token)["actions"]
        in_row = [a for a in actions if a != "force_kill"]
        shown = power.locator("button[data-action]:visible")
        expect(shown).to_have_count(len(in_row))
        assert [shown.nth(i).get_attribute("data-action") for i in range(len(in_row))] == in_row
        expect(power.get_by_role("button", name="More", exact=True)).to_be_visible()
        expect(power.get_by_role("button", name="Start now", exact=True)).to_be_visible()

        fact = page.locator(".server-details .fact")
        expect(fact.filter(has_text="Automatic restarts").locator("dd")).to_have_text("0")
        expect(fact.filter(has_text="Next restart").locator("dd")).to_have_text(
            re.compile(r"^in [45]m \d+s \(attempt 1 of 5\)$")
        )
        expect(fact.filter(has_text="Exit code").locator("dd")).to_have_text("3")
        shot(page, "walkthrough-crash-backoff")

        power.get_by_role("button", name="Stop", exact=True).click()
        expect(badge).to_have_attribute("data-state", "stopped")
        expect(toasts).to_contain_text("crash1 stopped")
        expect(fact.filter(has_text="Next restart")).to_be_hidden()
        expect(power.get_by_role("button", name="Start", exact=True)).to_be_visible()
    finally:
        context.close()
    assert not page_errors, page_errors

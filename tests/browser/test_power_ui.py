"""The power buttons offer exactly the actions the daemon lists: the ``actions`` of the
latest status answer or state event, never a table of the page's own; while the page
knows no ``actions`` every button is shown disabled. Force kill is offered behind "More"
unless it is the one action left (a server that is stopping)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
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

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

# Runs a moment, then fails: with restart = "on-failure" it waits in backoff (long
# enough for the test, see the daemon's environment below).
CRASHY = """\
description = "Fails a moment after it starts (browser tests)"
command = ["{python}", "-c", "import sys, time; time.sleep(0.3); sys.exit(3)"]
restart = "on-failure"
max_restarts = 5
"""

FAST = {"ready_delay": 0.1, "player_interval": 0}


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[DashboardDaemon]:
    """The conftest daemon with a ``crashy`` type and a 5-minute restart backoff."""
    data = tmp_path / "data"
    (data / "templates").mkdir(parents=True)
    (data / "templates" / "crashy.toml").write_text(CRASHY)
    daemon = start_dashboard_daemon(
        data, LEOSUITE_SERVERS_BACKOFF_INITIAL="300", LEOSUITE_SERVERS_BACKOFF_MAX="300"
    )
    try:
        yield daemon
    finally:
        stop_dashboard_daemon(daemon)


def api(daemon: DashboardDaemon, path: str, **body: Any) -> Any:
    return daemon.api(path, body, daemon.token())


def daemon_actions(daemon: DashboardDaemon, server: str) -> list[str]:
    """The ``actions`` of the daemon's HTTP status of ``server``."""
    actions = api(daemon, "/api/server_status", server=server)["actions"]
    assert isinstance(actions, list)
    return actions


def shown_actions(group: Any) -> list[str]:
    """The ``data-action`` of every power button shown in ``group``, in order."""
    return [
        str(a)
        for a in group.locator("button[data-action]:visible").evaluate_all(
            "(buttons) => buttons.map((b) => b.dataset.action)"
        )
    ]


def expect_actions(group: Any, actions: list[str]) -> None:
    """``group`` offers exactly ``actions``, each usable (waiting for the page to follow):
    in the row, but Force kill behind "More" when there is anything else."""
    in_row = actions if actions == ["force_kill"] else [a for a in actions if a != "force_kill"]
    more = group.locator("[data-more]")
    behind_more = in_row != actions
    # The group may still be rendering: wait until it shows as many buttons as expected.
    expect(group.locator("button:visible")).to_have_count(len(in_row) + behind_more)
    for button in group.locator("button[data-action]").all():
        action = button.get_attribute("data-action")
        if action in in_row:
            expect(button).to_be_visible()
            expect(button).not_to_have_attribute("aria-disabled", "true")
        else:
            expect(button).to_be_hidden()
    assert shown_actions(group) == in_row
    if not behind_more:
        expect(more).to_be_hidden()
        return
    more.click()
    expect(more).to_have_attribute("aria-expanded", "true")
    force = group.locator("[data-action=force_kill]")
    expect(force).to_be_visible()
    expect(force).not_to_have_attribute("aria-disabled", "true")
    more.click()
    expect(force).to_be_hidden()


def test_backoff_offers_what_the_daemon_says(dashboard: DashboardDaemon, make_page: Any) -> None:
    api(dashboard, "/api/server_create", server="crashy", type="crashy", settings={})
    page = make_page(1280, 800)
    open_logged_in(page, dashboard, "#/servers")
    card = page.locator(".server-card[data-server=crashy]")
    badge = card.locator(".badge")
    power = card.locator(".power")
    expect(badge).to_have_attribute("data-state", "stopped")
    expect_actions(power, daemon_actions(dashboard, "crashy"))

    card.get_by_role("button", name="Start", exact=True).click()
    expect(badge).to_have_attribute("data-state", "backoff", timeout=15_000)
    in_backoff = daemon_actions(dashboard, "crashy")
    # Backoff waits for an automatic restart: starting now and cancelling it both apply.
    assert {"start", "stop"} <= set(in_backoff)
    expect_actions(power, in_backoff)
    expect(card.locator(".card-note")).to_contain_text("Restarting automatically in")
    shot(page, "power-backoff")

    # The server page shows the same buttons.
    card.get_by_role("link", name="crashy").click()
    page_power = page.locator(".server-page .power")
    expect(page.locator(".badge[data-server=crashy]")).to_have_attribute("data-state", "backoff")
    expect_actions(page_power, in_backoff)

    # Stop cancels the pending restart; the buttons follow to what the daemon offers then.
    page_power.get_by_role("button", name="Stop", exact=True).click()
    expect(page.locator(".badge[data-server=crashy]")).to_have_attribute("data-state", "stopped")
    expect_actions(page_power, daemon_actions(dashboard, "crashy"))


class ApiFrames:
    """Sits between the page and the daemon's WebSocket API (not the chat) and passes
    every frame on, except that answers and events from the daemon go through
    ``rewrite`` first (``None`` drops the frame); records the call types sent."""

    def __init__(self, page: Any) -> None:
        self.rewrite: Callable[[dict[str, Any]], dict[str, Any] | None] = lambda msg: msg
        self.sent: list[str] = []
        page.route_web_socket(lambda url: "/chat/" not in url, self._route)

    def _route(self, ws: Any) -> None:
        server = ws.connect_to_server()
        ws.on_message(lambda message: self._up(server, message))
        server.on_message(lambda message: self._down(ws, message))

    def _up(self, server: Any, message: str | bytes) -> None:
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            self.sent.append(str(json.loads(message).get("type")))
        server.send(message)

    def _down(self, ws: Any, message: str | bytes) -> None:
        try:
            msg = json.loads(message)
        except (TypeError, ValueError):
            ws.send(message)
            return
        changed = self.rewrite(msg)
        if changed is not None:
            ws.send(json.dumps(changed))


def _statuses(msg: dict[str, Any]) -> list[dict[str, Any]]:
    """The server status objects in an answer (one, or the ``servers`` of a list)."""
    content = msg.get("content")
    if msg.get("type") != "server.status" or not isinstance(content, dict):
        return []
    servers = content.get("servers")
    return list(servers.values()) if isinstance(servers, dict) else [content]


def test_buttons_follow_actions_not_state(dashboard: DashboardDaemon, make_page: Any) -> None:
    api(dashboard, "/api/server_create", server="plain", type="demo-game", settings=FAST)
    page = make_page(1280, 800)
    frames = ApiFrames(page)

    # No actions known: every button is there, and none does anything.
    def without_actions(msg: dict[str, Any]) -> dict[str, Any]:
        for status in _statuses(msg):
            status.pop("actions", None)
        return msg

    frames.rewrite = without_actions
    open_logged_in(page, dashboard, "#/servers")
    power = page.locator(".server-card[data-server=plain] .power")
    expect(power.locator("button[data-action]")).to_have_count(5)
    for button in power.locator("button[data-action]").all():
        expect(button).to_be_visible()
        expect(button).to_have_attribute("aria-disabled", "true")
    # (Playwright refuses to click a disabled button; a keyboard user can press it.)
    power.get_by_role("button", name="Start", exact=True).focus()
    page.keyboard.press("Enter")
    # A call made after the click is answered: a start sent before it went first.
    page.evaluate("async () => (await import('/ui/js/main.js')).app.conn.call('server.list', {})")
    assert "server.list" in frames.sent
    assert "server.start" not in frames.sent
    assert api(dashboard, "/api/server_status", server="plain")["status"] == "stopped"

    # A daemon that offers only Kill for a stopped server gets only Kill.
    def only_kill(msg: dict[str, Any]) -> dict[str, Any]:
        for status in _statuses(msg):
            status["actions"] = ["kill"]
        return msg

    frames.rewrite = only_kill
    page.reload()
    page.locator("#conn-state[data-state=open]").wait_for()
    expect_actions(power, ["kill"])

    # State events carry the actions too: with every later status answer held back,
    # the buttons still follow a start made elsewhere.
    def events_only(msg: dict[str, Any]) -> dict[str, Any] | None:
        return None if msg.get("type") == "server.status" else msg

    frames.rewrite = events_only
    api(dashboard, "/api/server_start", server="plain")
    expect(page.locator(".badge[data-server=plain]")).to_have_attribute("data-state", "running")
    expect_actions(power, daemon_actions(dashboard, "plain"))
    assert "start" not in shown_actions(power)
    api(dashboard, "/api/server_stop", server="plain")

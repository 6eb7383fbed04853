"""The dashboard against hostile and odd input: markup and ``javascript:`` strings from
servers, types and users render as text and run nothing; bytes split across pushes;
fast navigation leaks no view or subscription; a dropped connection, a call in flight
while it drops, a daemon that no longer knows the token; a spent login challenge;
keyboard-only power actions; a 64-character name and a long account name on a phone."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import (
    ADMIN_PASSWORD,
    DashboardDaemon,
    free_ports,
    log_in,
    new_page,
    open_logged_in,
    shot,
    start_dashboard_daemon,
    stop_dashboard_daemon,
)

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
PlaywrightTimeout = sync_api.TimeoutError

XSS = "<img src=x onerror=alert(1)>"
JS_URL = "javascript:alert(2)"

# Markup, a javascript: string, an OSC 8 hyperlink to javascript:, bytes that are not
# UTF-8 and characters cut across writes (separate pushes when the page is watching),
# then every stdin line echoed back.
HOSTILE = rb"""
import sys, time
out = sys.stdout.buffer
def w(b):
    out.write(b)
    out.flush()
w(b"<img src=x onerror=alert(3)> <script>alert(4)</script>\n")
w(b"javascript:alert(5)\n")
w(b"\x1b]8;;javascript:alert(6)\x07CLICKME\x1b]8;;\x07\n")
w(b"bad:\xff\xfe|euro:\xe2\x82")
time.sleep(0.4)
w(b"\xac|after\n")
w(b"split:\xc3")
time.sleep(0.4)
w(b"\xa9 end\n")
w(b"READY\n")
for line in sys.stdin.buffer:
    w(b"echo:" + line)
"""

HOSTILE_TYPE = """\
description = "<img src=x onerror=alert(7)> javascript:alert(8)"
command = ["{{python}}", "-u", "{script}"]
stop_signal = "SIGTERM"
stop_timeout = 5.0
ready_pattern = 'READY'
"""

FAST = {"ready_delay": 0.1, "player_interval": 0}


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[DashboardDaemon]:
    """The conftest daemon with a ``hostile`` type (markup in its description, a console
    full of odd bytes)."""
    data = tmp_path / "data"
    (data / "templates").mkdir(parents=True)
    script = tmp_path / "hostile.py"
    script.write_bytes(HOSTILE)
    (data / "templates" / "hostile.toml").write_text(HOSTILE_TYPE.format(script=script))
    daemon = start_dashboard_daemon(data)
    try:
        yield daemon
    finally:
        stop_dashboard_daemon(daemon)


def api(daemon: DashboardDaemon, path: str, **body: Any) -> Any:
    return daemon.api(path, body, daemon.token())


def no_dialogs(page: Any) -> list[str]:
    """Record (and dismiss) every alert/confirm/prompt the page opens."""
    seen: list[str] = []

    def on_dialog(dialog: Any) -> None:
        seen.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.context.on("page", lambda p: seen.append(f"new page: {p.url}"))
    return seen


def ws_frames(page: Any) -> dict[str, list[dict[str, Any]]]:
    """Every JSON frame the page sends and receives on its WebSocket API connection."""
    frames: dict[str, list[dict[str, Any]]] = {"sent": [], "received": []}

    def parse(kind: str, payload: Any) -> None:
        with contextlib.suppress(TypeError, ValueError):
            frames[kind].append(json.loads(payload))

    def on_ws(ws: Any) -> None:
        if "/chat/" in ws.url:
            return
        ws.on("framesent", lambda payload: parse("sent", payload))
        ws.on("framereceived", lambda payload: parse("received", payload))

    page.on("websocket", on_ws)
    return frames


def sent_types(frames: dict[str, list[dict[str, Any]]], type_: str) -> int:
    return sum(1 for f in frames["sent"] if f.get("type") == type_)


def retry_now(button: Any) -> None:
    """Press a "retry now" button, unless the automatic retry got there first (then the
    button is gone)."""
    with contextlib.suppress(PlaywrightTimeout):
        button.click(timeout=3_000)


def rows(page: Any) -> Any:
    return page.locator(".console .xterm-rows")


def assert_fits(page: Any) -> None:
    sizes = page.evaluate(
        """() => {
          const doc = document.documentElement;
          const right = Math.max(0, ...[...document.querySelectorAll('body *')]
            .filter((e) => !e.closest('.xterm') && e.getClientRects().length)
            .map((e) => e.getBoundingClientRect().right));
          return {scroll: doc.scrollWidth, client: doc.clientWidth, right};
        }"""
    )
    assert sizes["scroll"] <= sizes["client"], sizes
    assert sizes["right"] <= sizes["client"] + 0.5, sizes


def test_markup_from_servers_types_and_users_is_text(
    dashboard: DashboardDaemon, make_page: Any
) -> None:
    api(dashboard, "/api/server_create", server="evil", type="hostile", settings={})
    page = make_page(1280, 900)
    dialogs = no_dialogs(page)
    open_logged_in(page, dashboard, "#/servers/evil")
    expect(page.locator(".badge[data-server=evil]")).to_have_attribute("data-state", "stopped")
    # The type's description is text.
    expect(page.locator(".server-type")).to_contain_text(
        "<img src=x onerror=alert(7)> javascript:alert(8)"
    )
    # Watching before it starts: the odd bytes arrive in several pushes.
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page.locator(".badge[data-server=evil]")).to_have_attribute("data-state", "running")
    out = rows(page)
    expect(out).to_contain_text("<img src=x onerror=alert(3)> <script>alert(4)</script>")
    expect(out).to_contain_text("javascript:alert(5)")
    expect(out).to_contain_text("bad:\ufffd\ufffd|euro:\u20ac|after")
    expect(out).to_contain_text("split:\u00e9 end")
    expect(out).to_contain_text("READY")
    # An OSC 8 link to javascript: is not a link; clicking its text does nothing.
    # (xterm's screen layer takes the pointer, as for a person clicking there)
    page.locator(".console .xterm-rows span", has_text="CLICKME").first.click(force=True)

    command = page.get_by_label("Command", exact=True)
    command.fill(f"say {XSS} {JS_URL}")
    command.press("Enter")
    expect(out).to_contain_text(f"echo:say {XSS} {JS_URL}")
    command.fill("multi \u00e9\u20ac\U0001f600 bytes")
    command.press("Enter")
    expect(out).to_contain_text("echo:multi \u00e9\u20ac\U0001f600 bytes")

    # The create form: a hostile name comes back in the API's error, as text.
    page.goto(dashboard.url + "#/new")
    page.get_by_label("hostile", exact=True).check()
    page.get_by_label("Name").fill(XSS)
    page.get_by_role("button", name="Create server").click()
    expect(page.locator("[data-field=server] .field-error")).to_be_visible()
    expect(page.locator(".type-desc").filter(has_text="onerror=alert(7)")).to_be_visible()

    # Chat: a message with markup and a javascript: string.
    page.goto(dashboard.url + "#/chat")
    expect(page.locator(".chat-state")).to_be_empty()
    page.get_by_label("Channel", exact=True).fill("#lobby")
    page.get_by_role("button", name="Join", exact=True).click()
    box = page.get_by_label("Message", exact=True)
    expect(box).to_be_enabled()
    box.fill(f"{XSS} {JS_URL} <a href='{JS_URL}'>x</a>")
    box.press("Enter")
    last = page.locator(".chat-log .chat-msg").last
    expect(last).to_contain_text(f"{XSS} {JS_URL} <a href='{JS_URL}'>x</a>")
    assert page.locator("#view img, #view script, .chat-log a").count() == 0
    shot(page, "hostile-chat")
    assert not dialogs, dialogs


def _wait_routes_settled(page: Any, frames: dict[str, list[dict[str, Any]]]) -> None:
    """Every console.subscribe sent has its console.unsubscribe (nothing is left
    subscribed when no console is shown)."""
    page.wait_for_function("() => !document.querySelector('.console')")
    for _ in range(100):
        if sent_types(frames, "console.subscribe") == sent_types(frames, "console.unsubscribe"):
            return
        page.wait_for_timeout(50)
    raise AssertionError(
        f"{sent_types(frames, 'console.subscribe')} console.subscribe, "
        f"{sent_types(frames, 'console.unsubscribe')} console.unsubscribe"
    )


def test_fast_navigation_leaks_nothing(dashboard: DashboardDaemon, make_page: Any) -> None:
    api(dashboard, "/api/server_create", server="nav1", type="demo-game", settings=FAST)
    api(dashboard, "/api/server_start", server="nav1")
    page = make_page(1280, 800)
    frames = ws_frames(page)
    open_logged_in(page, dashboard, "#/servers")
    expect(page.locator(".badge[data-server=nav1]")).to_have_attribute("data-state", "running")

    # Leave every page before its first answers are in; end on the chat.
    page.evaluate(
        """async () => {
          const hashes = ['#/servers/nav1', '#/new', '#/servers/nav1', '#/servers',
                          '#/servers/nav1', '#/chat', '#/servers/nav1', '#/new',
                          '#/servers/nav1', '#/chat'];
          for (const hash of hashes) {
            location.hash = hash;
            await new Promise((resolve) => setTimeout(resolve, 0));
          }
        }"""
    )
    expect(page.locator(".chat")).to_be_visible()
    expect(page.locator(".chat-state")).to_be_empty()  # one chat login, not refused
    _wait_routes_settled(page, frames)
    # Nothing late from an earlier page wrote into this one.
    expect(page.locator("#view .server-page, #view .servers-page, #view .form-page")).to_have_count(
        0
    )
    expect(page.locator("#view .chat")).to_have_count(1)
    expect(page.locator("[data-nav=chat]")).to_have_attribute("aria-current", "")

    # The live hub subscribed once for the connection's life.
    assert sent_types(frames, "events.subscribe") == 1
    assert sent_types(frames, "stats.subscribe") == 1

    # The console still works, and its subscription is the only one (no "subscribing
    # twice" refusal from a subscription a left page kept).
    page.goto(dashboard.url + "#/servers/nav1")
    command = page.get_by_label("Command", exact=True)
    command.fill("say after the rush")
    command.press("Enter")
    expect(rows(page)).to_contain_text("[Server] after the rush")
    refused = [
        f
        for f in frames["received"]
        if f.get("type") == "console.subscribe" and f.get("status_code") not in (0, None)
    ]
    assert not refused, refused
    assert sent_types(frames, "console.subscribe") == sent_types(frames, "console.unsubscribe") + 1
    api(dashboard, "/api/server_stop", server="nav1")


class LoseTheFirstStart:
    """Sits between the page and the daemon's WebSocket API and drops the connection
    with the first ``server.start`` call: before the call reaches the daemon
    (``lost="request"``) or after the daemon carried it out, before its answer reaches
    the page (``lost="answer"``); every other frame passes unchanged."""

    def __init__(self, page: Any, lost: str) -> None:
        self.lost = lost
        self.uuid = ""
        self.dropped = False
        page.route_web_socket(lambda url: "/chat/" not in url, self._route)

    def _route(self, ws: Any) -> None:
        server = ws.connect_to_server()
        ws.on_message(lambda message: self._up(ws, server, message))
        server.on_message(lambda message: self._down(ws, server, message))

    def _drop(self, ws: Any, server: Any) -> None:
        self.dropped = True
        ws.close(code=1001, reason="dropped by the test")
        server.close()

    def _up(self, ws: Any, server: Any, message: str | bytes) -> None:
        if not self.uuid and '"server.start"' in str(message):
            self.uuid = json.loads(message)["uuid"]
            if self.lost == "request":
                self._drop(ws, server)
                return
        server.send(message)

    def _down(self, ws: Any, server: Any, message: str | bytes) -> None:
        if self.lost == "answer" and not self.dropped and self.uuid and self.uuid in str(message):
            self._drop(ws, server)
            return
        ws.send(message)


@pytest.mark.parametrize("lost", ["request", "answer"])
def test_call_in_flight_when_the_connection_drops(
    dashboard: DashboardDaemon, make_page: Any, lost: str
) -> None:
    api(dashboard, "/api/server_create", server="drop", type="demo-game", settings=FAST)
    page = make_page(1280, 800)
    route = LoseTheFirstStart(page, lost)
    open_logged_in(page, dashboard, "#/servers")
    card = page.locator(".server-card[data-server=drop]")
    badge = card.locator(".badge")
    expect(badge).to_have_attribute("data-state", "stopped")
    # The connection drops with the start in flight: the page cannot know whether the
    # daemon carried it out, says so, and keeps working once the connection is back.
    card.get_by_role("button", name="Start", exact=True).click()
    error = page.locator(".toast-error")
    expect(error).to_contain_text("Start drop failed")
    expect(error).to_contain_text("may have been carried out")
    assert route.dropped
    page.locator("#conn-state[data-state=open]").wait_for()
    if lost == "request":
        assert api(dashboard, "/api/server_status", server="drop")["status"] == "stopped"
        expect(badge).to_have_attribute("data-state", "stopped")
        card.get_by_role("button", name="Start", exact=True).click()
    expect(badge).to_have_attribute("data-state", "running")
    # A call made while reconnecting waits for the connection and then runs.
    page.evaluate("async () => (await import('/ui/js/main.js')).app.conn.socket.ws.close()")
    page.locator("#conn-state[data-state=reconnecting]").wait_for()
    card.get_by_role("button", name="Stop", exact=True).click()
    expect(badge).to_have_attribute("data-state", "stopped", timeout=20_000)
    expect(page.locator(".toast", has_text="drop stopped")).to_be_visible()


def test_token_refused_after_a_daemon_restart(browser: Any, tmp_path: Path) -> None:
    """The daemon comes back on the same ports without the page's token (another data
    directory): the page asks for a login again, with a message, and logging in works."""
    ports = free_ports(3)
    daemon = start_dashboard_daemon(tmp_path / "one", ports)
    context, page = new_page(browser, daemon, timeout_ms=20_000)
    problems = page.problems
    problems.expect("ERR_CONNECTION_REFUSED")
    problems.expect("Failed to fetch dynamically imported module")
    try:
        open_logged_in(page, daemon, "#/new")
        expect(page.get_by_label("demo-game", exact=True)).to_be_visible()
        page.goto(daemon.url + "#/servers")
        expect(page.get_by_text("No servers yet.")).to_be_visible()
        stop_dashboard_daemon(daemon)
        state = page.locator("#conn-state")
        expect(state).to_contain_text("Disconnected, retrying in")
        # A page whose code cannot be fetched now says so ...
        page.evaluate("location.hash = '#/chat'")
        expect(page.get_by_text("This page failed to load")).to_be_visible()
        # ... and one that needs the connection waits for it.
        page.evaluate("location.hash = '#/new'")
        expect(page.get_by_text("Loading…")).to_be_visible()
        daemon = start_dashboard_daemon(tmp_path / "two", ports)
        retry_now(state.get_by_role("button", name="Retry now"))
        page.wait_for_url("**/#/login", timeout=45_000)
        expect(page.get_by_role("status").filter(has_text="Your session has ended")).to_be_visible()
        shot(page, "session-refused-after-restart")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/#/servers")
        expect(page.get_by_text("No servers yet.")).to_be_visible()
        # The chat's code loads now (a failed fetch is not remembered).
        page.get_by_role("link", name="Chat").click()
        expect(page.locator(".chat")).to_be_visible()
        expect(page.locator(".chat-state")).to_be_empty()
        problems.check()
    finally:
        context.close()
        stop_dashboard_daemon(daemon)


def test_chat_comes_back_after_a_daemon_restart(browser: Any, tmp_path: Path) -> None:
    ports = free_ports(3)
    daemon = start_dashboard_daemon(tmp_path / "data", ports)
    context, page = new_page(browser, daemon, timeout_ms=20_000)
    problems = page.problems
    problems.expect("ERR_CONNECTION_REFUSED")
    try:
        open_logged_in(page, daemon, "#/chat")
        expect(page.locator(".chat-state")).to_be_empty()
        page.get_by_label("Channel", exact=True).fill("#lobby")
        page.get_by_role("button", name="Join", exact=True).click()
        box = page.get_by_label("Message", exact=True)
        box.fill("before the restart")
        box.press("Enter")
        expect(page.locator(".chat-log")).to_contain_text("before the restart")
        box.fill("typed")
        stop_dashboard_daemon(daemon)
        expect(page.locator(".chat-state")).to_contain_text("Disconnected from the chat")
        # What was typed stays in the box, which can still be edited.
        expect(box).to_have_value("typed")
        expect(page.locator(".chat-send").get_by_role("button", name="Send")).to_be_disabled()
        box.press("End")
        box.type(" while down")
        daemon = start_dashboard_daemon(tmp_path / "data", ports)
        retry_now(page.locator(".chat-state").get_by_role("button", name="Reconnect now"))
        expect(page.locator(".chat-state")).to_be_empty(timeout=45_000)
        expect(page.locator(".chat-title")).to_have_text("#lobby")
        expect(box).to_have_value("typed while down")
        expect(box).to_be_enabled()
        box.press("Enter")
        expect(page.locator(".chat-log .chat-msg").last).to_contain_text("typed while down")
        problems.check()
    finally:
        context.close()
        stop_dashboard_daemon(daemon)


def test_spent_login_challenge_is_explained(dashboard: DashboardDaemon, make_page: Any) -> None:
    page = make_page(1280, 800)
    page.problems.expect("403")
    first: list[str] = []

    def same_challenge(route: Any) -> None:
        # The first challenge, again: spent by the first attempt.
        if not first:
            first.append(route.fetch().text())
        route.fulfill(status=200, content_type="application/json", body=first[0])

    page.route("**/api/auth/login_info*", same_challenge)
    page.goto(dashboard.url)
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Login failed")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(alert).to_contain_text("login challenge")
    expect(alert).to_contain_text("try again")
    expect(page.get_by_role("button", name="Log in")).to_be_enabled()
    expect(page.get_by_label("Password")).to_be_focused()
    shot(page, "login-spent-challenge")
    page.unroute("**/api/auth/login_info*")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/#/servers")


def _focused_button(page: Any) -> str:
    return str(
        page.evaluate(
            """() => {
              const el = document.activeElement;
              return el && el.closest('.power') && !el.hidden ? el.dataset.action : '';
            }"""
        )
    )


def test_power_buttons_keyboard_only(dashboard: DashboardDaemon, make_page: Any) -> None:
    api(dashboard, "/api/server_create", server="keys", type="demo-game", settings=FAST)
    page = make_page(1280, 800)
    open_logged_in(page, dashboard, "#/servers/keys")
    badge = page.locator(".badge[data-server=keys]")
    expect(badge).to_have_attribute("data-state", "stopped")
    page.get_by_role("link", name="All servers").focus()
    for _ in range(10):
        if _focused_button(page) == "start":
            break
        page.keyboard.press("Tab")
    assert _focused_button(page) == "start"
    page.keyboard.press("Enter")
    expect(badge).to_have_attribute("data-state", "running")
    expect(page.locator(".toast", has_text="keys started")).to_be_visible()
    # Start went away: the focus stays in the group, on a button that is there.
    expect(page.locator(".power button:focus")).to_be_visible()
    expect(page.locator(".power [data-action=stop]")).to_be_focused()

    page.keyboard.press("Space")
    expect(badge).to_have_attribute("data-state", "stopped", timeout=15_000)
    expect(page.locator(".power button:focus")).to_be_visible()
    expect(page.locator(".power [data-action=start]")).to_be_focused()

    # A confirmation by keyboard: Escape cancels and gives the focus back.
    page.keyboard.press("Enter")
    expect(badge).to_have_attribute("data-state", "running")
    # Force kill is behind "More": opened by keyboard, it is the next stop of Tab.
    more = page.locator(".power [data-more]")
    more.focus()
    page.keyboard.press("Enter")
    expect(more).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Tab")
    force = page.locator(".power [data-action=force_kill]")
    expect(force).to_be_focused()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Force kill")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(force).to_be_focused()
    expect(badge).to_have_attribute("data-state", "running")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")  # the dialog's default: Force kill
    expect(badge).to_have_attribute("data-state", re.compile("stopped|crashed"), timeout=15_000)
    expect(page.locator(".power button:focus")).to_be_visible()


def test_long_names_at_phone_width(dashboard: DashboardDaemon, make_page: Any) -> None:
    name = "n" + "x" * 62 + "9"
    assert len(name) == 64
    api(dashboard, "/api/server_create", server=name, type="demo-game", settings=FAST)
    user = "u" * 32
    response = httpx.post(
        dashboard.admin + "/accounts/",
        json={"username": user, "password": "long-name-password", "flags": "ADMIN"},
        auth=("admin", ADMIN_PASSWORD),
        timeout=15,
    )
    response.raise_for_status()
    page = make_page(390, 844)
    open_logged_in(page, dashboard, "#/servers", username=user, password="long-name-password")
    card = page.locator(f".server-card[data-server={name}]")
    expect(card).to_be_visible()
    assert_fits(page)
    card.get_by_role("button", name="Start", exact=True).click()
    expect(card.locator(".badge")).to_have_attribute("data-state", "running")
    expect(page.locator(".toast", has_text=f"{name} started")).to_be_visible()
    assert_fits(page)
    shot(page, "long-names-phone-list")

    card.get_by_role("link", name=name).click()
    expect(rows(page)).to_contain_text("Server ready")
    assert_fits(page)
    shot(page, "long-names-phone-console")
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.locator(f".badge[data-server={name}]")).to_have_attribute(
        "data-state", "stopped", timeout=15_000
    )

    # The top bar while the connection is down.
    page.evaluate("async () => (await import('/ui/js/main.js')).app.conn.socket.ws.close()")
    page.locator("#conn-state[data-state=reconnecting]").wait_for()
    assert_fits(page)
    page.locator("#conn-state[data-state=open]").wait_for()


def test_log_in_then_out_by_keyboard(dashboard: DashboardDaemon, make_page: Any) -> None:
    page = make_page(1280, 800)
    log_in(page, dashboard)
    page.get_by_role("button", name="Log out").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/#/login")
    expect(page.get_by_label("Username")).to_be_focused()
    expect(page.get_by_role("status").filter(has_text="You have logged out")).to_be_visible()

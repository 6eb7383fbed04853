"""The server console in a real browser: live output, commands and history, bytes that
are not UTF-8, older output paged in at the top, the overrun notice, phone width."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    DashboardDaemon,
    new_page,
    open_logged_in,
    shot,
    start_dashboard_daemon,
    stop_dashboard_daemon,
)

expect = pytest.importorskip("playwright.sync_api").expect

# 120 lines of about 1 KiB each (escape sequences pad them: one screen row per line),
# then bytes that are not UTF-8 with colours, then a line that must still render.
PROGRAM = r"""
import sys, time
out = sys.stdout.buffer
for i in range(1, 121):
    out.write(b"row %06d " % i + b"\x1b[0m" * 250 + b"\n")
out.write(b"bad \xff\xfe\x80 \x1b[31mred\x1b[0m after\n")
out.write(b"still rendering\n")
out.flush()
while True:
    time.sleep(3600)
"""


def _command_server(daemon: DashboardDaemon, tmp_path: Path, name: str, program: str) -> None:
    script = tmp_path / f"{name}.py"
    script.write_text(program)
    command = f"{shlex.quote(sys.executable)} -u {shlex.quote(str(script))}"
    token = daemon.token()
    daemon.api(
        "/api/server_create",
        {"server": name, "type": "command", "settings": {"command": command}},
        token,
    )
    daemon.api("/api/server_start", {"server": name}, token)


def _rows(page: Any) -> Any:
    return page.locator(".console .xterm-rows")


def _no_horizontal_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.evaluate("document.documentElement.clientWidth")
    assert width <= viewport, f"horizontal scroll: {width} > {viewport}"


def test_demo_game_console_commands_and_history(dashboard: DashboardDaemon, make_page: Any) -> None:
    token = dashboard.token()
    dashboard.api(
        "/api/server_create",
        {
            "server": "world1",
            "type": "demo-game",
            "settings": {"ready_delay": 0.2, "player_interval": 0},
        },
        token,
    )
    dashboard.api("/api/server_start", {"server": "world1"}, token)
    page = make_page(1280, 800)
    open_logged_in(page, dashboard, "#/servers/world1")
    rows = _rows(page)
    expect(rows).to_contain_text("Server ready on port 25565")

    command = page.locator(".console-input")
    expect(page.get_by_label("Command", exact=True)).to_have_count(1)
    command.fill("say hello")
    command.press("Enter")
    expect(rows).to_contain_text("[Server] hello")
    expect(command).to_have_value("")
    command.fill("list")
    command.press("Enter")
    expect(rows).to_contain_text("There are 0 of a max of 20 players online")

    # History: ArrowUp brings back the last commands, ArrowDown returns to the draft.
    command.fill("sa")
    command.press("ArrowUp")
    expect(command).to_have_value("list")
    command.press("ArrowUp")
    expect(command).to_have_value("say hello")
    command.press("ArrowDown")
    command.press("ArrowDown")
    expect(command).to_have_value("sa")
    # ... and it survives a reload (sessionStorage, per server).
    page.reload()
    expect(_rows(page)).to_contain_text("[Server] hello")
    command = page.locator(".console-input")
    command.press("ArrowUp")
    expect(command).to_have_value("list")

    # Leaving the page and coming back subscribes again (the old subscription ended).
    page.get_by_role("link", name="All servers").click()
    page.wait_for_url("**/#/servers")
    page.go_back()
    expect(_rows(page)).to_contain_text("[Server] hello")
    expect(page.locator(".console-notices")).to_be_empty()

    # A dropped WebSocket: the connection comes back and the console resumes where it
    # was, without repeating what was shown.
    page.evaluate("async () => (await import('/ui/js/main.js')).app.conn.socket.ws.close()")
    page.locator("#conn-state[data-state=reconnecting]").wait_for()
    page.locator("#conn-state[data-state=open]").wait_for()
    command = page.locator(".console-input")
    command.fill("say after the reconnect")
    command.press("Enter")
    expect(_rows(page)).to_contain_text("[Server] after the reconnect")
    assert _rows(page).inner_text().count("[Server] hello") == 1

    follow = page.get_by_role("button", name="Following")
    expect(follow).to_have_attribute("aria-pressed", "true")
    shot(page, "console")

    # A command to a stopped server is refused, and the refusal is shown next to it.
    dashboard.api("/api/server_stop", {"server": "world1"}, token)
    expect(_rows(page)).to_contain_text("[leosuite] exited")
    command.fill("say anyone?")
    command.press("Enter")
    expect(page.locator(".console-cmd-error")).to_contain_text("Not sent")
    expect(command).to_have_value("say anyone?")


def test_bytes_older_output_following_and_phone(
    dashboard: DashboardDaemon, make_page: Any, tmp_path: Path
) -> None:
    _command_server(dashboard, tmp_path, "bytes", PROGRAM)
    page = make_page(1280, 800)
    open_logged_in(page, dashboard, "#/servers/bytes")
    rows = _rows(page)
    # Bytes that are not UTF-8 show as U+FFFD and what follows them still renders.
    expect(rows).to_contain_text("still rendering")
    expect(rows).to_contain_text("bad \ufffd\ufffd\ufffd red after")
    red = page.locator(".console .xterm-rows span", has_text="red").first
    assert "xterm-fg-1" in (red.get_attribute("class") or "")
    # The first mount shows the last 64 KiB: the first rows are not there yet.
    older = page.get_by_role("button", name="Load older output")
    expect(older).to_be_enabled()
    expect(rows).not_to_contain_text("row 000001")

    # Scrolling up stops following; at the top, older output is loaded in, until the
    # start of the log.
    page.locator(".console-screen").hover()
    for _ in range(200):
        page.mouse.wheel(0, -2000)
        if "row 000001" in rows.inner_text():
            break
    expect(rows).to_contain_text("row 000001 ")
    expect(page.locator(".console-older-state")).to_have_text("Start of the console log.")
    expect(older).to_be_disabled()
    follow = page.locator(".console-follow")
    expect(follow).to_have_attribute("aria-pressed", "false")
    expect(rows).not_to_contain_text("still rendering")
    # Turning following on jumps to the end.
    follow.click()
    expect(follow).to_have_attribute("aria-pressed", "true")
    expect(rows).to_contain_text("still rendering")

    phone = make_page(390, 844)
    open_logged_in(phone, dashboard, "#/servers/bytes")
    expect(_rows(phone)).to_contain_text("still rendering")
    expect(phone.locator(".console-input")).to_be_visible()
    _no_horizontal_scroll(phone)
    box = phone.locator(".console-screen").bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 390
    shot(phone, "console-phone")


def test_overrun_notice(browser: Any, tmp_path: Path) -> None:
    """A subscriber further behind than ws.console_max_lag is skipped ahead by the daemon
    (console_overrun): here the dashboard's own 64 KiB backlog is more than a 4 KiB lag."""
    daemon = start_dashboard_daemon(
        tmp_path / "d",
        LEOSUITE_WS_CONSOLE_MAX_LAG="4096",
        LEOSUITE_WS_CONSOLE_BATCH_BYTES="1024",
    )
    context = None
    try:
        line = "flood 0123456789 abcdefghijklmnopqrstuvwxyz\\n"
        flood = f'import sys, time\nsys.stdout.write("{line}" * 3000 + "after flood\\n")\n'
        _command_server(daemon, tmp_path, "fast", flood + "sys.stdout.flush()\ntime.sleep(3600)\n")
        # Tall enough that the marker and the lines after it fit the terminal's rows.
        context, page = new_page(browser, daemon, height=1200)
        problems = page.problems
        open_logged_in(page, daemon, "#/servers/fast")
        expect(_rows(page)).to_contain_text("after flood")
        overrun = page.locator(".console-overrun")
        expect(overrun).to_have_text(
            re.compile(
                r"^\d+(\.\d)? (B|KiB|MiB) skipped — the console was too fast for this page\."
            )
        )
        expect(_rows(page)).to_contain_text("skipped — the console was too fast")
        overrun.get_by_role("button", name="Dismiss").click()
        expect(overrun).to_have_count(0)
        problems.check()
    finally:
        if context is not None:
            context.close()
        stop_dashboard_daemon(daemon)

"""The server page's Logs tab shows the server's own log file, read-only, followed live
across a rotation; a server whose type declares none says so."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from tests.fixtures import fixture_argv

from .axe import assert_accessible
from .conftest import DashboardDaemon, open_logged_in, shot

expect = pytest.importorskip("playwright.sync_api").expect


def test_logs_tab_follows_the_log_file(dashboard: DashboardDaemon, make_page: Any) -> None:
    token = dashboard.token()
    settings = {
        "command": shlex.join(fixture_argv("rotating_log")),
        "log_files": "logs/latest.log",
        "stop_timeout": 1,
    }
    dashboard.api(
        "/api/server_create", {"server": "game", "type": "command", "settings": settings}, token
    )
    dashboard.api("/api/server_start", {"server": "game"}, token)
    dashboard.api("/api/server_cmd", {"server": "game", "command": "write 3 before"}, token)
    page = make_page(1280, 860)
    open_logged_in(page, dashboard, "#/servers/game")
    page.get_by_role("tab", name="Logs").click()
    view = page.locator(".logfile-view")
    expect(page.get_by_label("Log file", exact=True)).to_have_value("logs/latest.log")
    expect(view).to_contain_text("before 2")
    dashboard.api("/api/server_cmd", {"server": "game", "command": "rename"}, token)
    dashboard.api("/api/server_cmd", {"server": "game", "command": "write 2 after"}, token)
    expect(view).to_contain_text("after 1")
    text = view.inner_text()
    assert text.index("before 0") < text.index("before 2") < text.index("after 0")
    assert text.count("before 0") == 1
    assert_accessible(page)
    shot(page, "logfiles-tab")

    dashboard.api(
        "/api/server_create",
        {"server": "plain", "type": "demo-game", "settings": {"ready_delay": 0.1}},
        token,
    )
    page.goto(dashboard.url + "#/servers/plain")
    page.get_by_role("tab", name="Logs").click()
    expect(page.get_by_text("declares no log files of its own")).to_be_visible()
    assert_accessible(page)

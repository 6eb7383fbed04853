"""The login page in a real browser: the seed 001 flow with the proof-of-work in a Web
Worker, errors, the session kept per tab, and a session ended by the daemon."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from .conftest import ADMIN_PASSWORD, DashboardDaemon, log_in, shot


def test_login_page_and_bad_password(make_page: Any, dashboard: DashboardDaemon) -> None:
    page = make_page()
    page.problems.expect("403")  # the refused login is an HTTP 403 the browser reports
    page.goto(dashboard.url)
    expect(page).to_have_url(dashboard.url + "#/login")
    expect(page.get_by_label("Username")).to_be_focused()
    shot(page, "login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Login failed: unknown username or wrong password")
    expect(page).to_have_url(dashboard.url + "#/login")
    expect(page.get_by_role("button", name="Log in")).to_be_enabled()
    shot(page, "login-failed")
    # Empty fields: said at once, nothing sent.
    page.get_by_label("Password").fill("")
    page.get_by_role("button", name="Log in").click()
    expect(alert).to_contain_text("Enter your username and password")


def test_login_with_keyboard_then_logout(make_page: Any, dashboard: DashboardDaemon) -> None:
    page = make_page()
    page.goto(dashboard.url)
    # The login view focuses the username field once it is mounted: type only then.
    expect(page.locator("#login-username")).to_be_focused()
    page.keyboard.type("admin")
    page.keyboard.press("Tab")
    page.keyboard.type(ADMIN_PASSWORD)
    with page.expect_console_message(lambda m: "proof-of-work solved" in m.text) as solved:
        page.keyboard.press("Enter")
    assert "solved with crypto.subtle" in solved.value.text  # 127.0.0.1 is a secure context
    page.wait_for_url("**/#/servers")
    expect(page.locator("#conn-state")).to_contain_text("Connected")
    expect(page.locator("#who-name")).to_have_text("admin")
    token = page.evaluate("JSON.parse(sessionStorage.getItem('leosuite.session')).token")
    assert len(token) == 64
    # A reload keeps the session (sessionStorage), a new tab of another context does not.
    page.reload()
    expect(page.locator("#conn-state")).to_contain_text("Connected")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(dashboard.url + "#/login")
    expect(page.get_by_role("status").filter(has_text="You have logged out")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('leosuite.session')") is None
    # The token is destroyed on the daemon, not only forgotten by the page.
    info = dashboard_status(dashboard, token)
    assert info == 403


def dashboard_status(dashboard: DashboardDaemon, token: str) -> int:
    import httpx

    response = httpx.post(
        dashboard.http + "/api/server_list",
        json={},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    return response.status_code


def test_session_closed_elsewhere_brings_login_back(
    make_page: Any, dashboard: DashboardDaemon
) -> None:
    page = make_page()
    log_in(page, dashboard)
    token = page.evaluate("JSON.parse(sessionStorage.getItem('leosuite.session')).token")
    # Logging the token out elsewhere pushes session_closed to the page.
    dashboard.api("/api/auth/logout", {}, token)
    expect(page).to_have_url(dashboard.url + "#/login")
    expect(page.locator(".notice-warn")).to_contain_text("Your session has ended")
    shot(page, "login-session-ended")


def test_proof_of_work_without_crypto_subtle(make_page: Any, dashboard: DashboardDaemon) -> None:
    """A LAN address over plain HTTP is not a secure context: crypto.subtle is missing
    and the worker falls back to the vendored js-sha256."""
    page = make_page()
    lan = dashboard.url.replace("127.0.0.1", "lan.leosuite.test")
    page.goto(lan)
    assert page.evaluate("window.isSecureContext") is False
    assert page.evaluate("typeof crypto.subtle") == "undefined"
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    with page.expect_console_message(lambda m: "proof-of-work solved" in m.text) as solved:
        page.get_by_role("button", name="Log in").click()
    assert "solved with js-sha256" in solved.value.text
    page.wait_for_url("**/#/servers")
    # The WebSocket is reached under the same name (the daemon's Origin rule allows it).
    expect(page.locator("#conn-state")).to_contain_text("Connected")


def test_security_headers(dashboard: DashboardDaemon) -> None:
    import httpx

    for path in ("/", "/ui/js/main.js", "/ui/css/app.css", "/ui/vendor/xterm/xterm.mjs"):
        response = httpx.get(dashboard.http + path, timeout=10)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-eval" not in csp
        assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
    assert (
        httpx.get(dashboard.http + "/ui/js/main.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    # Revalidation: an ETag and 304.
    first = httpx.get(dashboard.http + "/ui/js/api.js", timeout=10)
    again = httpx.get(
        dashboard.http + "/ui/js/api.js", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    # Nothing outside the web root, whatever the spelling.
    for path in (
        "/ui/../settings.py",
        "/ui/%2e%2e/settings.py",
        "/ui/js/../../api/http_web.py",
        "/ui/.hidden",
        "/ui/vendor",
        "/ui/js/nope.js",
        "/ui//etc/passwd",
    ):
        response = httpx.get(dashboard.http + path, timeout=10, follow_redirects=True)
        assert response.status_code == 404, path
        assert response.json()["error_type"] == "not_found"

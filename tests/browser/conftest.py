"""Browser tests: Debian's chromium driven by Playwright against a real daemon.

The daemon is ``leosuite serve`` as a child process on port 0 (a real SQLite file, real
game-server children). Chromium is the system one (``/usr/bin/chromium``, or
``LEOSUITE_CHROMIUM``); Playwright downloads no browser. Screenshots of every page go
to ``test-output/screenshots/`` (or ``LEOSUITE_TEST_OUTPUT``).

Run them alone: ``scripts/test tests/browser``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from leosuite.auth.pow import solve
from tests.helpers.daemon import base_env

playwright_sync = pytest.importorskip("playwright.sync_api")

ADMIN_PASSWORD = "browser-admin-pw"
ROOT = Path(__file__).resolve().parents[2]
OUTPUT = Path(os.environ.get("LEOSUITE_TEST_OUTPUT", ROOT / "test-output"))
CHROMIUM = os.environ.get("LEOSUITE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Chromium's own background traffic is refused on a closed network; keep it quiet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # A second name for 127.0.0.1 that is NOT a secure context (crypto.subtle is
    # undefined there, as on a LAN address over plain HTTP).
    "--host-resolver-rules=MAP lan.leosuite.test 127.0.0.1",  # LAN_HOST
]


SERVE = [sys.executable, "-m", "leosuite", "serve"]


def _listen(ports: list[int] | None) -> list[str]:
    http, ws, admin = ports or (0, 0, 0)
    return [
        "--http",
        f"127.0.0.1:{http}",
        "--ws",
        f"127.0.0.1:{ws}",
        "--admin",
        f"127.0.0.1:{admin}",
    ]


@dataclass
class DashboardDaemon:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    http: str
    ws: str
    admin: str
    log: Path

    @property
    def url(self) -> str:
        return self.http + "/"

    def api(self, path: str, body: dict[str, Any], token: str) -> Any:
        response = httpx.post(
            self.http + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=15
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def token(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
        return str(self.login(username, password)["access_token"])

    def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> dict[str, Any]:
        """The ``/api/auth/login`` answer (``access_token``, ``user``, ``permissions``)."""
        info = httpx.get(self.http + "/api/auth/login_info", timeout=10).json()
        proofs = solve(info["random"], count=info["proof_of_works"], difficulty=info["difficulty"])
        answer = httpx.post(
            self.http + "/api/auth/login",
            json={
                "username": username,
                "password": password,
                "random": info["random"],
                "proof_of_works": proofs,
            },
            timeout=10,
        )
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result


def _env(**extra: str) -> dict[str, str]:
    """The CLI daemon tests' environment (cheap argon2, no inherited LEOSUITE_ or
    systemd variables), with a proof-of-work that gives the browser's Web Worker real
    work, but quick."""
    defaults = {
        "LEOSUITE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        # The dashboard is also opened under LAN_HOST: served, as an operator lists it.
        "LEOSUITE_HTTP_ALLOWED_HOSTS": "lan.leosuite.test",
        "LEOSUITE_AUTH_POW_DIFFICULTY": "10",
        "LEOSUITE_AUTH_POW_COUNT": "2",
    }
    return base_env(**{**defaults, **extra})


def free_ports(count: int) -> list[int]:
    """Ports free right now (for a daemon that must come back on the same ports)."""
    socks = [socket.socket() for _ in range(count)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in socks]
    for sock in socks:
        sock.close()
    return ports


def start_dashboard_daemon(
    data_dir: Path, ports: list[int] | None = None, **env: str
) -> DashboardDaemon:
    """``leosuite serve`` on port 0, or on ``ports`` (http, ws, admin)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    endpoints = data_dir / "run" / "endpoints.json"
    endpoints.unlink(missing_ok=True)
    log = data_dir.parent / f"{data_dir.name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*SERVE, "--data-dir", str(data_dir), *_listen(ports)],
            env=_env(**env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while not endpoints.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"leosuite serve did not start:\n{log.read_text()}")
        time.sleep(0.05)
    found = json.loads(endpoints.read_text())
    return DashboardDaemon(proc, data_dir, found["http"], found["ws"], found["admin"], log)


def stop_dashboard_daemon(daemon: DashboardDaemon) -> None:
    if daemon.proc.poll() is None:
        daemon.proc.send_signal(signal.SIGTERM)
        try:
            daemon.proc.wait(30)
        except subprocess.TimeoutExpired:
            daemon.proc.kill()
            daemon.proc.wait()


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[DashboardDaemon]:
    daemon = start_dashboard_daemon(tmp_path / "data")
    try:
        yield daemon
    finally:
        stop_dashboard_daemon(daemon)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: apt-get install chromium (scripts/test does)")
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageProblems:
    """Console errors, page errors, CSP violations and requests to other hosts seen by a
    page; a test fails on any of them (``check()``)."""

    def __init__(self, page: Any, allowed_hosts: set[str]) -> None:
        self.errors: list[str] = []
        self.allowed_hosts = allowed_hosts
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("console", self._console)
        page.on("request", self._request)
        self.expected: list[str] = []

    def _console(self, msg: Any) -> None:
        if msg.type == "error" and not any(e in msg.text for e in self.expected):
            self.errors.append(f"console error: {msg.text}")

    def _request(self, request: Any) -> None:
        host = request.url.split("//", 1)[-1].split("/", 1)[0]
        if request.url.startswith(("http", "ws")) and host not in self.allowed_hosts:
            self.errors.append(f"third-party request: {request.url}")

    def expect(self, text: str) -> None:
        """A console error containing ``text`` is expected (e.g. a refused login's 403)."""
        self.expected.append(text)

    def check(self) -> None:
        assert not self.errors, "\n".join(self.errors)


LAN_HOST = "lan.leosuite.test"  # see --host-resolver-rules in CHROMIUM_ARGS


def dashboard_hosts(daemon: DashboardDaemon, *, lan: bool = False) -> set[str]:
    """The ``host:port``s a page of ``daemon`` may reach (also under :data:`LAN_HOST`)."""
    hosts = {daemon.http.split("//")[1], daemon.ws.split("//")[1]}
    if lan:
        hosts |= {h.replace("127.0.0.1", LAN_HOST) for h in hosts}
    return hosts


def new_page(
    browser: Any,
    daemon: DashboardDaemon,
    *,
    width: int = 1280,
    height: int = 800,
    timeout_ms: int = 15_000,
    lan: bool = False,
) -> tuple[Any, Any]:
    """A fresh context (own sessionStorage) and its page, with ``page.problems``
    watching it (call ``page.problems.check()``; :func:`make_page` does)."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(timeout_ms)
    page = context.new_page()
    page.problems = PageProblems(page, dashboard_hosts(daemon, lan=lan))
    return context, page


@pytest.fixture
def make_page(browser: Any, dashboard: DashboardDaemon) -> Iterator[Any]:
    """``make_page(width=1280, height=800)`` → a fresh page (own context, own
    sessionStorage) with ``page.problems`` watching it; problems fail the test."""
    contexts: list[Any] = []
    pages: list[Any] = []

    def make(width: int = 1280, height: int = 800) -> Any:
        context, page = new_page(browser, dashboard, width=width, height=height, lan=True)
        contexts.append(context)
        pages.append(page)
        return page

    yield make
    for context in contexts:
        context.close()
    for page in pages:
        page.problems.check()


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as ``test-output/screenshots/<name>.png``."""
    path = OUTPUT / "screenshots" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page: Any, dashboard: DashboardDaemon, password: str = ADMIN_PASSWORD) -> None:
    """Log in through the login page as ``admin`` and wait for the server list."""
    page.goto(dashboard.url)
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/#/servers")
    page.locator("#conn-state[data-state=open]").wait_for()


def open_logged_in(
    page: Any, dashboard: DashboardDaemon, hash_path: str = "#/servers", **login: str
) -> dict[str, Any]:
    """Open the dashboard at ``hash_path`` already logged in (a session from the HTTP
    API put into sessionStorage, as the login page does), skipping the login form.
    Returns the login answer (``access_token``, ``user``, ``permissions``)."""
    answer = dashboard.login(**login)
    session = {
        "token": answer["access_token"],
        "user": answer["user"],
        "permissions": answer["permissions"],
    }
    page.add_init_script(
        f"sessionStorage.setItem('leosuite.session', {json.dumps(json.dumps(session))});"
    )
    page.goto(dashboard.url + hash_path)
    page.locator("#conn-state[data-state=open]").wait_for()
    return answer

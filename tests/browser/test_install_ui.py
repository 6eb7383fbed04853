"""A minecraft server's install from its page in a real browser: the Install button,
the step and progress bar while the jar downloads (from a local stand-in for
Mojang), Installed once done, then a start that runs what was installed; the box
stays hidden from an account without the power right and for types without steps.
axe-core on every state."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.mojang import FakeMojang, fake_java, fake_mojang

from .axe import assert_accessible
from .conftest import (
    DashboardDaemon,
    open_logged_in,
    shot,
    start_dashboard_daemon,
    stop_dashboard_daemon,
)

expect = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture
def mojang() -> Iterator[FakeMojang]:
    with fake_mojang() as site:
        site.add_versions("1.21.4")
        yield site


@pytest.fixture
def dashboard(tmp_path: Path, mojang: FakeMojang) -> Iterator[DashboardDaemon]:
    """The conftest daemon with Mojang's manifest at the stand-in and a java on PATH."""
    java = fake_java(tmp_path / "bin")
    daemon = start_dashboard_daemon(
        tmp_path / "data",
        LEOSUITE_SERVERS_MINECRAFT_MANIFEST_URL=mojang.manifest_url,
        PATH=f"{java}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    try:
        yield daemon
    finally:
        stop_dashboard_daemon(daemon)


def _api(daemon: DashboardDaemon, endpoint: str, **body: Any) -> Any:
    return daemon.api(endpoint, body, daemon.token())


def test_install_from_the_server_page(
    make_page: Any, dashboard: DashboardDaemon, mojang: FakeMojang
) -> None:
    settings = {"jar": "server.jar", "memory": 256, "eula": True, "stop_timeout": 5}
    _api(dashboard, "/api/server_create", server="mc", type="minecraft", settings=settings)
    _api(dashboard, "/api/server_create", server="demo", type="demo-game", settings={})
    mojang.stalls.add("/jars/1.21.4/server.jar")

    page = make_page()
    open_logged_in(page, dashboard, "#/servers/mc")
    box = page.get_by_role("region", name="Install")
    expect(box).to_be_visible()
    expect(box).to_contain_text("Not installed with the current settings: the 2 install steps")
    button = box.get_by_role("button", name="Install")
    expect(button).to_be_enabled()
    assert_accessible(page)

    button.click()
    expect(box).to_contain_text("Step 2 of 2: download the Minecraft server latest to server.jar")
    bar = box.get_by_role("progressbar", name="Install progress of mc")
    expect(bar).to_be_visible()
    expect(button).to_be_disabled()
    # The daemon answers a start "busy" while the install runs: Start is not offered.
    expect(page.get_by_role("button", name="Start", exact=True)).to_be_hidden()
    assert_accessible(page)
    shot(page, "install-progress")
    mojang.release.set()

    expect(box).to_contain_text("Installed: its 2 install steps ran with the current settings.")
    expect(box.get_by_role("button", name="Reinstall")).to_be_enabled()
    expect(bar).to_be_hidden()
    assert (dashboard.data_dir / "servers" / "mc" / "eula.txt").read_text() == "eula=true\n"
    assert_accessible(page)

    page.get_by_role("button", name="Start", exact=True).click()
    expect(page.locator(".server-head")).to_contain_text("running", timeout=30_000)
    expect(box.get_by_role("button", name="Reinstall")).to_be_disabled()
    shot(page, "install-done-running")

    # A type without install steps has no install box.
    open_logged_in(page, dashboard, "#/servers/demo")
    expect(page.get_by_role("heading", name="demo")).to_be_visible()
    expect(page.get_by_role("region", name="Install")).to_have_count(0)
    _api(dashboard, "/api/server_stop", server="mc")

"""README's "Put a Minecraft server online", all in the dashboard as a new user does it:
log in as admin, create a minecraft server (a version, the EULA), install it with its
progress shown, start it once so it writes server.properties, stop it, edit that file in
Files, start it again and see the change, create a friend's account on the admin
Accounts page, share the server with it, and as the friend see the console and type a
command. Mojang's downloads come from a local stand-in (tests/helpers/mojang.py).
Its screenshots are the ones in README (LEOSUITE_DOC_SCREENSHOTS=1 refreshes them)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.mojang import FakeMojang, fake_java, fake_mojang

from .axe import assert_accessible
from .conftest import (
    OUTPUT,
    ROOT,
    DashboardDaemon,
    log_in,
    shot,
    start_dashboard_daemon,
    stop_dashboard_daemon,
)

expect = pytest.importorskip("playwright.sync_api").expect

#: The steps pictured in README: docs/screenshots/<name>.png (LEOSUITE_DOC_SCREENSHOTS=1).
DOC_SHOTS = ("mc-install", "mc-properties", "mc-sharing", "mc-friend-console")
VERSION = "1.21.4"
FRIEND_PASSWORD = "friend-password-1"
JAR = f"/jars/{VERSION}/server.jar"


@pytest.fixture
def mojang() -> Iterator[FakeMojang]:
    with fake_mojang() as site:
        site.add_versions("1.21.3", VERSION, "1.21.5")
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


def _step(page: Any, name: str, top: Any = None) -> None:
    """Every step: axe-core finds nothing, and its screenshot is taken; for the README's,
    also the window alone (scrolled to ``top``), once the toasts are gone."""
    assert_accessible(page)
    shot(page, name)
    if name in DOC_SHOTS:
        expect(page.locator(".toast")).to_have_count(0, timeout=20_000)
        if top is not None:
            top.evaluate("el => window.scrollTo(0, el.getBoundingClientRect().top + scrollY - 64)")
        page.screenshot(path=str(OUTPUT / "screenshots" / f"{name}-view.png"))


def _start(page: Any) -> Any:
    """Start from the server page; the console's rows once the ready line is in them."""
    page.get_by_role("button", name="Start", exact=True).click()
    rows = page.locator(".console .xterm-rows")
    expect(rows).to_contain_text("Done (1.0s)!", timeout=30_000)
    expect(page.locator(".server-head .badge")).to_have_attribute("data-state", "running")
    return rows


def _command(page: Any, text: str) -> None:
    command = page.get_by_label("Command", exact=True)
    command.fill(text)
    command.press("Enter")
    expect(command).to_have_value("")


def test_put_a_minecraft_server_online(
    make_page: Any, dashboard: DashboardDaemon, mojang: FakeMojang
) -> None:
    root = dashboard.data_dir / "servers" / "survival"
    page = make_page(1280, 800)
    log_in(page, dashboard)

    # 1. New server: minecraft, a name, the version, the EULA.
    page.get_by_role("link", name="New server").click()
    page.get_by_label("minecraft", exact=True).check()
    page.get_by_label("Name", exact=True).fill("survival")
    page.get_by_label("Server jar").fill("server.jar")
    page.get_by_label("Minecraft version").fill(VERSION)
    page.get_by_label("I accept the Minecraft EULA").check()
    _step(page, "mc-create")
    page.get_by_role("button", name="Create server").click()
    page.wait_for_url("**/#/servers/survival")
    badge = page.locator(".server-head .badge")
    expect(badge).to_have_attribute("data-state", "stopped")

    # 2. Install: the jar of that version downloads, with its progress shown.
    mojang.stalls.add(JAR)
    box = page.get_by_role("region", name="Install")
    expect(box).to_contain_text("Not installed with the current settings")
    box.get_by_role("button", name="Install").click()
    expect(box).to_contain_text(f"download the Minecraft server {VERSION} to server.jar")
    expect(box.get_by_role("progressbar", name="Install progress of survival")).to_be_visible()
    assert mojang.stalled.wait(30)
    _step(page, "mc-install")
    mojang.release.set()
    expect(box).to_contain_text("Installed: its 2 install steps ran with the current settings.")
    assert (root / "eula.txt").read_text() == "eula=true\n"
    assert (root / "server.jar").read_bytes() == mojang.files[JAR]

    # 3. The first start writes server.properties; the ready line; stop.
    rows = _start(page)
    expect(rows).to_contain_text("Starting Minecraft server on *:25565")
    _step(page, "mc-first-start")
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(badge).to_have_attribute("data-state", "stopped", timeout=30_000)

    # 4. Files: open server.properties, change max-players and motd, save.
    page.get_by_role("tab", name="Files").click()
    page.locator('[data-name="server.properties"]').click()
    content = page.get_by_role("textbox", name="Contents of server.properties")
    expect(content).to_be_focused()
    page.keyboard.press("Control+Home")
    page.keyboard.press("ArrowDown")  # max-players=20
    page.keyboard.press("End")
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.type("10")
    page.keyboard.press("ArrowDown")  # motd=A Minecraft Server
    page.keyboard.press("End")
    page.keyboard.press("Shift+Home")
    page.keyboard.type("motd=Friends only")
    expect(page.locator(".files-dirty")).to_have_text("Unsaved changes")
    _step(page, "mc-properties", page.get_by_role("tablist"))
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".files-status")).to_contain_text("Saved server.properties")
    assert (root / "server.properties").read_text() == (
        "#Minecraft server properties\nmax-players=10\nmotd=Friends only\nserver-port=25565\n"
    )

    # 5. Start again: the game reads the edited file.
    page.get_by_role("tab", name="Console").click()
    rows = _start(page)
    _command(page, "list")
    expect(rows).to_contain_text("There are 0 of a max of 10 players online")
    _step(page, "mc-console")

    # 6. The friend's account, on the admin Accounts page.
    page.get_by_role("link", name="Admin", exact=True).click()
    page.get_by_role("button", name="New account").click()
    dialog = page.get_by_role("dialog", name="New account")
    dialog.get_by_label("Username").fill("friend")
    dialog.get_by_label("Password").fill(FRIEND_PASSWORD)
    _step(page, "mc-account")
    dialog.get_by_role("button", name="Create").click()
    expect(page.locator("tr[data-account=friend]")).to_be_visible()

    # 7. Sharing: the friend gets console, commands and power on this server.
    page.get_by_role("link", name="Servers", exact=True).click()
    page.locator(".server-card[data-server=survival]").get_by_role("link", name="survival").click()
    page.get_by_role("tab", name="Sharing").click()
    panel = page.locator(".panel-sharing")
    panel.get_by_label("Account (username)").fill("friend")
    for right in ("console", "commands", "power"):
        panel.locator(f"#share-new-{right}").check()
    panel.get_by_role("button", name="Share", exact=True).click()
    row = panel.locator("tr[data-account=friend]")
    for right in ("Console", "Commands", "Power"):
        expect(row.get_by_label(f"{right} for friend")).to_be_checked()
    for right in ("Files", "Settings"):
        expect(row.get_by_label(f"{right} for friend")).not_to_be_checked()
    _step(page, "mc-sharing", page.get_by_role("tablist"))

    # 8. The friend logs in elsewhere, sees the server, its console, types a command.
    friend = make_page(1280, 800)
    friend.goto(dashboard.url)
    friend.get_by_label("Username").fill("friend")
    friend.get_by_label("Password").fill(FRIEND_PASSWORD)
    friend.get_by_role("button", name="Log in").click()
    friend.wait_for_url("**/#/servers")
    card = friend.locator(".server-card[data-server=survival]")
    expect(card.locator(".badge")).to_have_attribute("data-state", "running")
    _step(friend, "mc-friend-servers")
    card.get_by_role("link", name="survival").click()
    friend_rows = friend.locator(".console .xterm-rows")
    expect(friend_rows).to_contain_text("Done (1.0s)!")
    _command(friend, "list")
    expect(friend_rows.get_by_text("There are 0 of a max of 10 players online")).to_have_count(2)
    expect(friend.get_by_role("tab", name="Files")).to_have_count(0)
    expect(friend.get_by_role("button", name="Destroy server")).to_have_count(0)
    _step(friend, "mc-friend-console")

    # The friend may stop it (power); the owner's page follows.
    friend.get_by_role("button", name="Stop", exact=True).click()
    expect(badge).to_have_attribute("data-state", "stopped", timeout=30_000)

    # Refresh the pictures in README when asked.
    if os.environ.get("LEOSUITE_DOC_SCREENSHOTS") == "1":
        for name in DOC_SHOTS:
            shutil.copyfile(
                OUTPUT / "screenshots" / f"{name}-view.png",
                ROOT / "docs" / "screenshots" / f"{name}.png",
            )

"""The Files tab of a server page in a real browser: folders, upload with progress and
the daemon's limit, the editor (CodeMirror, highlighting), save, rename, delete,
download, a new file; a file too large for a tab's download sent to the command line;
hostile names and planted links refused with the reason shown; who gets the files at
all. axe-core on every state."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .axe import assert_accessible
from .conftest import (
    ADMIN_PASSWORD,
    DashboardDaemon,
    open_logged_in,
    shot,
    start_dashboard_daemon,
    stop_dashboard_daemon,
)

expect = pytest.importorskip("playwright.sync_api").expect

LIMIT = 256 * 1024
FAST = {"ready_delay": 0.1, "player_interval": 0}
PROPERTIES = "# Minecraft server properties\nmotd=A leosuite server\nmax-players=4\n"
BOB_PASSWORD = "bob-password-1"


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[DashboardDaemon]:
    """The conftest daemon with a small upload limit, to see one refused."""
    daemon = start_dashboard_daemon(
        tmp_path / "data", LEOSUITE_SERVERS_FILES_MAX_UPLOAD_BYTES=str(LIMIT)
    )
    try:
        yield daemon
    finally:
        stop_dashboard_daemon(daemon)


def _api(daemon: DashboardDaemon, endpoint: str, token: str | None = None, /, **body: Any) -> Any:
    return daemon.api(endpoint, body, token or daemon.token())


def _add_host(daemon: DashboardDaemon, username: str) -> None:
    response = httpx.post(
        daemon.admin + "/accounts/",
        json={"username": username, "password": BOB_PASSWORD, "flags": "HOST"},
        auth=("admin", ADMIN_PASSWORD),
        timeout=15,
    )
    response.raise_for_status()


def _open_files(page: Any, daemon: DashboardDaemon, server: str, **login: str) -> None:
    open_logged_in(page, daemon, f"#/servers/{server}", **login)
    page.get_by_role("tab", name="Files").click()
    expect(page.locator(".files-limits")).to_contain_text("256.0 KiB")


def _row(page: Any, name: str) -> Any:
    return page.locator(".files-table tbody tr").filter(has=page.locator(f'[data-name="{name}"]'))


def _dialog_submit(page: Any, label: str, value: str) -> Any:
    dialog = page.locator("dialog[open]")
    dialog.get_by_label(label).fill(value)
    dialog.get_by_label(label).press("Enter")
    return dialog


def test_owner_manages_files(dashboard: DashboardDaemon, make_page: Any, tmp_path: Path) -> None:
    _api(dashboard, "/api/server_create", server="mc", type="demo-game", settings=FAST)
    root = dashboard.data_dir / "servers" / "mc"
    page = make_page()
    _open_files(page, dashboard, "mc")
    expect(page.get_by_text("This folder is empty.")).to_be_visible()
    assert_accessible(page)

    # A folder, by keyboard: the dialog takes the name and Enter.
    page.get_by_role("button", name="New folder…").focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_label("Folder name")).to_be_focused()
    assert_accessible(page)
    _dialog_submit(page, "Folder name", "config")
    expect(dialog).to_have_count(0)
    expect(page.locator('[data-name="config"]')).to_be_focused()
    assert (root / "config").is_dir()
    expect(page.locator(".files-status")).to_have_text("Folder config created.")

    # Into it, and back by the breadcrumbs.
    page.locator('[data-name="config"]').click()
    expect(page.locator(".files-crumbs [aria-current=location]")).to_have_text("config")
    expect(page.get_by_text("This folder is empty.")).to_be_visible()
    page.locator(".files-crumbs").get_by_role("button", name="Server folder").click()
    expect(page.locator('[data-name="config"]')).to_be_visible()

    # An upload reports its progress as it goes.
    page.evaluate(
        """() => {
          window.progressSeen = [];
          const label = document.getElementById("files-progress-label");
          new MutationObserver(() => window.progressSeen.push(label.textContent))
            .observe(label, {childList: true, characterData: true, subtree: true});
        }"""
    )
    blob = os.urandom(200 * 1024)
    upload = {"name": "level.dat", "mimeType": "application/octet-stream", "buffer": blob}
    page.locator(".files input[type=file]").set_input_files(upload)
    expect(page.locator(".files-status")).to_have_text("Uploaded level.dat (200.0 KiB).")
    assert (root / "level.dat").read_bytes() == blob
    seen = page.evaluate("window.progressSeen")
    assert "Uploading level.dat: 100% (200.0 KiB of 200.0 KiB)" in seen, seen
    expect(page.locator(".files .files-progress")).to_be_hidden()
    expect(_row(page, "level.dat").locator(".files-size")).to_have_text("200.0 KiB")

    # Over the daemon's limit: refused, with the limit it gave.
    too_big = {**upload, "name": "huge.bin", "buffer": b"x" * (LIMIT + 1)}
    page.locator(".files input[type=file]").set_input_files(too_big)
    error = page.locator(".files-error")
    expect(error).to_contain_text("Could not upload “huge.bin”")
    expect(error).to_contain_text(f"({LIMIT + 1} bytes), and the daemon takes uploads")
    expect(error).to_contain_text(f"at most 256.0 KiB ({LIMIT} bytes")
    assert not (root / "huge.bin").exists()
    assert_accessible(page)
    shot(page, "files-list")

    # The editor: server.properties highlighted, edited, saved, read back.
    _api(
        dashboard, "/api/server_files_write", server="mc", path="server.properties", data=PROPERTIES
    )
    page.get_by_role("button", name="Refresh").click()
    page.locator('[data-name="server.properties"]').click()
    content = page.get_by_role("textbox", name="Contents of server.properties")
    expect(content).to_be_focused()
    expect(page.locator(".cm-content .tok-comment")).to_have_text("# Minecraft server properties")
    expect(page.locator(".cm-content .tok-string").first).to_be_visible()
    assert_accessible(page)
    page.keyboard.press("Control+End")
    page.keyboard.type("pvp=false\n")
    expect(page.locator(".files-dirty")).to_have_text("Unsaved changes")
    page.keyboard.press("Control+s")
    expect(page.locator(".files-status")).to_contain_text("Saved server.properties")
    expect(page.locator(".files-dirty")).to_have_text("")
    read = _api(dashboard, "/api/server_files_read", server="mc", path="server.properties")
    assert read["data"] == PROPERTIES + "pvp=false\n"
    shot(page, "files-editor")
    # Tab leaves the editor (no keyboard trap).
    content.focus()
    page.keyboard.press("Tab")
    assert page.evaluate("!document.activeElement.closest('.cm-editor')")
    page.get_by_role("button", name="Close").click()
    expect(page.locator('[data-name="server.properties"]')).to_be_focused()

    # Rename, then download the renamed file and compare bytes.
    _row(page, "level.dat").get_by_role("button", name="Rename level.dat").click()
    _dialog_submit(page, "New name", "world.dat")
    expect(page.locator('[data-name="world.dat"]')).to_be_focused()
    assert (root / "world.dat").read_bytes() == blob
    assert not (root / "level.dat").exists()
    with page.expect_download() as download:
        _row(page, "world.dat").get_by_role("button", name="Download world.dat").click()
    assert download.value.suggested_filename == "world.dat"
    saved = tmp_path / "downloaded.dat"
    download.value.save_as(saved)
    assert saved.read_bytes() == blob
    expect(page.locator(".files-status")).to_have_text("Downloaded world.dat (200.0 KiB).")

    # Delete asks first; Cancel keeps the file, Delete removes it.
    _row(page, "world.dat").get_by_role("button", name="Delete world.dat").click()
    expect(page.locator("dialog[open]")).to_contain_text("Delete “world.dat”?")
    assert_accessible(page)
    page.locator("dialog[open]").get_by_role("button", name="Cancel").click()
    assert (root / "world.dat").exists()
    _row(page, "world.dat").get_by_role("button", name="Delete world.dat").click()
    page.locator("dialog[open]").get_by_role("button", name="Delete").click()
    expect(page.locator(".files-status")).to_have_text("Deleted world.dat.")
    assert not (root / "world.dat").exists()
    (root / "config" / "ops.json").write_text("[]\n")
    _row(page, "config").get_by_role("button", name="Delete config").click()
    expect(page.locator("dialog[open]")).to_contain_text("the folder “config” and everything in it")
    page.locator("dialog[open]").get_by_role("button", name="Delete").click()
    expect(page.locator('[data-name="config"]')).to_have_count(0)
    assert not (root / "config").exists()
    assert_accessible(page)


def test_hostile_names_and_planted_links(
    dashboard: DashboardDaemon, make_page: Any, tmp_path: Path
) -> None:
    _api(dashboard, "/api/server_create", server="mc", type="demo-game", settings=FAST)
    root = dashboard.data_dir / "servers" / "mc"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    root.mkdir(parents=True, exist_ok=True)
    (root / "evil").symlink_to(outside / "secret.txt")
    (root / "world").symlink_to(outside)
    (root / "keep.txt").write_text("keep\n")
    page = make_page()
    page.problems.expect("status of 400")  # the refusals this test asks for
    _open_files(page, dashboard, "mc")
    expect(_row(page, "evil").locator(".files-type")).to_have_text(
        f"Link → {outside / 'secret.txt'}"
    )

    # A planted link is never followed: opening either says why.
    error = page.locator(".files-error")
    page.locator('[data-name="evil"]').click()
    expect(error).to_have_text(
        "Could not open “evil”: path: evil is a symbolic link (links are never followed)"
    )
    page.locator('[data-name="world"]').click()
    expect(error).to_contain_text("path: world is a symbolic link (links are never followed)")
    assert_accessible(page)

    # A file that is not text, or larger than a read may answer, is offered for download.
    (root / "blob.bin").write_bytes(bytes(range(256)))
    (root / "big.log").write_bytes(b"x" * (1024 * 1024 + 1))
    page.get_by_role("button", name="Refresh").click()
    page.locator('[data-name="blob.bin"]').click()
    expect(page.locator(".files-editor .notice")).to_have_text(
        "This file is not text (it is not valid UTF-8), so it cannot be edited here."
        " Download it instead."
    )
    expect(page.get_by_role("button", name="Back to the folder")).to_be_focused()
    assert_accessible(page)
    page.keyboard.press("Enter")
    expect(page.locator('[data-name="blob.bin"]')).to_be_focused()
    page.locator('[data-name="big.log"]').click()
    expect(page.locator(".files-editor .notice")).to_contain_text(
        "This file is 1.0 MiB: larger than the 1.0 MiB the editor opens."
    )
    with page.expect_download() as download:
        page.locator(".files-editor").get_by_role("button", name="Download").click()
    assert download.value.suggested_filename == "big.log"
    page.get_by_role("button", name="Back to the folder").click()
    (root / "blob.bin").unlink()
    (root / "big.log").unlink()

    # An upload onto a link is refused by the daemon, and nothing is written through it.
    page.locator(".files input[type=file]").set_input_files(
        {"name": "evil", "mimeType": "text/plain", "buffer": b"pwned\n"}
    )
    page.locator("dialog[open]").get_by_role("button", name="Replace").click()
    expect(error).to_have_text(
        "Could not upload “evil”: path: evil is a symbolic link (links are never followed)"
    )
    assert (outside / "secret.txt").read_text() == "secret\n"

    # Names that are paths are refused in the dialog; the daemon's refusals show there too.
    _row(page, "keep.txt").get_by_role("button", name="Rename keep.txt").click()
    dialog = page.locator("dialog[open]")
    for hostile, why in (
        ("../x", "A name cannot contain “/”: give one name in this folder."),
        ("a/b", "A name cannot contain “/”: give one name in this folder."),
        ("..", "“..” is not a name."),
        ("world", "to: world is a symbolic link (links are never followed)"),
    ):
        _dialog_submit(page, "New name", hostile)
        expect(dialog.locator(".field-error")).to_have_text(why)
        expect(dialog.get_by_label("New name")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)
    shot(page, "files-hostile")
    dialog.get_by_label("New name").press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.locator('[data-name="keep.txt"]')).to_be_focused()

    # On a phone the page does not scroll sideways (the table scrolls in its box).
    page.set_viewport_size({"width": 390, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "files-phone")
    assert sorted(p.name for p in root.iterdir()) == ["evil", "keep.txt", "world"]
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_new_file_and_downloads_too_large_for_a_tab(
    dashboard: DashboardDaemon, make_page: Any
) -> None:
    _api(dashboard, "/api/server_create", server="mc", type="demo-game", settings=FAST)
    root = dashboard.data_dir / "servers" / "mc"
    root.mkdir(parents=True, exist_ok=True)
    (root / "eula.txt").write_text("eula=false\n")
    page = make_page()
    downloads: list[Any] = []
    page.on("download", lambda download: downloads.append(download))
    _open_files(page, dashboard, "mc")

    # New file: a name already there is refused in the dialog, and nothing is replaced.
    page.get_by_role("button", name="New file…").click()
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_label("File name")).to_be_focused()
    assert_accessible(page)
    _dialog_submit(page, "File name", "eula.txt")
    expect(dialog.locator(".field-error")).to_have_text("“eula.txt” already exists in this folder.")
    _dialog_submit(page, "File name", "../x.txt")
    expect(dialog.locator(".field-error")).to_have_text(
        "A name cannot contain “/”: give one name in this folder."
    )
    assert (root / "eula.txt").read_text() == "eula=false\n"
    # A new name: the empty file is made and opens in the editor.
    _dialog_submit(page, "File name", "ops.json")
    expect(dialog).to_have_count(0)
    content = page.get_by_role("textbox", name="Contents of ops.json")
    expect(content).to_be_focused()
    assert (root / "ops.json").read_bytes() == b""
    assert_accessible(page)
    page.keyboard.type('["alice"]')
    page.keyboard.press("Control+s")
    expect(page.locator(".files-status")).to_contain_text("Saved ops.json")
    assert (root / "ops.json").read_text().startswith('["alice"]')
    page.get_by_role("button", name="Close").click()
    expect(page.locator('[data-name="ops.json"]')).to_be_focused()

    # Cancelled: nothing is made and the button has the focus back.
    page.get_by_role("button", name="New file…").click()
    page.locator("dialog[open]").get_by_label("File name").press("Escape")
    expect(page.get_by_role("button", name="New file…")).to_be_focused()

    # Larger than a tab downloads (a sparse file): not fetched, the command line named.
    with (root / "world.bin").open("wb") as big:
        big.truncate(600 * 1024 * 1024)
    page.get_by_role("button", name="Refresh").click()
    _row(page, "world.bin").get_by_role("button", name="Download world.bin").click()
    error = page.locator(".files-error")
    expect(error).to_have_text(
        "Could not download “world.bin”: it is 600.0 MiB, larger than the 512.0 MiB a"
        " browser tab downloads: get it with the command line, leosuite server files mc get"
        " world.bin world.bin (or copy it off the machine with scp)."
    )
    assert_accessible(page)
    shot(page, "files-too-large")
    # From the file's own page the answer's length decides: the same refusal.
    page.locator('[data-name="world.bin"]').click()
    page.locator(".files-editor").get_by_role("button", name="Download").click()
    expect(error).to_contain_text("it is 600.0 MiB, larger than the 512.0 MiB a browser tab")
    # A small file still downloads.
    page.get_by_role("button", name="Back to the folder").click()
    with page.expect_download() as download:
        _row(page, "eula.txt").get_by_role("button", name="Download eula.txt").click()
    assert download.value.suggested_filename == "eula.txt"
    assert [d.suggested_filename for d in downloads] == ["eula.txt"]


def test_who_gets_the_files(dashboard: DashboardDaemon, make_page: Any) -> None:
    _api(dashboard, "/api/server_create", server="mc", type="demo-game", settings=FAST)
    _add_host(dashboard, "bob")
    bob = dashboard.token("bob", BOB_PASSWORD)
    _api(dashboard, "/api/server_create", bob, server="bobs", type="demo-game", settings=FAST)

    # Another account's server does not exist for a HOST: no page, no Files tab.
    page = make_page()
    open_logged_in(page, dashboard, "#/servers/mc", username="bob", password=BOB_PASSWORD)
    expect(page.get_by_role("alert")).to_contain_text("There is no server named “mc”")
    expect(page.get_by_role("tab", name="Files")).to_have_count(0)
    assert_accessible(page)

    # Its own server's files are listed; a change is refused, with the daemon's reason,
    # while the server runs as the daemon's own user.
    page.problems.expect("status of 403")  # the refusal this test asks for
    page.goto(dashboard.url + "#/servers/bobs")
    page.get_by_role("tab", name="Files").click()
    expect(page.get_by_text("This folder is empty.")).to_be_visible()
    page.get_by_role("button", name="New folder…").click()
    dialog = _dialog_submit(page, "Folder name", "plugins")
    expect(dialog.locator(".field-error")).to_contain_text(
        "runs as the daemon's own user: only an ADMIN may change its files"
    )
    assert not (dashboard.data_dir / "servers" / "bobs" / "plugins").exists()
    assert_accessible(page)
    dialog.get_by_label("Folder name").press("Escape")
    page.get_by_role("button", name="New file…").click()
    dialog = _dialog_submit(page, "File name", "server.properties")
    expect(dialog.locator(".field-error")).to_contain_text(
        "runs as the daemon's own user: only an ADMIN may change its files"
    )
    assert not (dashboard.data_dir / "servers" / "bobs" / "server.properties").exists()

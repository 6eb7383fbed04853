"""The Backups tab of a server page in a real browser: the owner backs a server up (the
progress bar shows, the new row appears with its size, files, author, note and SHA-256),
downloads it (the bytes' SHA-256 is the row's), is refused a restore while the server
runs, restores it once stopped (the files come back), and deletes it; a refusal shows
the daemon's words; a grantee with the files right sees the list and downloads but has
no create, restore or delete, one without it has no tab. axe-core on every state."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from .axe import assert_accessible
from .conftest import (
    ADMIN_PASSWORD,
    DashboardDaemon,
    new_page,
    open_logged_in,
    shot,
    start_dashboard_daemon,
    stop_dashboard_daemon,
)

expect = pytest.importorskip("playwright.sync_api").expect

FAST = {"ready_delay": 0.1, "player_interval": 0}
FRIEND_PASSWORD = "friend-password-1"
HOSTILE_NOTE = '<img src=x onerror="document.title=1"> before the update'

# Records every state the progress bar shows, so a test sees it without racing it.
RECORD_PROGRESS = """
window.backupBars = [];
new MutationObserver(() => {
  const bar = document.querySelector('.panel-backups [role=progressbar]');
  if (!bar || bar.closest('[hidden]')) return;
  const seen = bar.getAttribute('aria-valuenow');
  const last = window.backupBars[window.backupBars.length - 1];
  if (last !== seen) window.backupBars.push(seen);
}).observe(document, {subtree: true, childList: true, attributes: true});
"""


def _setup(daemon: DashboardDaemon) -> tuple[str, Path]:
    """The server ``game`` (running) with a world file of random bytes; returns the token
    and its directory."""
    token = daemon.token()
    daemon.api(
        "/api/server_create", {"server": "game", "type": "demo-game", "settings": FAST}, token
    )
    root = daemon.data_dir / "servers" / "game"
    (root / "world").mkdir(parents=True, exist_ok=True)
    (root / "world" / "level.dat").write_bytes(os.urandom(3 * 1024 * 1024))
    (root / "world" / "notes.txt").write_text("the original world\n")
    daemon.api("/api/server_start", {"server": "game"}, token)
    return token, root


def _wait_running(daemon: DashboardDaemon, token: str) -> None:
    """Until ``game`` runs (its save command is typed only into a running server)."""
    for _ in range(600):
        if daemon.api("/api/server_status", {"server": "game"}, token)["status"] == "running":
            return
        time.sleep(0.1)
    raise AssertionError("game did not start")


def _open_backups(page: Any, daemon: DashboardDaemon, **login: str) -> Any:
    open_logged_in(page, daemon, "#/servers/game", **login)
    page.get_by_role("tab", name="Backups").click()
    panel = page.locator(".panel-backups")
    expect(panel.locator(".muted:text-is('Loading…')")).to_have_count(0)
    return panel


def _back_up(page: Any, panel: Any, note: str) -> Any:
    """Press Back up now with ``note``; returns the new (only) row once listed."""
    panel.get_by_label("Note (optional)").fill(note)
    panel.get_by_role("button", name="Back up now").click()
    row = panel.locator("tbody tr")
    expect(row).to_have_count(1, timeout=60_000)
    expect(panel.get_by_role("progressbar")).to_be_hidden()
    return row


def _add_friend(daemon: DashboardDaemon, token: str, rights: list[str]) -> None:
    response = httpx.post(
        daemon.admin + "/accounts/",
        json={"username": "finn", "password": FRIEND_PASSWORD, "flags": ""},
        auth=("admin", ADMIN_PASSWORD),
        timeout=15,
    )
    response.raise_for_status()
    share = {"server": "game", "account": "finn", "rights": rights}
    daemon.api("/api/server_share_set", share, token)


def test_owner_backs_up_downloads_restores_and_deletes(
    dashboard: DashboardDaemon, make_page: Any, tmp_path: Path
) -> None:
    token, root = _setup(dashboard)
    page = make_page()
    page.add_init_script(RECORD_PROGRESS)
    panel = _open_backups(page, dashboard)
    expect(panel.get_by_text("No backups yet.")).to_be_visible()
    expect(panel.locator(".backup-quota")).to_contain_text("Backups use 0 B")
    assert_accessible(page)

    row = _back_up(page, panel, "before the 1.21 update")
    # The bar showed while it ran (its values: test_progress_bar_values).
    bars = page.evaluate("window.backupBars")
    assert bars, "the progress bar never showed"
    assert all(v is None or 0 <= int(v) <= 100 for v in bars), bars
    expect(row.locator("td").nth(4)).to_have_text("before the 1.21 update")
    expect(row.locator("td").nth(3)).to_have_text("admin")
    assert int(row.locator("td").nth(2).inner_text()) >= 2  # the files archived
    sha = row.locator("abbr").get_attribute("title")
    assert sha is not None
    assert len(sha) == 64
    expect(row.locator("abbr")).to_have_text(f"{sha[:12]}…")
    expect(panel.locator(".backup-quota")).not_to_contain_text("Backups use 0 B")
    assert_accessible(page)
    page.locator(".toast-close").click()
    shot(page, "backups-list")

    # Download: the bytes are the archive the row describes.
    with page.expect_download() as download:
        row.get_by_role("button", name="Download").click()
    saved = tmp_path / "backup.bin"
    download.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == sha
    assert download.value.suggested_filename.startswith("game-")
    expect(page.locator(".toast").last).to_contain_text("Downloaded game-")

    # Restore: refused while the server runs, with the reason on the page.
    restore = row.get_by_role("button", name="Restore")
    expect(restore).to_be_disabled()
    expect(panel.locator("#backup-restore-note")).to_contain_text(
        "Restore needs the server stopped: it is running now."
    )
    assert_accessible(page)

    # Once stopped, the restore brings the backed-up files back.
    (root / "world" / "notes.txt").write_text("a world gone wrong\n")
    (root / "world" / "level.dat").unlink()
    dashboard.api("/api/server_stop", {"server": "game"}, token)
    expect(restore).to_be_enabled(timeout=30_000)
    expect(panel.locator("#backup-restore-note")).to_be_hidden()
    restore.click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("The server must be stopped")
    expect(dialog).to_contain_text("replaced")
    assert_accessible(page)
    dialog.get_by_role("button", name="Cancel").click()
    expect(restore).to_be_focused()
    assert (root / "world" / "notes.txt").read_text() == "a world gone wrong\n"
    restore.click()
    page.locator("dialog[open]").get_by_role("button", name="Restore").click()
    expect(page.locator(".toast").last).to_contain_text("restored", timeout=60_000)
    assert (root / "world" / "notes.txt").read_text() == "the original world\n"
    assert (root / "world" / "level.dat").stat().st_size == 3 * 1024 * 1024
    expect(panel.locator("#backup-error")).to_be_hidden()

    # Delete asks first.
    row.get_by_role("button", name="Delete").click()
    expect(page.locator("dialog[open]")).to_contain_text("cannot be undone")
    page.locator("dialog[open]").get_by_role("button", name="Delete").click()
    expect(panel.get_by_text("No backups yet.")).to_be_visible()
    expect(panel.locator(".backup-quota")).to_contain_text("Backups use 0 B")
    assert_accessible(page)


def test_a_refusal_shows_the_daemons_words(dashboard: DashboardDaemon, make_page: Any) -> None:
    """A backup deleted from another page meanwhile: deleting it here shows the daemon's
    refusal next to the list, and the list is read again."""
    _setup(dashboard)
    page = make_page()
    panel = _open_backups(page, dashboard)
    row = _back_up(page, panel, HOSTILE_NOTE)
    # The note is text, never markup.
    expect(row.locator("td").nth(4)).to_have_text(HOSTILE_NOTE)
    assert page.title() != "1"
    other = make_page()
    other_panel = _open_backups(other, dashboard)
    other_panel.locator("tbody tr").get_by_role("button", name="Delete").click()
    other.locator("dialog[open]").get_by_role("button", name="Delete").click()
    expect(other_panel.get_by_text("No backups yet.")).to_be_visible()

    row.get_by_role("button", name="Delete").click()
    page.locator("dialog[open]").get_by_role("button", name="Delete").click()
    error = panel.locator("#backup-error")
    expect(error).to_be_visible()
    expect(error).to_have_attribute("role", "alert")
    expect(error).not_to_have_text("")
    expect(panel.get_by_text("No backups yet.")).to_be_visible()
    assert_accessible(page)


def test_grantee_sees_the_list_without_changing_it(
    dashboard: DashboardDaemon, make_page: Any, tmp_path: Path
) -> None:
    token, _root = _setup(dashboard)
    admin_page = make_page()
    admin_panel = _open_backups(admin_page, dashboard)
    row = _back_up(admin_page, admin_panel, "nightly")
    sha = row.locator("abbr").get_attribute("title")
    _add_friend(dashboard, token, ["console"])

    # The console alone: no Backups tab (a backup is every file of the server).
    page = make_page()
    open_logged_in(page, dashboard, "#/servers/game", username="finn", password=FRIEND_PASSWORD)
    expect(page.get_by_role("tab", name="Console")).to_be_visible()
    expect(page.get_by_role("tab", name="Backups")).to_have_count(0)

    # With files: the list and the downloads, nothing that changes them.
    share = {"server": "game", "account": "finn", "rights": ["console", "files"]}
    dashboard.api("/api/server_share_set", share, token)
    page = make_page()
    panel = _open_backups(page, dashboard, username="finn", password=FRIEND_PASSWORD)
    friend_row = panel.locator("tbody tr")
    expect(friend_row).to_have_count(1)
    expect(friend_row).to_contain_text("nightly")
    expect(panel.get_by_text("Only the owner of this server or an ADMIN")).to_be_visible()
    expect(panel.get_by_role("button", name="Back up now")).to_have_count(0)
    expect(panel.get_by_label("Note (optional)")).to_have_count(0)
    expect(friend_row.get_by_role("button", name="Restore")).to_have_count(0)
    expect(friend_row.get_by_role("button", name="Delete")).to_have_count(0)
    assert_accessible(page)
    shot(page, "backups-grantee")
    with page.expect_download() as download:
        friend_row.get_by_role("button", name="Download").click()
    saved = tmp_path / "friend.bin"
    download.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == sha


def test_a_backup_under_way_shows_after_a_reload(browser: Any, tmp_path: Path) -> None:
    """A backup started elsewhere (here over HTTP) while the page was closed: the page
    asks for its progress when it opens, shows the bar and holds Back up now, and lists
    the backup once it is done. The game's save command is given long enough to see it."""
    daemon = start_dashboard_daemon(tmp_path / "data", LEOSUITE_BACKUPS_COMMAND_WAIT="30")
    context = None
    try:
        token, _root = _setup(daemon)
        _wait_running(daemon, token)
        outcome: list[Any] = []

        def back_up() -> None:
            try:
                response = httpx.post(
                    daemon.http + "/api/server_backup_create",
                    json={"server": "game"},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=120,  # it answers once the backup is complete
                )
                response.raise_for_status()
                outcome.append(response.json())
            except httpx.HTTPStatusError as exc:
                outcome.append(f"{exc}: {exc.response.text}")
            except httpx.HTTPError as exc:
                outcome.append(repr(exc))

        worker = threading.Thread(target=back_up, daemon=True)
        worker.start()
        for _ in range(600):
            status = daemon.api("/api/server_backup_status", {"server": "game"}, token)
            if status["phase"] == "commands" or outcome:
                break
            time.sleep(0.05)
        assert status["running"], outcome
        assert status["phase"] == "commands", status

        context, page = new_page(browser, daemon)
        panel = _open_backups(page, daemon)
        bar = panel.get_by_role("progressbar")
        expect(bar).to_be_visible()
        expect(panel.locator(".backup-progress")).to_contain_text(
            "Running the commands before the backup"
        )
        expect(panel.get_by_role("button", name="Back up now")).to_be_disabled()
        assert_accessible(page)
        shot(page, "backups-progress")

        expect(panel.locator("tbody tr")).to_have_count(1, timeout=120_000)
        expect(bar).to_be_hidden()
        expect(panel.get_by_role("button", name="Back up now")).to_be_enabled()
        worker.join(60)
        [record] = outcome
        assert isinstance(record, dict)
        expect(panel.locator("tbody tr abbr")).to_have_attribute("title", record["sha256"])
        page.problems.check()
    finally:
        if context is not None:
            context.close()
        stop_dashboard_daemon(daemon)


SHOW_PROGRESS = """async (steps) => {
  const { progressBox } = await import("/ui/js/backups-progress.js");
  const box = progressBox("game");
  document.querySelector("#view").append(box.el);
  const bar = box.el.querySelector("[role=progressbar]");
  const seen = [];
  for (const step of steps) {
    box.show(step);
    seen.push({
      hidden: Boolean(bar.closest("[hidden]")),
      now: bar.getAttribute("aria-valuenow"),
      text: bar.getAttribute("aria-valuetext"),
      label: box.el.querySelector(".backup-progress-label").textContent,
      running: box.running,
    });
  }
  return seen;
}"""


def test_progress_bar_values(dashboard: DashboardDaemon, make_page: Any) -> None:
    """What the bar says for each progress report, hostile numbers included."""
    page = make_page()
    open_logged_in(page, dashboard, "#/servers")
    seen = page.evaluate(
        SHOW_PROGRESS,
        [
            {"phase": "commands", "done_bytes": 0, "total_bytes": 0},
            {"phase": "archiving", "done_bytes": 0, "total_bytes": 0},
            {"phase": "archiving", "done_bytes": 512, "total_bytes": 2048},
            {"phase": "archiving", "done_bytes": 9999, "total_bytes": 2048},
            {"phase": "archiving", "done_bytes": "x", "total_bytes": -5},
            {"phase": "restoring", "done_bytes": 1024, "total_bytes": 1024},
            {"phase": "<b>odd</b>", "done_bytes": 1, "total_bytes": 2},
            {"phase": "archiving", "done_bytes": 1, "total_bytes": 4},
            {"phase": "done", "done_bytes": 4, "total_bytes": 4},
        ],
    )
    assert [s["now"] for s in seen] == [None, None, "25", "100", None, "100", None, "25", None]
    assert [s["hidden"] for s in seen] == [False] * 6 + [True, False, True]
    assert [s["running"] for s in seen] == [True] * 6 + [False, True, False]
    assert seen[0]["label"] == "Running the commands before the backup…"
    assert seen[2]["text"] == "25% (512 B of 2.0 KiB)"
    assert seen[2]["label"] == "Archiving the server's files: 25% (512 B of 2.0 KiB)"
    assert seen[5]["label"].startswith("Restoring the backup: 100%")
    expect(page.locator(".backup-progress + [role=status]")).to_have_text("game: finished.")

"""The recipes of docs/backup.md and docs/troubleshooting.md, run as written against a
real daemon: an online backup of the store restores into a working daemon, and a ban
on one's own address is lifted from the store and a reload."""

from __future__ import annotations

import re
import shutil
import sqlite3
import sys
from pathlib import Path

import httpx
import pytest
import trio

from tests.helpers.daemon_process import PASSWORD, api_at, base_env, serving

DOCS = Path(__file__).resolve().parents[2] / "docs"
FAST_DEMO = {"ready_delay": 0.1, "player_interval": 0}


def backup_program() -> str:
    """The Python program backup.md gives for an online backup (``python -c '...'``)."""
    found = re.search(r"python -c \\\n\s*'([^']+)'", (DOCS / "backup.md").read_text())
    assert found is not None, "backup.md lost its python -c recipe"
    return found.group(1)


def sql_of(page: str, verb: str) -> str:
    """The SQL statement of a ``sqlite3 ... "VERB ..."`` line of a page."""
    found = re.search(rf'"({verb} [^"]+)"', (DOCS / page).read_text())
    assert found is not None, f"{page} lost its {verb} statement"
    return found.group(1)


async def leosuite(*argv: str) -> None:
    result = await trio.run_process(
        [sys.executable, "-m", "leosuite", *argv],
        env=base_env(),
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert result.returncode == 0, (argv, result.stderr)


@pytest.mark.sqlite_only  # the SQLite file's recipe
async def test_an_online_backup_restores_into_a_working_daemon(tmp_path: Path) -> None:
    copy = tmp_path / "backups" / "leosuite.db"
    for folder in (copy.parent, tmp_path / "live", tmp_path / "restored" / "data"):
        folder.mkdir(parents=True)
    with trio.fail_after(120):
        async with serving(tmp_path / "live") as live:
            endpoints = await live.wait_generation(0)
            async with api_at(endpoints["http"]) as api:
                await api.create("world1", "demo-game", FAST_DEMO)
                await api.ok("server_start", {"server": "world1"})
                await api.wait_status("world1", "running")
                # while the daemon runs and writes, as backup.md says
                store = live.data_dir / "leosuite.db"
                program = backup_program()
                await trio.run_process([sys.executable, "-c", program, str(store), str(copy)])
                await api.create("after-the-copy", "demo-game", FAST_DEMO)
            assert await live.terminate() == 0
        check = sqlite3.connect(copy)
        try:
            assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        finally:
            check.close()
        assert not copy.with_name("leosuite.db-wal").exists()

        shutil.copy2(copy, tmp_path / "restored" / "data" / "leosuite.db")
        async with serving(tmp_path / "restored") as again:
            endpoints = await again.wait_generation(0)
            async with api_at(endpoints["http"]) as api:  # the account came back
                assert (await api.ok("server_list", {}))["servers"] == ["world1"]
            assert await again.terminate() == 0


@pytest.mark.sqlite_only  # the SQLite file's recipe
async def test_a_ban_on_your_own_address_is_lifted_from_the_store(tmp_path: Path) -> None:
    auth = ("admin", PASSWORD)
    with trio.fail_after(120):
        async with serving(tmp_path) as served:
            endpoints = await served.wait_generation(0)
            async with httpx.AsyncClient(base_url=endpoints["admin"], auth=auth) as admin:
                added = await admin.post("/banlist/", json={"ip": "127.0.0.1"})
                assert added.status_code == 200, added.text
                assert added.json()["appliesToYou"] is True
                refused = await admin.get("/status/")
                assert refused.status_code == 403
                assert refused.json()["message"] == "your address is banned"

                # troubleshooting.md: look the ban up, delete it, reload
                store = sqlite3.connect(served.data_dir / "leosuite.db", timeout=5)
                try:
                    listed = store.execute(sql_of("troubleshooting.md", "SELECT")).fetchall()
                    assert [row[1] for row in listed] == ["127.0.0.1"]
                    ban_id = str(listed[0][0])
                    delete = re.sub(r"\d+$", ban_id, sql_of("troubleshooting.md", "DELETE"))
                    with store:
                        store.execute(delete)
                finally:
                    store.close()
                assert (await admin.get("/status/")).status_code == 403  # until the reload
                await leosuite("reload", "--data-dir", str(served.data_dir))
                await served.wait_generation(1)
                answered = await admin.get("/status/")
                assert answered.status_code == 200, answered.text
            assert await served.terminate() == 0

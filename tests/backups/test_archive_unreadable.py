"""A file or directory the daemon cannot read stops a backup with an error that names
it: the engine in a child process without the capabilities that let root read anything,
and a whole daemon run so, whose answer and audit say which file and what to do."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest
import trio

from tests.helpers.daemon_process import api_at, serving
from tests.helpers.servers import FAST_DEMO
from tests.helpers.store import store_sql

# Root reads anything unless these capabilities are dropped before the exec.
DROP = "--bounding-set=-dac_override,-dac_read_search"

ENGINE = """
import sys, trio
from pathlib import Path
from leosuite.backups.archive import UnreadableFile, create_archive

async def main():
    try:
        await create_archive(Path(sys.argv[1]), Path(sys.argv[2]))
    except UnreadableFile as exc:
        print(exc.message)
        return
    print("archived")

trio.run(main)
"""


def audit_messages_of(data_dir: Path) -> list[str]:
    """The audit log's messages about servers, oldest first."""
    rows = store_sql(data_dir, "SELECT message FROM audit_log WHERE topic = 'server' ORDER BY id")
    return [message for (message,) in rows]


def without_read_override() -> list[str]:
    """The argv prefix that runs a program unable to read what its modes forbid."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: root would read every file")
    return [setpriv, DROP, "--"]


async def archive_in_child(src: Path, dest: Path) -> str:
    argv = [*without_read_override(), sys.executable, "-c", ENGINE, str(src), str(dest)]
    done = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().strip()


async def test_the_engine_names_what_it_cannot_read(tmp_path: Path) -> None:
    src = tmp_path / "server"
    (src / "world" / "region").mkdir(parents=True)
    (src / "world" / "level.dat").write_bytes(b"level")
    secret = src / "world" / "region" / "r.0.0.mca"
    secret.write_bytes(b"region")
    dest = tmp_path / "out.tar.zst"
    with trio.fail_after(60):
        assert await archive_in_child(src, dest) == "archived"
        secret.chmod(0)
        said = await archive_in_child(src, dest)
        assert said == "the file 'world/region/r.0.0.mca' cannot be read (Permission denied)"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tar.zst", "server"]
        secret.chmod(0o600)
        (src / "world" / "region").chmod(stat.S_IXUSR)  # entered, never listed
        said = await archive_in_child(src, dest)
        assert said == "the directory 'world/region' cannot be read (Permission denied)"
        (src / "world" / "region").chmod(0o700)


async def test_the_daemon_answers_and_audits_which_file(tmp_path: Path) -> None:
    prefix = without_read_override()
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\nexec " + " ".join([*prefix, sys.executable]) + ' "$@"\n')
    python.chmod(0o755)
    with trio.fail_after(120):
        async with serving(tmp_path, python=str(python)) as served:
            while (endpoints := served.endpoints()) is None:
                await trio.sleep(0.05)
            async with api_at(endpoints["http"]) as admin:
                await admin.create("game", "demo-game", FAST_DEMO)
                folder = served.data_dir / "servers" / "game"
                (folder / "session.lock").write_bytes(b"locked")
                (folder / "session.lock").chmod(0)
                refused = await admin.error("server_backup_create", {"server": "game"}, 409)
                message = refused["error_message"]
                assert "the file 'session.lock' cannot be read (Permission denied)" in message
                assert "backup_exclude" in message
                listed = await admin.ok("server_backup_list", {"server": "game"})
                assert listed["backups"] == []
                assert not [p for p in (served.data_dir / "backups").rglob("*") if p.is_file()]
            await served.terminate()
        server_messages = audit_messages_of(served.data_dir)
        assert any(
            m.startswith("backup not made: the backup stopped: the file 'session.lock'")
            for m in server_messages
        ), server_messages

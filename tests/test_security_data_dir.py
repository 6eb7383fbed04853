"""Outside systemd the daemon creates its data directory 0700 and its store 0600 (the
store's ``-wal`` and ``-shm`` files too), and the directories of each server and of its
console 0700. An existing data directory that other users may list is left as it is
with a warning; an existing store that other users may read is tightened to 0600 with
a warning. The real daemon, logged into over real HTTP."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import trio

from tests.helpers.daemon import login, make_settings, running_daemon
from tests.helpers.files import mode, usual_umask
from tests.helpers.http import api_client
from tests.helpers.servers import FAST_DEMO


@pytest.mark.sqlite_only  # the store file's modes
async def test_a_new_data_directory_and_store_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with usual_umask():
        with trio.fail_after(30):
            async with running_daemon(make_settings(data)) as daemon, api_client(daemon) as api:
                await api.create("demo", "demo-game", FAST_DEMO)
                store = data / "leosuite.db"
                assert mode(data) == 0o700
                assert mode(data / "run") == 0o700
                assert mode(store) == 0o600
                for side in ("leosuite.db-wal", "leosuite.db-shm"):
                    assert mode(data / side) == 0o600, side
                assert mode(data / "servers" / "demo") == 0o700
                assert mode(data / "logs" / "demo") == 0o700


@pytest.mark.sqlite_only  # the store file's modes
async def test_existing_loose_modes_are_reported_and_the_store_tightened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    settings = make_settings(data)
    with trio.fail_after(30):
        async with running_daemon(settings):
            pass
    os.chmod(data, 0o755)
    for name in ("leosuite.db", "leosuite.db-wal", "leosuite.db-shm"):
        if (data / name).exists():
            os.chmod(data / name, 0o644)
    caplog.set_level(logging.WARNING)
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon, daemon.http() as client:
            assert await login(client)  # the daemon works as before
            assert mode(data) == 0o755  # left as it is, with a warning
            assert mode(data / "leosuite.db") == 0o600  # tightened, with a warning
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"the data directory {data} is open to other users" in m for m in messages)
    assert any(f"{data / 'leosuite.db'} was open to other users (mode 0644)" in m for m in messages)

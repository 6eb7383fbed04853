"""No other local user can list the server names: ``servers/`` and ``logs/`` under the
data directory are made 0700 when a server is created over the API (an older daemon's
0755 is tightened, keeping only a search bit servers run as another user need)."""

from __future__ import annotations

import os
from pathlib import Path

import trio

from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.files import mode, usual_umask
from tests.helpers.http import api_client
from tests.helpers.servers import FAST_DEMO


async def test_server_and_log_directories_are_not_listable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with usual_umask():
        with trio.fail_after(30):
            async with running_daemon(make_settings(data)) as daemon, api_client(daemon) as api:
                await api.create("demo", "demo-game", FAST_DEMO)
                assert mode(data / "servers") == 0o700
                assert mode(data / "logs") == 0o700
                # Left listable by an older daemon (one with a search bit kept as such).
                os.chmod(data / "servers", 0o755)
                os.chmod(data / "logs", 0o711)
                await api.create("other", "demo-game", FAST_DEMO)
                assert mode(data / "servers") == 0o711
                assert mode(data / "logs") == 0o711

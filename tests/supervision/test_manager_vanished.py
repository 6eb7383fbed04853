"""A server whose store row is gone while its console is still open (a destroy cut off
by a SIGTERM between the two) does not make the daemon's exit fail: saving the
consoles' read indexes skips it and keeps every other server's."""

from __future__ import annotations

import sqlite3

import pytest
import trio

from leosuite.store import servers as server_table
from tests.helpers.daemon import RunningDaemon
from tests.helpers.http import api_client
from tests.helpers.servers import FAST_DEMO


async def test_saving_indexes_skips_a_server_gone_from_the_store(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            await api.create("kept", "demo-game", FAST_DEMO)
            await api.create("vanished", "demo-game", FAST_DEMO)
            await api.ok("server_start", {"server": "kept"})
            await api.wait_log("kept", b"ready")
        ctx = daemon.ctx

        def delete_row(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM servers WHERE name = 'vanished'")

        await ctx.db.call(delete_row)
        await ctx.servers.save_read_indexes()

        def index_of(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT next_read_index FROM servers WHERE name = 'kept'").fetchone()
            return int(row[0])

        assert await ctx.db.call(index_of) > 0


async def test_saving_indexes_writes_only_the_consoles_that_moved(
    daemon: RunningDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A thousand idle servers cost no thousand store writes every housekeeping pass.
    written: list[str] = []
    real = server_table.set_next_read_index

    def counted(conn: sqlite3.Connection, name: str, index: int) -> int:
        written.append(name)
        return real(conn, name, index)

    with trio.fail_after(30):
        async with api_client(daemon) as api:
            await api.create("quiet", "demo-game", FAST_DEMO)
            await api.create("talker", "demo-game", FAST_DEMO)
            await api.ok("server_start", {"server": "talker"})
            await api.wait_log("talker", b"ready")
            monkeypatch.setattr(server_table, "set_next_read_index", counted)
            await daemon.ctx.servers.save_read_indexes()
            assert sorted(written) == ["quiet", "talker"]  # nothing saved yet: both
            written.clear()
            await daemon.ctx.servers.save_read_indexes()
            assert written == []  # neither moved
            moved_from = daemon.ctx.servers.console("talker").end_index
            await api.ok("server_cmd", {"server": "talker", "command": "say moved"})
            while daemon.ctx.servers.console("talker").end_index == moved_from:
                await trio.sleep(0.05)
            await daemon.ctx.servers.save_read_indexes()
            assert written == ["talker"]

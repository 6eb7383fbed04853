"""A server whose store row is gone while its console is still open (a destroy cut off
by a SIGTERM between the two) does not make the daemon's exit fail: saving the
consoles' read indexes skips it and keeps every other server's."""

from __future__ import annotations

import sqlite3

import trio

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

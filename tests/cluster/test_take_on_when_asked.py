"""A server another node recorded for this one is taken on when a call for it arrives
first: a forwarded operation (a create through node A, then a start through A at once)
or a console token for it must not be answered 404 because this node has not read the
store since. The record is written here as another node writes it, with no event, and
this node reads the store by itself only every 30 s."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import trio

from leosuite.cluster.console_tokens import session_of
from leosuite.cluster.forward import CREDENTIAL_HEADER, NODE_HEADER
from leosuite.store import servers as server_table
from leosuite.store.tokens import hash_token
from leosuite.supervision.types import validate_settings
from tests.helpers.accounts import add_account
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import api_client, assert_error, decode_data
from tests.helpers.servers import FAST_DEMO

PATH = "/node/server_operation"
#: This node reads the store by itself twice a minute: only a call makes it look sooner.
SLOW_NODE = {"name": "node-b", "heartbeat_interval": 30.0, "heartbeat_timeout": 90.0}


async def test_a_call_for_a_server_recorded_elsewhere_takes_it_on(
    tmp_path: Path, cluster_store_url: str
) -> None:
    settings = make_settings(tmp_path / "data", store={"url": cluster_store_url}, node=SLOW_NODE)
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon:
            olga = await add_account(daemon, "olga", "HOST")
            credential = await daemon.ctx.node_credential.value(daemon.ctx.db)
            headers = {CREDENTIAL_HEADER: credential, NODE_HEADER: "node-a"}

            # The settings as a create stores them (every variable of the type resolved).
            stored = validate_settings(daemon.ctx.servers.types["demo-game"], FAST_DEMO)

            def record(name: str) -> Callable[[sqlite3.Connection], None]:
                def write(conn: sqlite3.Connection) -> None:
                    server_table.create(conn, name=name, type="demo-game", settings=stored,
                                        created_at=0.0, owner_id=olga, node="node-b")  # fmt: skip

                return write

            async with api_client(daemon, "olga") as api, daemon.http() as client:
                session = session_of(hash_token(api.token))
                await daemon.ctx.db.call(record("fresh"))
                start = {"kind": "power", "server": "fresh", "account": olga,
                         "ip": "203.0.113.9", "action": "start", "session": session}  # fmt: skip
                started = await client.post(PATH, json=start, headers=headers)
                assert started.status_code == 200, started.text
                await api.wait_status("fresh", "running")

                # A console token minted (by any node) for a server not taken on yet.
                await daemon.ctx.db.call(record("quiet"))
                token = (await api.ok("server_console_token", {"server": "quiet"}))["token"]
                body = {"server": "quiet", "readIndex": 0, "console_token": token}
                read = await client.post("/api/server_log", json=body)
                assert read.status_code == 200, read.text
                assert decode_data(read.json()) == b""  # never started: an empty console
                assert "quiet" in daemon.ctx.servers.names()

                # A name recorded for no node here stays unknown (404), however asked.
                start["server"] = "nowhere"
                assert_error(await client.post(PATH, json=start, headers=headers), 404)

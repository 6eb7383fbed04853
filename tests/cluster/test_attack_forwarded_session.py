"""A forwarded operation names the login (access token) the client used, and the
node that runs the server refuses it once that login has ended: a token logged out
on one node is not honoured through another node that has not heard of it yet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from leosuite.cluster.console_tokens import session_of
from leosuite.cluster.forward import CREDENTIAL_HEADER, NODE_HEADER
from leosuite.store.tokens import hash_token
from tests.helpers.accounts import add_account
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import api_client, assert_error
from tests.helpers.servers import FAST_DEMO

PATH = "/node/server_operation"


def command(account: int, token: str) -> dict[str, Any]:
    return {"kind": "command", "server": "game", "account": account, "ip": "203.0.113.9",
            "command": "say hi", "session": session_of(hash_token(token))}  # fmt: skip


def start(account: int, token: str) -> dict[str, Any]:
    return {"kind": "power", "server": "game", "account": account, "ip": "203.0.113.9",
            "action": "start", "session": session_of(hash_token(token))}  # fmt: skip


async def test_an_operation_of_a_login_that_ended_is_refused(tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with running_daemon(make_settings(tmp_path / "data")) as daemon:
            olga = await add_account(daemon, "olga", "HOST")
            credential = await daemon.ctx.node_credential.value(daemon.ctx.db)
            headers = {CREDENTIAL_HEADER: credential, NODE_HEADER: "a"}
            async with api_client(daemon, "olga") as api, api_client(daemon, "olga") as other:
                await api.create("game", "demo-game", FAST_DEMO)
                async with daemon.http() as client:
                    started = await client.post(PATH, json=start(olga, api.token), headers=headers)
                    assert started.status_code == 200, started.text
                    await other.wait_status("game", "running")
                    await api.ok("auth/logout", {})
                    refused = await client.post(
                        PATH, json=command(olga, api.token), headers=headers
                    )
                    assert_error(refused, 403)
                    kept = await client.post(PATH, json=command(olga, other.token), headers=headers)
                    assert kept.status_code == 204, kept.text

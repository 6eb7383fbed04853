"""A console token is worth no more than the login it was minted with: once that
access token ends (a logout, a new password, a ban), the console token is refused
and a console subscription opened with it is closed, as a logged-in session's is.
Without that, whoever stole an access token keeps reading the console through a
token-opened subscription after the owner logged out or changed the password."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from leosuite.cluster.console_tokens import claims_of
from leosuite.store.tokens import hash_token
from tests.helpers.accounts import add_account
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import api_client, assert_error
from tests.helpers.servers import FAST_DEMO
from tests.helpers.ws import ws_client


def log_body(token: str) -> dict[str, Any]:
    return {"server": "game", "readIndex": 0, "console_token": token}


async def test_a_logout_ends_the_console_tokens_minted_with_it(tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with running_daemon(make_settings(tmp_path / "data")) as daemon:
            await add_account(daemon, "olga", "HOST")
            await add_account(daemon, "hope")
            async with api_client(daemon, "olga") as olga:
                await olga.create("game", "demo-game", FAST_DEMO)
                await olga.ok(
                    "server_share_set", {"server": "game", "account": "hope", "rights": ["console"]}
                )
            async with api_client(daemon, "hope") as stolen, api_client(daemon, "hope") as kept:
                token = (await stolen.ok("server_console_token", {"server": "game"}))["token"]
                other = (await kept.ok("server_console_token", {"server": "game"}))["token"]
                # The token names the login without showing the access token's hash.
                assert hash_token(stolen.token) not in repr(claims_of(token))
                async with daemon.http() as anonymous, ws_client(daemon) as ws:
                    assert (
                        await anonymous.post("/api/server_log", json=log_body(token))
                    ).is_success
                    await ws.ok("console.subscribe", {"server": "game", "console_token": token})
                    await stolen.ok("auth/logout", {})
                    with trio.fail_after(30):
                        closed = await ws.next_push("console_closed")
                    assert closed["content"] == {"server": "game", "reason": "revoked"}
                    assert_error(await anonymous.post("/api/server_log", json=log_body(token)), 403)
                    # A token minted with another login of the account still reads.
                    assert (
                        await anonymous.post("/api/server_log", json=log_body(other))
                    ).is_success

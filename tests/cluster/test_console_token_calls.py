"""``server_console_token`` / ``server.console_token`` and the console read with the
token on the node that runs the server (here one node: the token path is the same).

A token is minted only for an account with ``console`` on the server; it reads that
server's console (HTTP ``server_log``, WebSocket ``server.log`` and ``console.subscribe``)
without a login,
and nothing else; a forged, expired or other server's token is refused, and so is one
whose account lost the right or was locked after it was minted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from leosuite.cluster.console_tokens import ConsoleClaims, sign
from leosuite.store import accounts
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import RunningDaemon, make_settings, running_daemon
from tests.helpers.http import Api, api_client, assert_error, decode_data
from tests.helpers.servers import FAST_DEMO
from tests.helpers.ws import client_socket_leak_tolerated, ws_client


async def ws_refusal(url: str, origin: bytes) -> int:
    """The status a WebSocket handshake with ``origin`` is refused with."""
    with client_socket_leak_tolerated():
        try:
            async with open_websocket_url(url, extra_headers=[(b"Origin", origin)]):
                pass
        except ConnectionRejected as exc:
            return exc.status_code
    raise AssertionError("the handshake was accepted")


def log_body(token: object, server: str = "game", **extra: Any) -> dict[str, Any]:
    return {"server": server, "readIndex": 0, "console_token": token, **extra}


async def share(api: Api, account: str, rights: list[str], server: str = "game") -> None:
    await api.ok("server_share_set", {"server": server, "account": account, "rights": rights})


async def mint(api: Api, server: str = "game") -> dict[str, Any]:
    answer: dict[str, Any] = await api.ok("server_console_token", {"server": server})
    return answer


async def expired_token(daemon: RunningDaemon, account: int) -> str:
    """A token signed with the real key whose lifetime has passed."""
    ctx = daemon.ctx
    now = ctx.now()
    kid, key = await ctx.console_keys.signing_key(ctx.db, now, 86400.0)
    node = ctx.settings.node.name
    claims = ConsoleClaims(
        server="game", node=node, account=account, rights=("console",), expires=now - 1, kid=kid
    )
    return sign(claims, key)


async def test_minting_needs_the_console_right(tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with running_daemon(make_settings(tmp_path / "data")) as daemon:
            await add_account(daemon, "olga", "HOST")
            for name in ("sam", "hope", "stranger"):
                await add_account(daemon, name)
            async with api_client(daemon, "olga") as olga:
                await olga.create("game", "demo-game", FAST_DEMO)
                await share(olga, "sam", ["commands", "power", "files", "settings"])
                await share(olga, "hope", ["console"])
                token = await mint(olga)
                assert set(token) == {"token", "node", "http_url", "ws_url", "expires_at"}
                assert token["node"] == daemon.ctx.settings.node.name
            async with api_client(daemon, "sam") as sam:
                assert_error(await sam.post("server_console_token", {"server": "game"}), 403)
            async with api_client(daemon, "stranger") as stranger:
                for name in ("game", "nope"):
                    answer = await stranger.post("server_console_token", {"server": name})
                    assert_error(answer, 404)
                for body in ({"server": "../x"}, {"server": 1}, {}, {"server": "game", "x": 1}):
                    assert_error(await stranger.post("server_console_token", body), 400)
            async with api_client(daemon, "hope") as hope:
                assert (await mint(hope))["node"] == daemon.ctx.settings.node.name
                foreign = await hope.client.post(
                    "/api/server_console_token",
                    json={"server": "game"},
                    headers={"Authorization": f"Bearer {hope.token}", "Host": "evil.example"},
                )
                assert foreign.status_code == 421
            async with daemon.http() as anonymous:
                refused = await anonymous.post("/api/server_console_token", json={"server": "game"})
                assert_error(refused, 403)
            async with ws_client(daemon) as ws:
                await ws.login("sam", PASSWORD)
                assert (await ws.call("server.console_token", {"server": "game"}))[
                    "status_code"
                ] == 2
                await ws.ok("logout")
                await ws.login("hope", PASSWORD)
                answer = await ws.ok("server.console_token", {"server": "game"})
                assert answer["node"] == daemon.ctx.settings.node.name


async def test_the_token_reads_the_console_and_nothing_else(tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with running_daemon(make_settings(tmp_path / "data")) as daemon:
            await add_account(daemon, "olga", "HOST")
            hope_id = await add_account(daemon, "hope")
            async with api_client(daemon, "olga") as olga:
                await olga.create("game", "demo-game", FAST_DEMO)
                await olga.create("other", "demo-game", FAST_DEMO)
                await olga.ok("server_start", {"server": "game"})
                await olga.wait_status("game", "running")
                await share(olga, "hope", ["console"])
                await share(olga, "hope", ["console"], server="other")
                async with api_client(daemon, "hope") as hope:
                    token = (await mint(hope))["token"]
                    other = (await mint(hope, "other"))["token"]
                async with daemon.http() as anonymous:
                    read = await anonymous.post("/api/server_log", json=log_body(token))
                    assert read.status_code == 200, read.text
                    assert decode_data(read.json())
                    # A token's read waits at most the 5 s between store checks, not
                    # the 30 s asked (a right taken away meanwhile is seen at the next).
                    end = read.json()["nextReadIndex"]
                    with trio.fail_after(20):
                        idle = await anonymous.post(
                            "/api/server_log", json=log_body(token, readIndex=end, wait=30)
                        )
                    assert idle.status_code == 200, idle.text
                    # Another server's token, a forged or expired one: refused.
                    refused = [
                        log_body(other),
                        log_body(token, server="other"),
                        log_body(token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")),
                        log_body(await expired_token(daemon, hope_id)),
                        log_body(""),
                        log_body("lct1." + "A" * 5000 + ".x"),
                        log_body(token.replace("lct1", "lct2", 1)),
                    ]
                    for body in refused:
                        assert_error(await anonymous.post("/api/server_log", json=body), 403)
                    assert_error(await anonymous.post("/api/server_log", json=log_body(7)), 400)
                    # It is no access token: no other call takes it.
                    for path in ("server_status", "server_cmd", "server_stop"):
                        answer = await anonymous.post(
                            f"/api/{path}",
                            json={"server": "game", "command": "x"}
                            if path == "server_cmd"
                            else {"server": "game"},
                            headers={"Authorization": f"Bearer {token}"},
                        )
                        assert_error(answer, 403)
                # WebSocket: console.subscribe with the token, no login.
                async with ws_client(daemon) as ws:
                    answer = await ws.ok("console.subscribe", {"server": "game", "from": 0,
                                                               "console_token": token})  # fmt: skip
                    assert answer == {"server": "game", "readIndex": 0}
                    push = await ws.next_push("console_output")
                    assert push["content"]["server"] == "game"
                    # server.log reads it with the token too (older output), no login.
                    page = {"server": "game", "readIndex": 0, "console_token": token}
                    assert decode_data(await ws.ok("server.log", page))
                    for kind in ("server.status", "server.stop"):
                        content = {"server": "game", "console_token": token}
                        assert (await ws.call(kind, content))["status_code"] in (2, 4)
                    for hostile in (other, "", token + "\u0000", "x" * 10000):
                        content = {**page, "console_token": hostile}
                        assert (await ws.call("server.log", content))["status_code"] == 2
                    other_page = {"server": "other", "readIndex": 0}
                    assert (await ws.call("server.log", other_page))["status_code"] == 2
                    wrong = {**other_page, "console_token": token}
                    assert (await ws.call("server.log", wrong))["status_code"] == 2
                    bad_type = {**other_page, "console_token": 5}
                    assert (await ws.call("server.log", bad_type))["status_code"] == 11
                    bad = await ws.call("console.subscribe", {"server": "other",
                                                              "console_token": token})  # fmt: skip
                    assert bad["status_code"] == 2
                    plain = await ws.call("console.subscribe", {"server": "other"})
                    assert plain["status_code"] == 2  # no login, no token
                    for hostile, status in (
                        (5, 11),
                        (None, 2),
                        ("x" * 10000, 2),
                        (token + "\u0000", 2),
                        (["lct1"], 11),
                    ):
                        content = {"server": "other", "console_token": hostile}
                        answer = await ws.call("console.subscribe", content)
                        assert answer["status_code"] == status, (hostile, answer)
                # A foreign Origin never reaches the call.
                assert await ws_refusal(daemon.endpoints.ws + "/", b"http://evil.example") == 403


async def test_a_revoke_or_lock_after_minting_wins(tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with running_daemon(make_settings(tmp_path / "data")) as daemon:
            await add_account(daemon, "olga", "HOST")
            hope_id = await add_account(daemon, "hope")
            await add_account(daemon, "lou")
            async with api_client(daemon, "olga") as olga:
                await olga.create("game", "demo-game", FAST_DEMO)
                await share(olga, "hope", ["console"])
                await share(olga, "lou", ["console"])
                async with api_client(daemon, "hope") as hope:
                    token = (await mint(hope))["token"]
                async with api_client(daemon, "lou") as lou:
                    lou_token = (await mint(lou))["token"]
                async with daemon.http() as anonymous:
                    assert (
                        await anonymous.post("/api/server_log", json=log_body(token))
                    ).is_success
                    # A subscription with the token ends when the right goes.
                    async with ws_client(daemon) as ws:
                        await ws.ok("console.subscribe", {"server": "game",
                                                          "console_token": lou_token})  # fmt: skip
                        await share(olga, "lou", [])
                        closed = await ws.next_push("console_closed")
                        assert closed["content"] == {"server": "game", "reason": "revoked"}
                    assert_error(
                        await anonymous.post("/api/server_log", json=log_body(lou_token)), 403
                    )
                    # A lock written to the store (as another node writes it) wins too.
                    await daemon.ctx.db.call(lambda conn: accounts.set_locked(conn, hope_id, True))
                    assert_error(await anonymous.post("/api/server_log", json=log_body(token)), 403)

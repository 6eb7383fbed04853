"""``POST /node/server_operation``: the call another node forwards a power action or a
console command with. Without the node-to-node credential nothing is done (no header,
a wrong one, a user's bearer token, a page's Origin, a foreign Host); with it, the
account it names is checked against the store as if it had called this node itself,
and the operation is audited as coming through the forwarding node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trio

from leosuite.cluster.forward import CREDENTIAL_HEADER, CREDENTIAL_KEY, NODE_HEADER
from leosuite.store import accounts, kv
from tests.helpers.accounts import add_account
from tests.helpers.admin_accounts import server_audit
from tests.helpers.daemon import RunningDaemon, make_settings, running_daemon
from tests.helpers.http import api_client, assert_error
from tests.helpers.servers import FAST_DEMO

PATH = "/node/server_operation"


async def credential(daemon: RunningDaemon) -> str:
    value: str = await daemon.ctx.node_credential.value(daemon.ctx.db)
    return value


async def call(
    client: httpx.AsyncClient, body: Any, headers: dict[str, Any] | None = None
) -> httpx.Response:
    return await client.post(PATH, json=body, headers=headers or {})


def power(account: int, action: str = "start", server: str = "game") -> dict[str, Any]:
    return {"kind": "power", "server": server, "account": account, "ip": "203.0.113.9",
            "action": action}  # fmt: skip


async def test_without_the_credential_nothing_is_done(tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with running_daemon(make_settings(tmp_path / "data")) as daemon:
            olga = await add_account(daemon, "olga", "HOST")
            async with api_client(daemon, "olga") as api:
                await api.create("game", "demo-game", FAST_DEMO)
                user_token = api.token
            good = await credential(daemon)
            async with daemon.http() as client:
                refusals: list[dict[str, Any]] = [
                    {},
                    {CREDENTIAL_HEADER: ""},
                    {CREDENTIAL_HEADER: good[:-1]},
                    {CREDENTIAL_HEADER: good + "x"},
                    {CREDENTIAL_HEADER: b"\xe9" * 10},
                    {"Authorization": f"Bearer {user_token}"},
                    {"Authorization": f"Bearer {good}"},
                    {CREDENTIAL_HEADER: user_token},
                    {CREDENTIAL_HEADER: good, "Origin": "https://evil.example"},
                    {CREDENTIAL_HEADER: good, "Origin": daemon.endpoints.http},
                ]
                for headers in refusals:
                    response = await call(client, power(olga), headers)
                    assert assert_error(response, 403)["error_type"] == "forbidden", headers
                foreign = await call(
                    client, power(olga), {CREDENTIAL_HEADER: good, "Host": "evil.example"}
                )
                assert foreign.status_code == 421
            assert daemon.ctx.servers.supervisor("game").state.value == "stopped"
            # The stored credential is the one compared; a wrong one is refused even
            # when it merely differs from what this daemon cached.
            stored = await daemon.ctx.db.call(lambda conn: kv.get(conn, CREDENTIAL_KEY))
            assert stored == good
            entries = [e.message for e in await daemon.ctx.db.call(_audit_messages)]
            assert any("refused a node call" in m for m in entries)


def _audit_messages(conn: Any) -> list[Any]:
    from leosuite.store import audit as audit_table

    return audit_table.page(conn, newest_first=False, limit=1000)


async def test_the_named_account_is_checked_against_the_store(tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with running_daemon(make_settings(tmp_path / "data")) as daemon:
            olga = await add_account(daemon, "olga", "HOST")
            sam = await add_account(daemon, "sam")
            stranger = await add_account(daemon, "stranger")
            async with api_client(daemon, "olga") as api:
                await api.create("game", "demo-game", FAST_DEMO)
                await api.ok(
                    "server_share_set", {"server": "game", "account": "sam", "rights": ["commands"]}
                )
            headers = {CREDENTIAL_HEADER: await credential(daemon), NODE_HEADER: "a"}
            async with daemon.http() as client:
                # Those who may not see it get 404, a grantee without the right 403.
                assert_error(await call(client, power(stranger), headers), 404)
                assert_error(await call(client, power(sam), headers), 403)
                assert_error(await call(client, power(10**9), headers), 403)
                # Hostile values: an unknown server, action or field, a wrong type.
                assert_error(await call(client, power(olga, server="nope"), headers), 404)
                assert_error(await call(client, power(olga, server="../x"), headers), 404)
                assert_error(await call(client, power(olga, action="explode"), headers), 400)
                assert_error(await call(client, {**power(olga), "extra": 1}, headers), 400)
                assert_error(await call(client, {**power(olga), "account": "1"}, headers), 400)
                assert_error(await call(client, {**power(olga), "kind": "destroy"}, headers), 400)
                raw = await client.post(
                    PATH, content=b"{", headers={**headers, "Content-Type": "application/json"}
                )
                assert_error(raw, 400)
                # The owner starts it; the grantee types into it; both are audited.
                started = await call(client, power(olga), headers)
                assert started.status_code == 200, started.text
                assert started.json()["server"] == "game"
                command = {"kind": "command", "server": "game", "account": sam,
                           "ip": "203.0.113.9", "command": "say hi"}  # fmt: skip
                typed = await call(client, command, headers)
                assert typed.status_code == 204, typed.text
                # A lock made in the store (as another node makes it) is seen at once.
                await daemon.ctx.db.call(lambda conn: accounts.set_locked(conn, sam, True))
                assert_error(await call(client, command, headers), 403)
            messages = [e.message for e in await server_audit(daemon, "game")]
            assert any(m.startswith("start") and m.endswith("(through node a)") for m in messages)
            assert "command: say hi (through node a)" in messages

"""Access tokens and the chat (issue 13, items 2 and 11), against ``leosuite serve`` run
as a child process: a token is never written to the audit log or to stderr, whatever
refuses the request that carried it; the chat takes the token from
``Sec-WebSocket-Protocol`` (``?token=`` still works); and every way a token ends (the
CLI locking the account or changing its password on the store, a logout) closes the
chat connection that uses it within a second."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from tests.helpers.chat import Chat, refused_at
from tests.helpers.chat_tokens import ServeProcess, closed_within, serve_process, token_chat
from tests.helpers.daemon import base_env, login
from tests.helpers.ws import client_socket_leak_tolerated

ADMIN_PASSWORD = "process-admin-pw"
PASSWORD = "someone-else-pw"

pytestmark = pytest.mark.slow


def _env(**extra: str) -> dict[str, str]:
    return base_env(LEOSUITE_ADMIN_PASSWORD=ADMIN_PASSWORD, **extra)


async def _token(daemon: ServeProcess, username: str, password: str) -> str:
    async with httpx.AsyncClient(base_url=daemon.endpoints["http"], timeout=10) as http:
        return await login(http, username, password)


async def _add_account(daemon: ServeProcess, username: str) -> None:
    await daemon.cli("user", "add", username, "--password-stdin", stdin=PASSWORD.encode())


async def _rejected(url: str, **kwargs: object) -> int:
    """A handshake the listener refuses; its HTTP status."""
    with client_socket_leak_tolerated(), pytest.raises(ConnectionRejected) as refused:
        async with open_websocket_url(url, **kwargs):  # type: ignore[arg-type]
            pass
    return refused.value.status_code


def chat_url_of(ws: str, nick: str, token: str) -> str:
    return f"{ws}/chat/login/{quote(nick, safe='')}?token={token}"


async def _hold_guest(ws: str, nick: str, *, task_status: trio.TaskStatus[None]) -> None:
    async with open_websocket_url(f"{ws}/chat/login/{nick}") as guest:
        await guest.get_message()
        task_status.started()
        await trio.sleep_forever()


async def test_no_refusal_logs_a_token(tmp_path: Path) -> None:
    env = _env(LEOSUITE_DAEMON_LOG_LEVEL="debug", LEOSUITE_WS_MAX_CONNECTIONS_PER_IP="3")

    async def body() -> None:
        async with serve_process(tmp_path, env) as daemon:
            ws, http_url, admin_url = (daemon.endpoints[k] for k in ("ws", "http", "admin"))
            await _add_account(daemon, "mallory")
            token = await _token(daemon, "admin", ADMIN_PASSWORD)
            other = await _token(daemon, "mallory", PASSWORD)
            # the chat: another account's nick, a bad nick (token in the URL or the header)
            assert "another account" in await refused_at(chat_url_of(ws, "mallory", token))
            with client_socket_leak_tolerated():
                async with open_websocket_url(
                    f"{ws}/chat/login/mallory", subprotocols=[f"leosuite.token.{token}"]
                ) as refused:
                    assert "another account" in (await refused.get_message())
            assert "nick" in await refused_at(chat_url_of(ws, "bad nick", token))
            # the listener: a foreign Origin, an unknown path, a cap on connections
            evil = [(b"Origin", b"http://evil.example")]
            assert await _rejected(chat_url_of(ws, "admin", token), extra_headers=evil) == 403
            assert await _rejected(f"{ws}/?token={token}", extra_headers=evil) == 403
            assert await _rejected(f"{ws}/nowhere?token={token}") == 404
            async with trio.open_nursery() as guests:
                for nick in ("g1", "g2", "g3"):
                    await guests.start(_hold_guest, ws, nick)
                assert await _rejected(chat_url_of(ws, "admin", token)) in (429, 503)
                guests.cancel_scope.cancel()
            # the HTTP API: no credentials, bad input, a foreign Host; the admin API
            async with httpx.AsyncClient(base_url=http_url, timeout=10) as http:
                nobody = await http.post(f"/api/server_list?token={token}", json={})
                assert nobody.status_code in (401, 403)
                bad = await http.post(
                    f"/api/auth/login?token={token}",
                    content=b"{",
                    headers={"Content-Type": "application/json"},
                )
                assert bad.status_code == 400
                foreign = await http.post(
                    f"/api/server_list?token={token}", json={}, headers={"Host": "evil.example"}
                )
                assert foreign.status_code in (401, 421)
            async with httpx.AsyncClient(base_url=admin_url, timeout=10) as admin:
                for credentials in (token + "zz", other):
                    answer = await admin.get(
                        "/accounts/", headers={"Authorization": f"Bearer {credentials}"}
                    )
                    assert answer.status_code in (401, 403)
            # the token is live: the chat takes it from the header
            async with token_chat(ws, "admin", token) as chat:
                assert chat.nick == "admin"
            # a ban of our own address, then a handshake that carries the token
            async with httpx.AsyncClient(
                base_url=admin_url, auth=("admin", ADMIN_PASSWORD), timeout=10
            ) as admin:
                ban = await admin.post("/banlist/", json={"ip": "127.0.0.1"})
                assert ban.status_code in (200, 201), ban.text
            assert await _rejected(chat_url_of(ws, "admin", token)) == 403
            assert await _rejected(f"{ws}/chat/login/admin", subprotocols=[token]) == 403
            rows = daemon.audit_rows()
            stderr = daemon.stderr
        audited = "\n".join(" ".join(str(v) for v in row) for row in rows)
        assert "WebSocket /chat/login/admin" in audited  # the ban's refusal, by its path
        assert "leosuite ready" in stderr  # its log (at the debug level) was read
        for secret in (token, other):
            assert secret not in audited
            assert secret not in stderr

    with trio.fail_after(90), client_socket_leak_tolerated():
        await body()


async def test_every_way_a_token_ends_closes_its_chat_within_a_second(tmp_path: Path) -> None:
    async def body() -> None:
        async with serve_process(tmp_path, _env()) as daemon:
            ws = daemon.endpoints["ws"]
            for name in ("carol", "dave"):
                await _add_account(daemon, name)
            dave_token = await _token(daemon, "dave", PASSWORD)
            async with token_chat(ws, "dave", dave_token) as dave:
                # the CLI locks carol on the store while the daemon runs
                async with token_chat(ws, "carol", await _token(daemon, "carol", PASSWORD)) as c:
                    await daemon.cli("user", "lock", "carol")
                    code, reason = await closed_within(c, 1.0)
                    assert code == 1008
                    assert "session ended" in reason
                await daemon.cli("user", "unlock", "carol")
                # the CLI changes carol's password
                async with token_chat(ws, "carol", await _token(daemon, "carol", PASSWORD)) as c:
                    await daemon.cli(
                        "user", "passwd", "carol", "--password-stdin", stdin=b"a-new-password-1"
                    )
                    assert (await closed_within(c, 1.0))[0] == 1008
                # dave, whose token stands, was never disturbed
                await dave.send(6)
                assert "dave" in (await dave.expect(6))["users"]
                # dave logs his token out (the HTTP API): his chat closes
                async with httpx.AsyncClient(base_url=daemon.endpoints["http"], timeout=10) as h:
                    out = await h.post(
                        "/api/auth/logout", headers={"Authorization": f"Bearer {dave_token}"}
                    )
                    assert out.status_code in (200, 204), out.text
                code, reason = await closed_within(dave, 1.0)
                assert (code, "logged out" in reason) == (1008, True)

    with trio.fail_after(90), client_socket_leak_tolerated():
        await body()


async def test_the_chat_takes_its_token_from_the_header_or_the_url(tmp_path: Path) -> None:
    async def body() -> None:
        async with serve_process(tmp_path, _env()) as daemon:
            ws = daemon.endpoints["ws"]
            token = await _token(daemon, "admin", ADMIN_PASSWORD)
            async with token_chat(ws, "ADMIN", token) as header:
                assert header.nick == "admin"  # the account's spelling
            async with open_websocket_url(chat_url_of(ws, "admin", token)) as old:
                assert '"user":"admin"' in await old.get_message()

    with trio.fail_after(60), client_socket_leak_tolerated():
        await body()


async def _registered(ws: str, nick: str, *, task_status: trio.TaskStatus[Chat]) -> None:
    """A guest that makes its nick an account (type 1), then stays connected."""
    async with open_websocket_url(f"{ws}/chat/login/{nick}") as socket:
        client = Chat(socket, nick)
        await client.expect(2, user=nick)
        await client.send(1, password=PASSWORD)
        await client.expect(1, user=nick)
        task_status.started(client)
        await trio.sleep_forever()


async def test_the_cli_ends_a_chat_registered_account_s_connection(tmp_path: Path) -> None:
    """An account made over the chat holds no token; locking it or changing its password
    on the store still closes its connection within a second."""

    async def body() -> None:
        async with serve_process(tmp_path, _env(LEOSUITE_COMMUNITY_REGISTRATION="true")) as d:
            ws = d.endpoints["ws"]
            async with trio.open_nursery() as nursery:
                stays: Chat = await nursery.start(_registered, ws, "gina")
                for nick, command in (
                    ("erin", ["user", "lock", "erin"]),
                    ("fred", ["user", "passwd", "fred", "--password-stdin"]),
                ):
                    client: Chat = await nursery.start(_registered, ws, nick)
                    await d.cli(*command, stdin=b"a-new-password-1")
                    code, reason = await closed_within(client, 1.0)
                    assert (code, "session ended" in reason) == (1008, True), reason
                # gina, whose account stands, was never disturbed
                await stays.send(6)
                assert "gina" in (await stays.expect(6))["users"]
                nursery.cancel_scope.cancel()

    with trio.fail_after(90), client_socket_leak_tolerated():
        await body()

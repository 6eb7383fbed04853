"""``http.trusted_proxies`` on the real listeners: a forwarding header names the client
only on a connection from a trusted proxy (127.0.0.1 here); a peer at another address
(127.0.0.2 and up: Linux routes all of 127.0.0.0/8 to lo) that sends one is still
banned, limited and audited as itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from leosuite.store import audit
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, login, make_settings, running_daemon
from tests.helpers.forwarded import client_from, ws_handshake, xff
from tests.helpers.security import RawHttp, netloc

PROXY = "127.0.0.1"
BANNED_HTTP = {"error_type": "forbidden", "error_message": "your address is banned"}
BANNED_ADMIN = {"status": "error", "message": "your address is banned"}


def proxied(**http: Any) -> dict[str, Any]:
    return {"trusted_proxies": [PROXY], "request_burst": 3, "request_rate": 0.01, **http}


async def ban(daemon: RunningDaemon, ip: str, **headers: str) -> dict[str, Any]:
    async with daemon.admin(auth=("admin", ADMIN_PASSWORD)) as admin:
        response = await admin.post("/banlist/", json={"ip": ip}, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def entries(daemon: RunningDaemon) -> list[audit.AuditEntry]:
    found: list[audit.AuditEntry] = await daemon.ctx.db.call(
        lambda conn: audit.page(conn, newest_first=False, limit=1000)
    )
    return found


async def test_a_forged_header_from_an_untrusted_peer_changes_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", http=proxied())
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            url = daemon.endpoints.http
            await ban(daemon, "127.0.0.2")
            await ban(daemon, "198.51.100.7")
            async with client_from(url, "127.0.0.2") as banned:
                for claim in ("198.51.100.8", PROXY, "127.0.0.3"):
                    response = await banned.get("/api/health", headers=xff(claim))
                    assert response.status_code == 403, response.text
                    assert response.json() == BANNED_HTTP
            # Claiming a banned address does not get a bystander banned either.
            async with client_from(url, "127.0.0.3") as other:
                answer = await other.get("/api/health", headers=xff("198.51.100.7"))
                assert answer.status_code == 200
                # The rate limit counts the peer, whatever address each request claims.
                statuses = [
                    (await other.get("/api/health", headers=xff(f"203.0.113.{n}"))).status_code
                    for n in range(3)
                ]
                assert statuses == [200, 200, 429]
            refused = [e for e in await entries(daemon) if "refused" in e.message]
            assert {e.user_ip for e in refused} == {"127.0.0.2", "127.0.0.3"}
            # Nor on the WebSocket listener.
            ws = daemon.endpoints.ws + "/"
            status, body = await ws_handshake(ws, source="127.0.0.2", headers=xff("198.51.100.8"))
            assert (status, body) == (403, BANNED_HTTP)
            assert (await ws_handshake(ws, source="127.0.0.3", headers=xff("198.51.100.7")))[
                0
            ] == 101


async def test_a_trusted_proxy_names_the_client(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", http=proxied())
    client, neighbour = "198.51.100.7", "198.51.100.8"
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            url = daemon.endpoints.http
            # The client's own claim (left) is ignored; the proxy's entry (right) is used.
            async with client_from(url, PROXY, headers=xff("10.9.9.9", client)) as through:
                await login(through)
            logins = [e for e in await entries(daemon) if e.message == "login"]
            assert [e.user_ip for e in logins] == [client]

            # The ban on the client's address, added from the client itself: it says so.
            added = await ban(daemon, client, **xff(client))
            assert added["appliesToYou"] is True
            assert client in added["message"]
            async with client_from(url, PROXY) as proxy:
                banned = await proxy.get("/api/health", headers=xff(client))
                assert (banned.status_code, banned.json()) == (403, BANNED_HTTP)
                forged = await proxy.get("/api/health", headers=xff(neighbour, client))
                assert forged.status_code == 403
                # The proxy's other clients, and the proxy itself, are served.
                assert (await proxy.get("/api/health", headers=xff(neighbour))).status_code == 200
                assert (await proxy.get("/api/health")).status_code == 200
                # Each client has its own request rate.
                statuses = [
                    (await proxy.get("/api/health", headers=xff("203.0.113.1"))).status_code
                    for _ in range(4)
                ]
                assert statuses == [200, 200, 200, 429]
                assert (
                    await proxy.get("/api/health", headers=xff("203.0.113.2"))
                ).status_code == 200
            async with daemon.admin(auth=("admin", ADMIN_PASSWORD)) as admin:
                refused = await admin.get("/status/", headers=xff(client))
                assert (refused.status_code, refused.json()) == (403, BANNED_ADMIN)
                assert (await admin.get("/status/", headers=xff(neighbour))).status_code == 200
            refusals = [
                e for e in await entries(daemon) if e.topic == "Ban" and "refused" in e.message
            ]
            assert {e.user_ip for e in refusals} == {client}

            ws = daemon.endpoints.ws + "/"
            assert (await ws_handshake(ws, headers=xff(client)))[0] == 403
            assert (await ws_handshake(ws, headers=xff(client, neighbour)))[0] == 101
            assert (await ws_handshake(ws + "chat/login/bob", headers=xff(client)))[0] == 403


async def test_forwarded_instead_of_x_forwarded_for(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", http=proxied(forwarded_header="Forwarded"))
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            await ban(daemon, "198.51.100.7")
            async with client_from(daemon.endpoints.http, PROXY) as proxy:
                banned = {"Forwarded": 'for="198.51.100.7:4711";proto=https'}
                assert (await proxy.get("/api/health", headers=banned)).status_code == 403
                # X-Forwarded-For is not read: a client's forged copy names nobody.
                other = {"Forwarded": "for=198.51.100.8", **xff("198.51.100.7")}
                assert (await proxy.get("/api/health", headers=other)).status_code == 200


async def test_a_trusted_proxy_is_not_capped_per_address(tmp_path: Path) -> None:
    """A proxy carries many clients: it may hold more connections than one address."""
    http = proxied(max_connections_per_ip=2, request_burst=10)
    settings = make_settings(tmp_path / "data", http=http)
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            url = daemon.endpoints.http
            held: list[RawHttp] = []
            try:
                statuses = []
                for source in [PROXY] * 4 + ["127.0.0.2"] * 3:
                    # Each is served (or refused) while every earlier one stays open.
                    held.append(await RawHttp.connect(url, source=source))
                    status, _, _ = await held[-1].get("/api/health", netloc(url))
                    statuses.append(status)
                assert statuses == [200] * 4 + [200, 200, 429]
            finally:
                for conn in held:
                    await conn.aclose()


async def test_a_trusted_proxy_is_still_capped_on_the_admin_listener(tmp_path: Path) -> None:
    """Admin clients are few: a local process that connects from the proxy's address
    gets no more admin connections than any other address."""
    settings = make_settings(tmp_path / "data", http=proxied(), admin={"max_connections_per_ip": 2})
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            url = daemon.endpoints.admin
            held: list[RawHttp] = []
            try:
                statuses = []
                for _ in range(3):
                    held.append(await RawHttp.connect(url, source=PROXY))
                    status, _, _ = await held[-1].get("/openapi.json", netloc(url))
                    statuses.append(status)
                assert statuses == [200, 200, 429]
            finally:
                for conn in held:
                    await conn.aclose()

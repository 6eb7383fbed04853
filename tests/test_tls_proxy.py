"""The daemon behind a real nginx over TLS (docs/proxy.md's site, a self-signed
certificate): the public URLs it tells clients, the client address it records (the
one nginx writes into X-Forwarded-For) and bans on that address, over HTTP and over
the WebSocket API at ``/ws/``. Clients connect to nginx from 127.0.0.2 and 127.0.0.3
(Linux routes all of 127.0.0.0/8 to lo); nginx itself reaches the daemon from
127.0.0.1, the trusted proxy."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import trio

from tests.helpers.daemon import login
from tests.helpers.forwarded import client_from, ws_handshake, xff
from tests.helpers.tls_proxy import (
    ADMIN_PASSWORD,
    PUBLIC_NAME,
    ProxiedDaemon,
    client_tls,
    proxied_daemon,
)

BANNED = {"error_type": "forbidden", "error_message": "your address is banned"}


def through(proxy: ProxiedDaemon, source: str) -> httpx.AsyncClient:
    """A client of nginx from ``source``, naming the public host as a browser would."""
    host = {"Host": f"{PUBLIC_NAME}:{proxy.port}"}
    tls = client_tls(proxy.cert)
    return client_from(f"https://127.0.0.1:{proxy.port}", source, verify=tls, headers=host)


async def logins_from(data_dir: Path) -> list[str]:
    """The client address of every ``login`` the audit log holds, once there is one."""
    while True:
        conn = sqlite3.connect(data_dir / "leosuite.db")
        try:
            rows = conn.execute(
                "SELECT user_ip FROM audit_log WHERE topic = 'auth' AND message = 'login'"
            ).fetchall()
        finally:
            conn.close()
        if rows:
            return [ip for (ip,) in rows]
        await trio.sleep(0.05)


async def test_the_daemon_behind_nginx_sees_the_clients(tmp_path: Path) -> None:
    with proxied_daemon(tmp_path) as proxy, trio.fail_after(60):
        async with through(proxy, "127.0.0.2") as alice, through(proxy, "127.0.0.3") as bob:
            config = (await alice.get("/api/auth/config")).json()
            assert config["endpoints"] == [proxy.public]
            assert config["websocket"] == f"wss://{PUBLIC_NAME}:{proxy.port}/ws/"
            page = await alice.get("/")
            assert page.status_code == 200
            csp = page.headers["Content-Security-Policy"]
            assert f"connect-src 'self' wss://{PUBLIC_NAME}:{proxy.port};" in csp

            # The login is recorded with the address nginx received it from.
            await login(alice, password=ADMIN_PASSWORD)
            assert await logins_from(proxy.data_dir) == ["127.0.0.2"]

            # A ban on that address holds through the proxy, whatever the client claims.
            async with httpx.AsyncClient(
                base_url=proxy.endpoints["admin"], auth=("admin", ADMIN_PASSWORD), timeout=10
            ) as admin:
                added = await admin.post("/banlist/", json={"ip": "127.0.0.2"})
                assert added.status_code == 200, added.text
            for claim in ({}, xff("127.0.0.3"), xff("127.0.0.1")):
                refused = await alice.get("/api/health", headers=claim)
                assert (refused.status_code, refused.json()) == (403, BANNED)
            assert (await bob.get("/api/health")).status_code == 200
            assert (await bob.get("/api/health", headers=xff("127.0.0.2"))).status_code == 200

            # A foreign name through the proxy is still refused.
            evil = await bob.get("/api/health", headers={"Host": "evil.test"})
            assert evil.status_code == 421

        # The WebSocket API and the chat at /ws/ of the public origin, over TLS.
        tls = client_tls(proxy.cert)
        page = {"Origin": proxy.public}
        for path in ("/ws/", "/ws/chat/login/guest1"):
            url = f"wss://{PUBLIC_NAME}:{proxy.port}{path}"
            accepted = await ws_handshake(url, source="127.0.0.3", headers=page, ssl_context=tls)
            assert accepted == (101, None)
            banned = await ws_handshake(url, source="127.0.0.2", headers=page, ssl_context=tls)
            assert banned == (403, BANNED)
            foreign = {"Origin": "https://evil.test"}
            refused = await ws_handshake(url, source="127.0.0.3", headers=foreign, ssl_context=tls)
            assert refused[0] == 403

"""One address cannot take the HTTP listeners for itself: at most
``http.max_connections_per_ip`` / ``admin.max_connections_per_ip`` open connections
(the one over gets a 429 in the listener's shape and is closed; other addresses are
served), and at most ``http.request_burst`` API requests at once, refilled at
``http.request_rate`` (429; an ADMIN's Bearer token and the dashboard's files are not
limited)."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.helpers.audit import audited
from tests.helpers.daemon import login, make_settings, running_daemon
from tests.helpers.http import assert_error
from tests.helpers.security import BASIC, RawHttp, assert_rooms_error, netloc


async def served(url: str, host: str, *, path: str = "/api/health", headers: str = "") -> int:
    """A fresh connection's answer to one GET (retried while the daemon has not yet
    noticed that an earlier connection closed)."""
    while True:
        client = await RawHttp.connect(url)
        try:
            status, _, _ = await client.get(path, host, headers)
        finally:
            await client.aclose()
        if status != 429:
            return status
        await trio.sleep(0.02)


async def test_connections_per_address_are_capped(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data",
        http={"max_connections_per_ip": 2},
        admin={"max_connections_per_ip": 2},
    )
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            for url, auth in ((daemon.endpoints.http, ""), (daemon.endpoints.admin, BASIC)):
                host = netloc(url)
                headers = f"Authorization: {auth}\r\n" if auth else ""
                path = "/api/health" if not auth else "/status"
                # Two idle connections from 127.0.0.1 (a slow client, or one holding them).
                held = [await RawHttp.connect(url) for _ in range(2)]
                status, _, _ = await held[0].get(path, host, headers)  # they are served
                assert status == 200
                third = await RawHttp.connect(url)
                status, answer_headers, body = await third.get(path, host, headers)
                assert status == 429
                assert answer_headers["retry-after"] == "1"
                if auth:
                    assert "too many connections" in body["message"]
                    assert body["status"] == "error"
                else:
                    assert set(body) == {"error_type", "error_message"}
                    assert body["error_type"] == "rate_limited"
                assert await third.closed()
                await third.aclose()
                # Another address is served meanwhile.
                other = await RawHttp.connect(url, source="127.0.0.2")
                status, _, _ = await other.get(path, host, headers)
                assert status == 200
                await other.aclose()
                # Closing one makes room again, at once (not after the keep-alive timeout).
                await held[1].aclose()
                with trio.fail_after(2):
                    assert await served(url, host, path=path, headers=headers) == 200
                await held[0].aclose()
            assert await audited(daemon, "connection refused: over 2 open connections")


async def test_api_requests_per_address_are_limited(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", http={"request_burst": 5, "request_rate": 0.01})
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            async with daemon.http() as client:
                token = await login(client)  # an ADMIN's token: 2 requests
                for _ in range(3):
                    assert (await client.get("/api/health")).status_code == 200
                limited = await client.get("/api/health")
                assert assert_error(limited, 429)["error_type"] == "rate_limited"
                assert limited.headers["Retry-After"] == "1"
                guess = {"username": "admin", "password": "x", "random": "r", "proof_of_works": []}
                assert_error(await client.post("/api/auth/login", json=guess), 429)
                room = {"roomName": "den", "owner": "alice", "pass": "alice-password"}
                refused = await client.post(
                    "/rooms", json={"action": "createRoom", "payload": room}
                )
                assert_rooms_error(refused, 429, "rate_limited")
                # The dashboard's files are not limited; an ADMIN's Bearer token is not.
                assert (await client.get("/")).status_code == 200
                bearer = {"Authorization": f"Bearer {token}"}
                for _ in range(10):
                    answer = await client.post("/api/server_list", json={}, headers=bearer)
                    assert answer.status_code == 200
                # A token that is not an ADMIN's does not help.
                fake = {"Authorization": "Bearer " + "0" * 64}
                assert_error(await client.post("/api/server_list", json={}, headers=fake), 429)
            # Another address has its own allowance.
            other = await RawHttp.connect(daemon.endpoints.http, source="127.0.0.2")
            status, _, _ = await other.get("/api/health", netloc(daemon.endpoints.http))
            assert status == 200
            await other.aclose()
            async with daemon.admin(headers={"Authorization": BASIC}) as admin:
                assert (await admin.get("/status")).status_code == 200  # not this listener
            assert await audited(daemon, "over http.request_rate")

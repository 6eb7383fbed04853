"""DNS rebinding: a page under ``evil.example`` that resolves to the machine reaches the
listeners with ``Host`` and ``Origin`` both ``evil.example:<port>``. Every listener
refuses it (HTTP 421 in the listener's error shape, the WebSocket handshake with 421),
while the same requests under the daemon's own names, a LAN address of a daemon bound
to 0.0.0.0, or a name in ``http.allowed_hosts`` are served."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.helpers.audit import audited
from tests.helpers.daemon import RunningDaemon, make_settings, running_daemon
from tests.helpers.http import assert_admin_error, assert_error
from tests.helpers.security import (
    BASIC,
    RawHttp,
    assert_rooms_error,
    handshake,
    port_of,
)

EVIL = "evil.example"


def create_room(name: str) -> dict[str, object]:
    payload = {"roomName": name, "owner": "alice", "pass": "alice-password"}
    return {"action": "createRoom", "payload": payload}


async def test_a_rebound_name_gets_nothing_from_the_http_api(daemon: RunningDaemon) -> None:
    port = port_of(daemon.endpoints.http)
    evil = {"Host": f"{EVIL}:{port}", "Origin": f"http://{EVIL}:{port}"}
    with trio.fail_after(20):
        async with daemon.http() as client:
            for method, path in (
                ("GET", "/"),
                ("GET", "/api/health"),
                ("GET", "/api/auth/login_info?username=admin"),
                ("GET", "/openapi.json"),
            ):
                response = await client.request(method, path, headers=evil)
                assert assert_error(response, 421)["error_type"] == "misdirected"
            guess = {"username": "admin", "password": "guess", "random": "x", "proof_of_works": []}
            assert_error(await client.post("/api/auth/login", json=guess, headers=evil), 421)
            # /rooms answers in its own shape, and the room is not created.
            refused = await client.post("/rooms", json=create_room("den"), headers=evil)
            assert "host name" in assert_rooms_error(refused, 421, "misdirected")
            # The same requests under the daemon's own names are served.
            for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
                response = await client.get("/api/auth/login_info", headers={"Host": host})
                assert response.status_code == 200, response.text
            created = await client.post("/rooms", json=create_room("den"))
            assert created.json() == {"status": "ok", "name": "den"}
    assert len(await audited(daemon, f"Host '{EVIL}:{port}'")) == 1  # once per minute


async def test_a_rebound_name_gets_nothing_from_the_admin_api(daemon: RunningDaemon) -> None:
    port = port_of(daemon.endpoints.admin)
    with trio.fail_after(20):
        async with daemon.admin(headers={"Authorization": BASIC}) as client:
            evil = {"Host": f"{EVIL}:{port}", "Origin": f"http://{EVIL}:{port}"}
            assert_admin_error(await client.get("/status", headers=evil), 421)
            account = {"username": "mallory", "password": "mallory-password", "flags": "ADMIN"}
            assert_admin_error(await client.post("/accounts/", json=account, headers=evil), 421)
            # The operator at the daemon's own address, right next to it.
            listed = (await client.get("/accounts/")).json()
            assert [a["username"] for a in listed] == ["admin"]
            mine = {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}
            assert (await client.get("/status", headers=mine)).status_code == 200


async def test_a_rebound_name_cannot_open_the_websocket(daemon: RunningDaemon) -> None:
    ws = daemon.endpoints.ws
    port, http_port = port_of(ws), port_of(daemon.endpoints.http)
    with trio.fail_after(20):
        for path in ("/", "/chat/login/guest1"):
            status, body = await handshake(
                ws + path, host=f"{EVIL}:{port}", origin=f"http://{EVIL}:{port}"
            )
            assert status == 421
            assert body is not None
            assert body["error_type"] == "misdirected"
            # Origin is compared with the allowed names, not with the Host header.
            status, _ = await handshake(ws + path, origin=f"http://{EVIL}:{port}")
            assert status == 403
            # The dashboard's own pages may connect.
            for origin in (f"http://127.0.0.1:{http_port}", f"http://localhost:{http_port}"):
                status, _ = await handshake(ws + path, origin=origin)
                assert status == 101
            status, _ = await handshake(ws + path, host=f"localhost:{port}")
            assert status == 101
    assert await audited(daemon, f"Host '{EVIL}:{port}'")


async def test_a_daemon_on_all_addresses_serves_the_address_it_was_reached_at(
    tmp_path: Path,
) -> None:
    """Bound to 0.0.0.0 and reached at another address of the machine (127.0.0.2 here,
    a LAN address in real life): that address is served, a different one is not."""
    listen = {"listen": "0.0.0.0:0"}
    settings = make_settings(tmp_path / "data", http=listen, ws=listen, admin=listen)
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            port, ws_port = port_of(daemon.endpoints.http), port_of(daemon.endpoints.ws)
            lan = await RawHttp.connect(f"http://127.0.0.2:{port}")
            try:
                status, _, config = await lan.get("/api/auth/config", f"127.0.0.2:{port}")
                assert status == 200
                assert config["websocket"] == f"ws://127.0.0.2:{ws_port}/"
                status, _, body = await lan.get("/api/health", f"127.0.0.3:{port}")
                assert (status, body["error_type"]) == (421, "misdirected")
                # The address endpoints.json names (the command line client uses it).
                status, _, _ = await lan.get("/api/health", f"0.0.0.0:{port}")
                assert status == 200
            finally:
                await lan.aclose()
            ws = f"ws://127.0.0.2:{ws_port}/"
            dashboard = f"http://127.0.0.2:{port}"
            assert (await handshake(ws, connect_to="127.0.0.2", origin=dashboard))[0] == 101
            other = f"http://127.0.0.3:{port}"
            assert (await handshake(ws, connect_to="127.0.0.2", origin=other))[0] == 403
            wrong_host = await handshake(ws, connect_to="127.0.0.2", host=f"127.0.0.3:{ws_port}")
            assert wrong_host[0] == 421


async def test_allowed_hosts_names_the_daemon_may_be_served_under(tmp_path: Path) -> None:
    name = "dash.example.test"
    settings = make_settings(tmp_path / "data", http={"allowed_hosts": [name]})
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            http_port = port_of(daemon.endpoints.http)
            async with daemon.http() as client:
                served = await client.get("/api/health", headers={"Host": f"{name}:{http_port}"})
                assert served.status_code == 200
                # A reverse proxy forwards its own name, without the daemon's port.
                assert (await client.get("/", headers={"Host": name})).status_code == 200
                assert_error(await client.get("/api/health", headers={"Host": EVIL}), 421)
            async with daemon.admin(headers={"Authorization": BASIC}) as admin:
                proxied = {"Host": name, "Origin": f"https://{name}"}
                assert (await admin.get("/status", headers=proxied)).status_code == 200
            ws = daemon.endpoints.ws + "/"
            assert (await handshake(ws, host=name, origin=f"https://{name}"))[0] == 101
            assert (await handshake(ws, host=name, origin=f"https://{EVIL}"))[0] == 403

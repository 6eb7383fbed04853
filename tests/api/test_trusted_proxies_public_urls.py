"""``http.public_url`` and ``ws.public_url`` on the real listeners: the public name is
served and told the public WebSocket URL (in ``/api/auth/config`` and the dashboard's
Content-Security-Policy), a client at the listener's own address keeps the listener's
addresses, and every other name or origin is still refused."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.helpers.daemon import RunningDaemon, make_settings, running_daemon
from tests.helpers.forwarded import ws_handshake
from tests.helpers.http import assert_admin_error, assert_error
from tests.helpers.security import BASIC, port_of

PUBLIC = "games.example.test"


async def config(daemon: RunningDaemon, host: str) -> dict[str, object]:
    async with daemon.http() as client:
        response = await client.get("/api/auth/config", headers={"Host": host})
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


async def csp(daemon: RunningDaemon, host: str) -> str:
    async with daemon.http() as client:
        response = await client.get("/", headers={"Host": host})
    assert response.status_code == 200, response.text
    return response.headers["Content-Security-Policy"]


async def test_the_dashboard_under_its_public_url(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", http={"public_url": f"https://{PUBLIC}"})
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            http, ws = daemon.endpoints.http, daemon.endpoints.ws
            public = {
                "type": "password",
                "endpoints": [f"https://{PUBLIC}"],
                "websocket": f"wss://{PUBLIC}/ws/",
            }
            # As nginx forwards it ($host, no port), and with the public port.
            assert await config(daemon, PUBLIC) == public
            assert await config(daemon, f"{PUBLIC}:443") == public
            assert f"connect-src 'self' wss://{PUBLIC};" in await csp(daemon, PUBLIC)
            # The listener's own address keeps its own URLs.
            own = await config(daemon, f"127.0.0.1:{port_of(http)}")
            assert own["websocket"] == f"ws://127.0.0.1:{port_of(ws)}/"
            assert own["endpoints"] == [http]
            own_csp = await csp(daemon, f"127.0.0.1:{port_of(http)}")
            assert f"connect-src 'self' ws://127.0.0.1:{port_of(ws)};" in own_csp
            # Another name is not served.
            async with daemon.http() as client:
                assert_error(await client.get("/", headers={"Host": "evil.test"}), 421)
                other_port = await client.get("/api/health", headers={"Host": f"{PUBLIC}:8443"})
                assert other_port.status_code == 200  # ports are not compared for Host

            # The WebSocket listener: the public name, and pages of the public origin.
            for path in ("/", "/chat/login/guest1"):
                url = ws + path
                page = {"Origin": f"https://{PUBLIC}"}
                assert (await ws_handshake(url, host=PUBLIC, headers=page))[0] == 101
                for origin in (f"http://{PUBLIC}", f"https://{PUBLIC}:8443", "https://evil.test"):
                    refused = await ws_handshake(url, host=PUBLIC, headers={"Origin": origin})
                    assert refused[0] == 403, origin
                assert (await ws_handshake(url, host="evil.test", headers=page))[0] == 421
            # A proxy that forwards the public path instead of stripping it is told so.
            status, body = await ws_handshake(ws + "/ws/", host=PUBLIC)
            assert status == 404
            assert body is not None
            assert "a reverse proxy must strip /ws/" in body["error_message"]

            # The admin API is not served under the public name.
            async with daemon.admin(headers={"Authorization": BASIC}) as admin:
                assert_admin_error(await admin.get("/status", headers={"Host": PUBLIC}), 421)
                assert (await admin.get("/status")).status_code == 200


async def test_a_websocket_api_elsewhere(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data",
        http={"public_url": f"https://{PUBLIC}:8443"},
        ws={"public_url": "wss://live.example.test/api"},
    )
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            answer = await config(daemon, f"{PUBLIC}:8443")
            assert answer["websocket"] == "wss://live.example.test/api/"
            assert answer["endpoints"] == [f"https://{PUBLIC}:8443"]
            assert "connect-src 'self' wss://live.example.test;" in await csp(daemon, PUBLIC)
            page = {"Origin": f"https://{PUBLIC}:8443"}
            url = daemon.endpoints.ws + "/"
            assert (await ws_handshake(url, host="live.example.test", headers=page))[0] == 101
            # The page of the default port is another origin.
            other = {"Origin": f"https://{PUBLIC}"}
            assert (await ws_handshake(url, host="live.example.test", headers=other))[0] == 403

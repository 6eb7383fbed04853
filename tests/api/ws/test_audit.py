"""WebSocket refusals reach the audit log; a session's own logout pushes nothing to it."""

from __future__ import annotations

import json
from pathlib import Path

import trio
from trio_websocket import open_websocket_url

from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.audit import audited
from tests.helpers.daemon import RunningDaemon, make_settings, start_daemon
from tests.helpers.ws import ws_client


async def test_rate_limiting_is_audited_once_per_burst(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", ws={"request_rate": 1.0, "request_burst": 3})
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            daemon = await start_daemon(nursery, settings)
            async with ws_client(daemon) as client:
                codes = [(await client.call("get_version"))["status_code"] for _ in range(10)]
                assert codes[:3] == [0, 0, 0]
                assert set(codes[3:]) == {3}
                # malformed frames are rate limited too
                assert (await client.send_raw("not json"))["status_code"] == 3
            assert len(await audited(daemon, "request rate limited")) == 1
            daemon.daemon.request_stop()


async def test_own_logout_pushes_no_session_closed(daemon: RunningDaemon) -> None:
    with trio.fail_after(15):
        async with ws_client(daemon, login=True) as client, ws_client(daemon) as other:
            assert (await client.call("logout"))["content"] is None
            assert (await client.call("get_version"))["status_code"] == 0
            assert not [p for p in client.pushes if p["type"] == "session_closed"]
            assert (await other.call("get_version"))["status_code"] == 0


async def test_pages_of_the_daemons_own_http_api_may_connect(daemon: RunningDaemon) -> None:
    http = daemon.endpoints.http  # e.g. http://127.0.0.1:PORT, another port than the WS
    with trio.fail_after(15):
        for origin in (http, http.replace("127.0.0.1", "localhost")):
            headers = [(b"Origin", origin.encode())]
            async with open_websocket_url(daemon.endpoints.ws + "/", extra_headers=headers) as ws:
                await ws.send_message('{"type": "get_version", "uuid": "o", "content": {}}')
                assert json.loads(await ws.get_message())["status_code"] == 0


async def test_admin_sessions_are_not_rate_limited(tmp_path: Path) -> None:
    """As on the HTTP API: an ADMIN session may send as fast as it likes (bulk power
    actions); anonymous and other accounts' connections stay limited."""
    settings = make_settings(tmp_path / "data", ws={"request_rate": 1.0, "request_burst": 3})
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            daemon = await start_daemon(nursery, settings)
            await add_account(daemon, "bob", "HOST")
            async with ws_client(daemon) as admin, ws_client(daemon) as bob:
                await admin.login()  # 1 request of the burst
                codes = [(await admin.call("get_version"))["status_code"] for _ in range(20)]
                assert set(codes) == {0}
                await bob.login("bob", PASSWORD)
                codes = [(await bob.call("get_version"))["status_code"] for _ in range(5)]
                assert codes[:2] == [0, 0]
                assert set(codes[2:]) == {3}
            daemon.daemon.request_stop()

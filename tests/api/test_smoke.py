from __future__ import annotations

import trio

from tests.helpers.daemon import RunningDaemon, login


async def test_login_then_authenticated_request(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            token = await login(client)
            assert len(token) == 64
            response = await client.post(
                "/api/auth/logout", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 204
            again = await client.post(
                "/api/auth/logout", headers={"Authorization": f"Bearer {token}"}
            )
            assert again.status_code == 403
            assert again.json()["error_type"] == "forbidden"

"""The login under attack, through the real HTTP listener from several local
addresses: a ``login_info`` flood cannot evict another address's random (pending
randoms per address, ``login_info`` per minute), guessing an account's password
raises the guesser's proof-of-work and not its owner's, a token ends at its absolute
lifetime however often it is used, and an IP ban ends the tokens last used there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from leosuite.auth.pow import solve
from tests.helpers.audit import audited
from tests.helpers.daemon import ADMIN_PASSWORD, login, make_settings, running_daemon
from tests.helpers.http import login_info
from tests.helpers.sources import admin_client, http_from


async def post_login(
    client: httpx.AsyncClient, info: dict[str, Any], password: str = ADMIN_PASSWORD
) -> httpx.Response:
    proofs = solve(info["random"], count=info["proof_of_works"], difficulty=info["difficulty"])
    body = {"username": "admin", "password": password, "random": info["random"]}
    return await client.post("/api/auth/login", json={**body, "proof_of_works": proofs})


async def uses(client: httpx.AsyncClient, token: str) -> int:
    """Use ``token`` once (list the servers); the status code."""
    headers = {"Authorization": f"Bearer {token}"}
    return (await client.post("/api/server_list", json={}, headers=headers)).status_code


# -- login_info -------------------------------------------------------------------------


async def test_a_login_info_flood_cannot_evict_another_address_random(tmp_path: Path) -> None:
    auth = {"max_pending_logins": 4, "max_pending_logins_per_ip": 2}
    async with running_daemon(make_settings(tmp_path / "data", auth=auth)) as daemon:
        with trio.fail_after(60):
            async with http_from(daemon, "127.0.0.2") as victim:
                info = await login_info(victim)
                for flooder in ("127.0.0.3", "127.0.0.4"):
                    async with http_from(daemon, flooder) as client:
                        # a bucket of 60 (auth.login_info_per_minute) refilled at one a
                        # second: a slow machine's flood gets one more per second it took
                        started = trio.current_time()
                        given = 0
                        while (refused := await client.get("/api/auth/login_info")).is_success:
                            given += 1
                            assert given <= 60 + (trio.current_time() - started) + 1
                        assert given >= 60
                        assert refused.status_code == 429, refused.text
                        assert refused.json() == {
                            "error_type": "rate_limited",
                            "error_message": "too many login_info requests from this address; "
                            "wait a minute",
                        }
                # each flooder holds two randoms of four: the victim's one is still there
                response = await post_login(victim, info)
                assert response.status_code == 200, response.text
            # and a new address gets one and logs in
            async with http_from(daemon, "127.0.0.5") as newcomer:
                response = await post_login(newcomer, await login_info(newcomer))
                assert response.status_code == 200, response.text


# -- proof-of-work escalation -----------------------------------------------------------


async def test_guessing_an_account_slows_the_guesser_not_the_owner(tmp_path: Path) -> None:
    # base 4 bits, up to 12; failures against the account add at most 2 for others
    auth = {"pow_difficulty": 4, "pow_max_difficulty": 12}
    async with running_daemon(make_settings(tmp_path / "data", auth=auth)) as daemon:
        with trio.fail_after(120):
            # 32 wrong passwords for admin from three addresses
            for source, tries in (("127.0.0.2", 16), ("127.0.0.3", 8), ("127.0.0.4", 8)):
                async with http_from(daemon, source) as guesser:
                    for n in range(tries):
                        info = await login_info(guesser, "admin")
                        response = await post_login(guesser, info, password=f"guess-{n}")
                        assert response.status_code == 403, response.text
            async with http_from(daemon, "127.0.0.2") as guesser:
                assert (await login_info(guesser, "admin"))["difficulty"] == 12
                assert (await login_info(guesser))["difficulty"] == 12
            async with http_from(daemon, "127.0.0.3") as guesser:
                assert (await login_info(guesser, "admin"))["difficulty"] == 8
            async with daemon.http() as owner:  # an address that never failed
                info = await login_info(owner, "admin")
                assert info["difficulty"] == 4 + 2
                assert (await login_info(owner))["difficulty"] == 4
                response = await post_login(owner, info)
                assert response.status_code == 200, response.text


# -- token lifetime ---------------------------------------------------------------------


@pytest.fixture
def mock_clock() -> trio.testing.MockClock:
    # rate=1: real time still passes (sockets, threads); jump() skips ahead.
    return trio.testing.MockClock(rate=1.0)


async def test_a_token_ends_at_its_absolute_lifetime(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    auth = {"token_max_lifetime": 3000.0}
    async with running_daemon(make_settings(tmp_path / "data", auth=auth)) as daemon:
        with trio.fail_after(30) as scope:
            async with daemon.http() as client:
                token = await login(client)
            for _ in range(3):  # every use within the sliding 1200 s keeps it alive
                mock_clock.jump(950)
                scope.deadline += 950
                async with daemon.http() as client:  # a new connection: keep-alive timed out
                    assert await uses(client, token) == 200
            mock_clock.jump(160)  # 3010 s after the login, 160 s after its last use
            scope.deadline += 160
            async with daemon.http() as client:
                assert await uses(client, token) == 403
                # a new login is a new token
                assert await uses(client, await login(client)) == 200


# -- IP bans ----------------------------------------------------------------------------


async def test_an_ip_ban_ends_the_tokens_last_used_from_it(tmp_path: Path) -> None:
    async with running_daemon(make_settings(tmp_path / "data")) as daemon:
        with trio.fail_after(60):
            async with http_from(daemon, "127.0.0.2") as far, daemon.http() as near:
                used_there = await login(far)
                moved = await login(far)  # logged in there, last used here
                mine = await login(near)
                assert await uses(far, used_there) == 200
                assert await uses(near, moved) == 200
            async with admin_client(daemon) as admin:
                response = await admin.post("/banlist/", json={"ip": "127.0.0.2"})
                assert response.status_code == 200, response.text
                ban = response.json()
            assert len(await audited(daemon, "1 access token(s) ended")) == 1
            async with http_from(daemon, "127.0.0.3") as elsewhere:
                assert await uses(elsewhere, used_there) == 403
                assert await uses(elsewhere, moved) == 200
                assert await uses(elsewhere, mine) == 200
            async with admin_client(daemon) as admin:
                response = await admin.delete(f"/banlist/{ban['id']}/")
                assert response.status_code == 200, response.text
            async with http_from(daemon, "127.0.0.2") as far:  # ended for good
                assert await uses(far, used_there) == 403

"""Concurrent wrong Basic credentials cannot outrun the admin listener's failure
limit: an attempt counts from before its password is verified, so of many sent at
once at most the limit are verified (401) and the rest are refused (429), while
another address still logs in."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import trio

from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.security import BASIC

LIMIT = 10  # failed admin logins allowed per address in five minutes
WRONG = {"Authorization": "Basic " + base64.b64encode(b"admin:not-the-password").decode()}


async def test_concurrent_wrong_passwords_are_verified_at_most_up_to_the_limit(
    tmp_path: Path,
) -> None:
    # A costlier hash keeps every verification in flight while the others arrive.
    settings = make_settings(
        tmp_path / "data",
        auth={"hash_time_cost": 2, "hash_memory_kib": 16384},
        admin={"max_connections_per_ip": 64},
    )
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon:
            statuses: list[int] = []
            limits = httpx.Limits(max_connections=40, max_keepalive_connections=40)
            async with daemon.admin(limits=limits) as client:

                async def guess() -> None:
                    statuses.append((await client.get("/status", headers=WRONG)).status_code)

                async with trio.open_nursery() as nursery:
                    for _ in range(40):
                        nursery.start_soon(guess)
                assert set(statuses) <= {401, 429}, statuses
                assert statuses.count(401) <= LIMIT, statuses
                assert statuses.count(429) >= 40 - LIMIT, statuses
                # The right password from this address waits out the window too ...
                right = await client.get("/status", headers={"Authorization": BASIC})
                assert right.status_code == 429
            # ... and another address is not affected.
            other = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
            async with daemon.admin(transport=other) as client:
                right = await client.get("/status", headers={"Authorization": BASIC})
                assert right.status_code == 200, right.text

"""Rejected input is written to the audit log, rate limited per address."""

from __future__ import annotations

import trio

from leosuite.store import audit
from tests.helpers.daemon import RunningDaemon


async def http_entries(daemon: RunningDaemon) -> list[audit.AuditEntry]:
    entries = await daemon.ctx.db.call(lambda conn: audit.page(conn, limit=1000))
    return [e for e in entries if e.topic == "http"]


async def test_bad_input_is_audited_with_the_address(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            response = await client.post(
                "/api/auth/login",
                content=b"{not json",
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == 400
        entries = await http_entries(daemon)
        assert len(entries) == 1
        assert entries[0].level == "warning"
        assert entries[0].user_ip == "127.0.0.1"
        assert "POST /api/auth/login" in entries[0].message
        assert "not valid JSON" in entries[0].message


async def test_a_flood_of_bad_input_does_not_flood_the_log(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as client:
            for _ in range(40):
                response = await client.post(
                    "/api/auth/login", content=b"[]", headers={"Content-Type": "application/json"}
                )
                assert response.status_code == 400
        assert len(await http_entries(daemon)) == 10


async def test_a_good_request_is_not_audited_as_bad(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with daemon.http() as client:
            assert (await client.get("/api/auth/config")).status_code == 200
        assert await http_entries(daemon) == []

"""A daemon on a PostgreSQL store: accounts and logins over HTTP, a lost connection
found again, and a database that stays away answered as an internal error, never a
traceback (run with ``--store=postgresql``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import trio

from leosuite.auth.pow import solve
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import login, make_settings, running_daemon
from tests.helpers.http import assert_error
from tests.helpers.postgres import PostgresServer, find_bin_dir

pytestmark = pytest.mark.postgresql_only


def _terminate(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'leosuite' AND datname = %s",
            (url.rsplit("/", 1)[1],),
        ).fetchall()
    return len(rows)


async def test_accounts_and_logins_survive_a_lost_connection(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "data", store={"url": postgres_url})
    async with running_daemon(settings) as daemon:
        await add_account(daemon, "bob")
        async with daemon.http() as client:
            await login(client, "bob", PASSWORD)
            assert _terminate(postgres_url) == 1
            await login(client, "bob", PASSWORD)
            await login(client, "BOB", PASSWORD)
            wrong = await client.post("/api/auth/login", json={"username": "bob"})
            assert wrong.status_code == 400
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute("SELECT count(*) FROM tokens").fetchone()
        assert row is not None
        assert row[0] == 3


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    bin_dir = find_bin_dir()
    assert bin_dir is not None
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


async def test_a_database_that_stays_away_is_an_internal_error(
    own_server: PostgresServer, tmp_path: Path
) -> None:
    url = own_server.new_database()
    settings = make_settings(tmp_path / "data", store={"url": url, "retry_for": 1.0})
    async with running_daemon(settings) as daemon:
        await add_account(daemon, "bob")
        async with daemon.http() as client:
            await trio.to_thread.run_sync(own_server.pause)
            try:
                info = (await client.get("/api/auth/login_info")).json()
                proofs = solve(
                    info["random"], count=info["proof_of_works"], difficulty=info["difficulty"]
                )
                refused = await client.post(
                    "/api/auth/login",
                    json={"username": "bob", "password": PASSWORD, "random": info["random"],
                          "proof_of_works": proofs},
                )  # fmt: skip
                body = assert_error(refused, 500)
                assert body["error_type"] == "internal"
                assert "correlation id" in body["error_message"]
                assert "Traceback" not in refused.text
                assert "postgresql" not in refused.text
                unready = await client.get("/readyz")
                assert unready.status_code == 503
                assert list(unready.json()["failing"]) == ["store"]
                assert "postgresql" not in unready.text
            finally:
                await trio.to_thread.run_sync(own_server.resume)
            await login(client, "bob", PASSWORD)
            assert (await client.get("/readyz")).json() == {"status": "ready"}

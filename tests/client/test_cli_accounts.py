"""``leosuite user add|passwd|lock|unlock|list`` on the store directly, bad usernames,
and accounts surviving a daemon restart."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import trio

from leosuite import cli
from leosuite.auth.passwords import PasswordHasher
from leosuite.auth.pow import solve
from leosuite.store import accounts, tokens
from tests.helpers.daemon import ADMIN_PASSWORD, login, make_settings, start_daemon, store_env
from tests.helpers.store import open_test_store


class Cli:
    def __init__(self, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
        self.data_dir = data_dir
        self.monkeypatch = monkeypatch
        self.capsys = capsys

    async def run(self, *argv: str, stdin: str = "") -> tuple[int, str, str]:
        """``leosuite ARGV --data-dir DATA`` in a worker thread: (exit code, stdout, stderr)."""
        self.capsys.readouterr()
        self.monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        args = [*argv, "--data-dir", str(self.data_dir)]
        code = await trio.to_thread.run_sync(cli.main, args, abandon_on_cancel=True)
        out, err = self.capsys.readouterr()
        return code, out, err

    async def add(self, username: str, password: str = "password-123", *extra: str) -> int:
        code, _, _ = await self.run(
            "user", "add", username, "--password-stdin", *extra, stdin=password + "\n"
        )
        return code

    async def accounts(self) -> list[dict[str, Any]]:
        code, out, err = await self.run("user", "list", "--json")
        assert code == 0, err
        rows: list[dict[str, Any]] = json.loads(out)
        return rows


@pytest.fixture
def leosuite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> Cli:
    import os

    for name in list(os.environ):
        if name.startswith("LEOSUITE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LEOSUITE_AUTH_HASH_MEMORY_KIB", "64")
    monkeypatch.setenv("LEOSUITE_AUTH_HASH_TIME_COST", "1")
    for name, value in store_env(tmp_path / "data").items():
        monkeypatch.setenv(name, value)
    return Cli(tmp_path / "data", monkeypatch, capsys)


def verify(data_dir: Path, username: str, password: str) -> bool:
    db = open_test_store(data_dir)
    try:
        account = db.call_sync(lambda conn: accounts.get_by_name(conn, username))
    finally:
        db.close()
    assert account is not None
    return PasswordHasher(time_cost=1, memory_kib=64).verify_sync(account.password_hash, password)


async def test_add_and_list(leosuite: Cli) -> None:
    with trio.fail_after(20):
        code, out, err = await leosuite.run(
            "user", "add", "bob", "--password-stdin", "--flags", "host,MOD", stdin="bob-password\n"
        )
        assert (code, err) == (0, "")
        assert out.strip() == "created account 'bob'"
        assert await leosuite.add("carol.x-1_") == 0
        rows = await leosuite.accounts()
        assert rows == [
            {"id": 1, "username": "bob", "flags": ["HOST", "MOD"], "locked": False},
            {"id": 2, "username": "carol.x-1_", "flags": [], "locked": False},
        ]
        code, out, _ = await leosuite.run("user", "list")
        assert code == 0
        lines = out.splitlines()
        assert lines[0].split() == ["ID", "USERNAME", "FLAGS", "LOCKED"]
        assert lines[1].split() == ["1", "bob", "HOST,MOD", "no"]
        assert lines[2].split() == ["2", "carol.x-1_", "-", "no"]
    assert verify(leosuite.data_dir, "bob", "bob-password")


@pytest.mark.parametrize(
    "username",
    ["with space", "tab\there", "ctl\x01char", "nl\nx", "x" * 200, "x" * 33, "é", "a/b", ""],
    ids=["space", "tab", "control", "newline", "200", "33", "non-ascii", "slash", "empty"],
)
async def test_add_refuses_bad_usernames(leosuite: Cli, username: str) -> None:
    with trio.fail_after(20):
        code, out, err = await leosuite.run(
            "user", "add", username, "--password-stdin", stdin="password-123\n"
        )
        assert code == 1
        assert out == ""
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith("leosuite: username must be 1-32 characters")
        assert "Traceback" not in err
        assert await leosuite.accounts() == []


async def test_add_refuses_duplicates_bad_passwords_and_flags(leosuite: Cli) -> None:
    with trio.fail_after(20):
        assert await leosuite.add("bob") == 0
        code, _, err = await leosuite.run(
            "user", "add", "BOB", "--password-stdin", stdin="password-123\n"
        )
        assert code == 1
        assert "taken" in err
        code, _, err = await leosuite.run("user", "add", "eve", "--password-stdin", stdin="short\n")
        assert code == 1
        assert "at least 8 characters" in err
        code, _, err = await leosuite.run(
            "user", "add", "eve", "--password-stdin", "--flags", "ROOT", stdin="password-123\n"
        )
        assert code == 1
        assert "unknown flag 'ROOT'" in err
        code, _, err = await leosuite.run("user", "add", "eve", "--password-stdin", stdin="")
        assert code == 1
        assert "password" in err
        assert [a["username"] for a in await leosuite.accounts()] == ["bob"]


async def test_passwd_changes_the_password_and_ends_sessions(leosuite: Cli) -> None:
    with trio.fail_after(20):
        assert await leosuite.add("bob", "old-password") == 0
        db = open_test_store(leosuite.data_dir)
        try:
            db.call_sync(
                lambda conn: tokens.insert(
                    conn, token_hash="ab" * 32, account_id=1, created_at=0, expires_at=9e9
                )
            )
        finally:
            db.close()
        code, out, err = await leosuite.run(
            "user", "passwd", "bob", "--password-stdin", stdin="new-password\n"
        )
        assert (code, err) == (0, "")
        assert "1 session(s) ended" in out
        assert verify(leosuite.data_dir, "bob", "new-password")
        assert not verify(leosuite.data_dir, "bob", "old-password")
        # Refusals change nothing.
        code, _, err = await leosuite.run("user", "passwd", "bob", "--password-stdin", stdin="x\n")
        assert code == 1
        assert "at least 8" in err
        code, _, err = await leosuite.run(
            "user", "passwd", "nobody", "--password-stdin", stdin="new-password\n"
        )
        assert code == 1
        assert "no account named 'nobody'" in err
        assert verify(leosuite.data_dir, "bob", "new-password")


async def test_lock_and_unlock(leosuite: Cli) -> None:
    with trio.fail_after(20):
        assert await leosuite.add("root", "root-password", "--flags", "ADMIN") == 0
        assert await leosuite.add("bob") == 0
        code, out, _ = await leosuite.run("user", "lock", "bob")
        assert code == 0
        assert "locked" in out
        assert [a["locked"] for a in await leosuite.accounts()] == [False, True]
        code, _, err = await leosuite.run("user", "lock", "root")
        assert code == 1
        assert "last unlocked ADMIN" in err
        code, _, err = await leosuite.run("user", "lock", "nobody")
        assert code == 1
        assert "no account named" in err
        code, out, _ = await leosuite.run("user", "unlock", "BOB")
        assert code == 0
        assert "unlocked" in out
        assert [a["locked"] for a in await leosuite.accounts()] == [False, False]


async def test_accounts_survive_a_restart(leosuite: Cli, tmp_path: Path) -> None:
    settings = make_settings(leosuite.data_dir)
    with trio.fail_after(40):
        # First start creates admin.
        async with trio.open_nursery() as nursery:
            running = await start_daemon(nursery, settings)
            async with running.http() as client:
                await login(client)
            # `user add` works on the store while the daemon runs.
            assert await leosuite.add("bob", "bob-password") == 0
            async with running.http() as client:
                await login(client, "bob", "bob-password")
            running.daemon.request_stop()
        assert await leosuite.add("carol", "carol-password", "--flags", "HOST") == 0
        # A second start: nobody is recreated, every account logs in.
        async with trio.open_nursery() as nursery:
            running = await start_daemon(nursery, settings, environ={})
            assert "Created the first account" not in running.out.getvalue()
            async with running.http() as client:
                await login(client, "admin", ADMIN_PASSWORD)
                await login(client, "bob", "bob-password")
                result = await client.get("/api/auth/login_info")
                assert result.status_code == 200
            running.daemon.request_stop()
        code, _, err = await leosuite.run("user", "lock", "bob")
        assert code == 0, err
        # A third start: the lock made while the daemon was down holds.
        async with trio.open_nursery() as nursery:
            running = await start_daemon(nursery, settings, environ={})
            async with running.http() as client:
                await login(client, "carol", "carol-password")
                info = (await client.get("/api/auth/login_info")).json()
                proofs = solve(info["random"], count=2, difficulty=info["difficulty"])
                refused = await client.post(
                    "/api/auth/login",
                    json={
                        "username": "bob",
                        "password": "bob-password",
                        "random": info["random"],
                        "proof_of_works": proofs,
                    },
                )
                assert refused.status_code == 403
            running.daemon.request_stop()
        assert [a["username"] for a in await leosuite.accounts()] == ["admin", "bob", "carol"]

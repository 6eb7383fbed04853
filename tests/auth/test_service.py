"""AuthService against a real SQLite store: proof-of-work login, token sliding expiry,
adaptive difficulty, revocation; time moved with a MockClock.

The clock runs at real speed (sockets and worker threads need real time) and
``jump()`` skips ahead; ``autojump`` would jump to the next deadline whenever the
test waits for a database thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
import trio.testing

from leosuite.audit import AuditLog
from leosuite.auth import accounts as account_ops
from leosuite.auth.passwords import PasswordHasher
from leosuite.auth.pow import solve
from leosuite.auth.service import AuthService, LoginResult
from leosuite.clock import WallClock
from leosuite.errors import AuthError, DiskFull, RateLimited
from leosuite.settings import AuthSettings
from leosuite.store import audit, kv, tokens
from leosuite.store.db import Database
from tests.helpers.disk import filled, small_filesystem
from tests.helpers.store import open_test_store

IP = "192.0.2.7"
PASSWORD = "correct-horse"
SETTINGS = AuthSettings(
    pow_difficulty=2,
    pow_count=2,
    pow_max_difficulty=6,
    hash_time_cost=1,
    hash_memory_kib=64,
)


class Env:
    def __init__(self, db: Database, clock: trio.testing.MockClock, scope: trio.CancelScope):
        self.db = db
        self.clock = clock
        self.scope = scope
        self.hasher = PasswordHasher(time_cost=1, memory_kib=64)
        self.now = WallClock()
        self.audit = AuditLog(db, self.now)
        self.auth = self.service()

    def service(self, settings: AuthSettings = SETTINGS) -> AuthService:
        """A new AuthService on the same store (as after a daemon restart)."""
        return AuthService(self.db, self.hasher, settings, self.audit, self.now)

    def jump(self, seconds: float) -> None:
        # pytest-trio installs a clock only if the test itself takes the fixture.
        assert trio.lowlevel.current_clock() is self.clock, "the test must take mock_clock"
        self.clock.jump(seconds)
        self.scope.deadline += seconds  # the test's fail_after follows the jump

    async def login(
        self,
        username: str = "alice",
        password: str = PASSWORD,
        *,
        auth: AuthService | None = None,
        ip: str = IP,
    ) -> LoginResult:
        auth = auth or self.auth
        info = auth.login_info(ip, username)
        proofs = solve(info.random, count=info.proof_of_works, difficulty=info.difficulty)
        return await auth.login(username, password, info.random, proofs, ip)

    async def token_rows(self) -> list[tokens.Token]:
        def read(conn: sqlite3.Connection) -> list[tokens.Token]:
            rows = conn.execute("SELECT id FROM accounts").fetchall()
            return [t for (account_id,) in rows for t in tokens.list_for_account(conn, account_id)]

        return await self.db.call(read)

    async def audit_messages(self) -> list[tuple[str, str, str]]:
        entries = await self.db.call(lambda conn: audit.page(conn, newest_first=False))
        return [(e.level, e.message, e.user_name) for e in entries]


@pytest.fixture
def mock_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(rate=1.0)


@pytest.fixture
async def env(tmp_path: Path, mock_clock: trio.testing.MockClock) -> AsyncIterator[Env]:
    db = open_test_store(tmp_path)
    try:
        with trio.fail_after(30) as scope:
            env = Env(db, mock_clock, scope)
            account_ops.create_account(db, env.hasher, "alice", PASSWORD)
            yield env
    finally:
        db.close()


# -- login ------------------------------------------------------------------------------


async def test_login_stores_only_a_hash_and_audits(env: Env) -> None:
    result = await env.login()
    assert len(result.access_token) == 64
    assert result.user.username == "alice"
    assert result.permissions == ["server.own"]
    rows = await env.token_rows()
    assert [r.token_hash for r in rows] == [tokens.hash_token(result.access_token)]
    assert rows[0].last_ip == IP
    assert rows[0].expires_at == pytest.approx(env.now() + 1200, abs=5)
    principal = await env.auth.authenticate(result.access_token)
    assert (principal.username, principal.flags) == ("alice", frozenset())
    assert await env.audit_messages() == [("info", "login", "alice")]


async def test_random_is_one_time(env: Env) -> None:
    info = env.auth.login_info(IP)
    proofs = solve(info.random, count=2, difficulty=info.difficulty)
    await env.auth.login("alice", PASSWORD, info.random, proofs, IP)
    with pytest.raises(AuthError, match="random"):
        await env.auth.login("alice", PASSWORD, info.random, proofs, IP)
    assert len(await env.token_rows()) == 1


async def test_random_expires_after_its_ttl(env: Env, mock_clock: trio.testing.MockClock) -> None:
    info = env.auth.login_info(IP)
    proofs = solve(info.random, count=2, difficulty=info.difficulty)
    env.jump(119)
    await env.auth.login("alice", PASSWORD, info.random, proofs, IP)  # still good

    info = env.auth.login_info(IP)
    proofs = solve(info.random, count=2, difficulty=info.difficulty)
    env.jump(120.5)
    with pytest.raises(AuthError, match="expired"):
        await env.auth.login("alice", PASSWORD, info.random, proofs, IP)
    assert len(await env.token_rows()) == 1
    assert (await env.audit_messages())[-1][0] == "warning"


async def test_oldest_pending_random_is_dropped_at_the_limit(env: Env) -> None:
    auth = env.service(msgspec.structs.replace(SETTINGS, max_pending_logins=2))
    first = auth.login_info(IP)
    auth.login_info(IP)
    auth.login_info(IP)
    proofs = solve(first.random, count=2, difficulty=first.difficulty)
    with pytest.raises(AuthError):
        await auth.login("alice", PASSWORD, first.random, proofs, IP)


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "wrong-password"), ("nobody", PASSWORD)]
)
async def test_failed_password_message_does_not_tell_which(
    env: Env, username: str, password: str
) -> None:
    with pytest.raises(AuthError) as info:
        await env.login(username, password)
    assert info.value.message == "unknown username or wrong password"
    assert info.value.http_status == 403
    assert await env.token_rows() == []
    level, message, name = (await env.audit_messages())[-1]
    assert (level, name) == ("warning", username)
    assert message == "login failed: " + info.value.message


async def test_unknown_user_still_costs_a_hash(env: Env) -> None:
    # The dummy hash is computed and verified: the hasher's worker is used.
    calls: list[str | None] = []
    original = env.hasher.verify_sync

    def spy(stored: str | None, password: str) -> bool:
        calls.append(stored)
        return original(stored, password)

    env.hasher.verify_sync = spy  # type: ignore[method-assign]
    with pytest.raises(AuthError):
        await env.login("nobody", PASSWORD)
    assert calls == [None]
    assert env.hasher._dummy_hash is not None


async def test_locked_account_and_revocation(env: Env) -> None:
    result = await env.login()
    revoked: list[tuple[int, str]] = []
    env.auth.on_revoked.append(lambda account, reason: revoked.append((account, reason)))
    account_ops.lock_account(env.db, "alice", True)
    assert await env.auth.revoke_account(result.user.id, "locked") == 0  # lock deleted it already
    assert revoked == [(result.user.id, "locked")]
    with pytest.raises(AuthError):
        await env.auth.authenticate(result.access_token)
    with pytest.raises(AuthError, match="locked"):
        await env.login()
    assert await env.token_rows() == []
    # A fresh service (empty cache) also refuses a token of a locked account.
    account_ops.lock_account(env.db, "alice", False)
    token = (await env.login()).access_token
    account_ops.lock_account(env.db, "alice", True)
    with pytest.raises(AuthError):
        await env.service().authenticate(token)


async def test_a_recheck_during_an_accounts_change_leaves_its_sessions_to_it(env: Env) -> None:
    """A re-check of the tokens (the store's files changed) that runs between a change's
    commit and its ending of the sessions leaves them to the change, which gives its
    reason; outside such a change, a token gone from the store ends as destroyed."""
    result = await env.login()
    await env.auth.authenticate(result.access_token)  # cached
    ended: list[str] = []
    env.auth.on_token_revoked.append(lambda token_hash, reason: ended.append(reason))
    revoked: list[str] = []
    env.auth.on_revoked.append(lambda account, reason: revoked.append(reason))
    account = result.user.id
    with env.auth.ending_account(account):
        account_ops.lock_account(env.db, "alice", True)  # deletes the tokens
        assert await env.auth.recheck_tokens() == 0
        env.auth.forget_account(account, "account locked")
    assert (ended, revoked) == ([], ["account locked"])

    account_ops.lock_account(env.db, "alice", False)
    other = await env.login()
    await env.auth.authenticate(other.access_token)
    account_ops.lock_account(env.db, "alice", True)  # by another process: no change here
    assert await env.auth.recheck_tokens() == 1
    assert ended == ["token destroyed"]

    # A change that ends no session (its reason is empty) while another process
    # deleted a token: the re-check during it leaves the token, and asks for another.
    account_ops.lock_account(env.db, "alice", False)
    third = await env.login()
    await env.auth.authenticate(third.access_token)
    with env.auth.ending_account(account):
        account_ops.lock_account(env.db, "alice", True)
        assert await env.auth.recheck_tokens() == 0
        assert not env.auth.recheck_wanted  # not while the change runs
    assert env.auth.recheck_wanted
    assert await env.auth.recheck_tokens() == 1
    assert not env.auth.recheck_wanted
    assert ended == ["token destroyed", "token destroyed"]


async def test_logout_destroys_the_token(env: Env) -> None:
    result = await env.login()
    principal = await env.auth.authenticate(result.access_token)
    await env.auth.logout(principal, IP)
    assert await env.token_rows() == []
    with pytest.raises(AuthError):
        await env.auth.authenticate(result.access_token)
    assert [m for _, m, _ in await env.audit_messages()] == ["login", "logout"]


@pytest.mark.parametrize(
    "token", ["a" * 129, "A" * 64, "g" * 64, "", " " + "a" * 63, "a" * 63 + "\n"]
)
async def test_malformed_tokens(env: Env, token: str) -> None:
    with pytest.raises(AuthError, match="malformed"):
        await env.auth.authenticate(token)


# -- adaptive difficulty --------------------------------------------------------------


async def test_difficulty_rises_with_failures_and_falls_after_the_window(
    env: Env, mock_clock: trio.testing.MockClock
) -> None:
    assert env.auth.difficulty_for(IP) == 2
    for _ in range(4):
        with pytest.raises(AuthError):
            await env.login(password="wrong-password")
    assert env.auth.difficulty_for(IP) == 4
    # The account's failures count from any address when the username is given.
    assert env.auth.difficulty_for("198.51.100.1") == 2
    assert env.auth.difficulty_for("198.51.100.1", "ALICE") == 4
    # Correct password still works, at the higher cost.
    assert (await env.login()).user.username == "alice"
    for _ in range(20):
        with pytest.raises(AuthError):
            await env.auth.login("alice", PASSWORD, "0" * 32, [], IP)
    assert env.auth.difficulty_for(IP) == SETTINGS.pow_max_difficulty
    env.jump(SETTINGS.failure_window + 1)
    assert env.auth.difficulty_for(IP) == 2
    assert env.auth.difficulty_for(IP, "alice") == 2


async def test_random_issued_before_failures_needs_more_work(env: Env) -> None:
    early = env.auth.login_info(IP, "alice")
    for _ in range(2):
        with pytest.raises(AuthError):
            await env.login(password="wrong-password")
    proofs = solve(early.random, count=2, difficulty=early.difficulty)
    with pytest.raises(AuthError, match="difficulty 3"):
        await env.auth.login("alice", PASSWORD, early.random, proofs, IP)
    # That refusal is not itself a failure that raises the price further.
    assert env.auth.difficulty_for(IP, "alice") == 3


# -- token expiry ------------------------------------------------------------------------


async def test_token_sliding_expiry(env: Env, mock_clock: trio.testing.MockClock) -> None:
    token = (await env.login()).access_token
    for _ in range(4):  # every use renews the 20 minutes
        env.jump(1100)
        await env.auth.authenticate(token)
    env.jump(1200.5)
    with pytest.raises(AuthError, match="expired"):
        await env.auth.authenticate(token)
    assert await env.token_rows() == []


async def test_unused_token_expires(env: Env, mock_clock: trio.testing.MockClock) -> None:
    token = (await env.login()).access_token
    env.jump(1199)
    await env.auth.authenticate(token)
    env.jump(1200.5)
    with pytest.raises(AuthError):
        await env.auth.authenticate(token)
    # And for a service that has never cached it (after a restart).
    token = (await env.login()).access_token
    env.jump(1201)
    with pytest.raises(AuthError):
        await env.service().authenticate(token)


async def test_renewed_expiry_survives_a_restart(
    env: Env, mock_clock: trio.testing.MockClock
) -> None:
    token = (await env.login()).access_token
    env.jump(1000)
    await env.auth.authenticate(token)  # renewed to now + 1200, written to the store
    env.jump(1100)  # past the original expiry, within the renewed one
    principal = await env.service().authenticate(token)
    assert principal.username == "alice"


async def test_purge_writes_back_small_renewals_and_drops_expired(
    env: Env, mock_clock: trio.testing.MockClock
) -> None:
    keep = (await env.login()).access_token
    drop = (await env.login()).access_token
    env.jump(30)
    await env.auth.authenticate(keep)  # renewed by 30 s: only in memory so far
    env.jump(1175)  # drop expired 5 s ago; keep has 25 s left
    assert await env.auth.purge_expired() == 1
    rows = await env.token_rows()
    assert [r.token_hash for r in rows] == [tokens.hash_token(keep)]
    # A restarted daemon sees the renewed expiry.
    await env.service().authenticate(keep)
    with pytest.raises(AuthError):
        await env.auth.authenticate(drop)


async def test_purge_forgets_expired_randoms(env: Env, mock_clock: trio.testing.MockClock) -> None:
    info = env.auth.login_info(IP)
    env.jump(121)
    await env.auth.purge_expired()
    assert len(env.auth._pending) == 0
    proofs: Any = solve(info.random, count=2, difficulty=info.difficulty)
    with pytest.raises(AuthError, match="random"):
        await env.auth.login("alice", PASSWORD, info.random, proofs, IP)


async def test_token_ends_at_its_absolute_lifetime(
    env: Env, mock_clock: trio.testing.MockClock
) -> None:
    auth = env.service(msgspec.structs.replace(SETTINGS, token_max_lifetime=2000.0))
    token = (await env.login(auth=auth)).access_token
    env.jump(1100)
    await auth.authenticate(token)  # renewed, but only to the login + 2000 s
    assert (await env.token_rows())[0].expires_at == pytest.approx(env.now() + 900, abs=5)
    env.jump(899)
    await env.service(msgspec.structs.replace(SETTINGS, token_max_lifetime=2000.0)).authenticate(
        token
    )
    env.jump(2)
    with pytest.raises(AuthError, match="expired"):
        await auth.authenticate(token)
    # a lifetime shorter than the sliding one is what a login answers
    short = env.service(msgspec.structs.replace(SETTINGS, token_max_lifetime=600.0))
    assert (await env.login(auth=short)).expires_in == 600


async def test_the_last_address_is_recorded_and_a_ban_of_it_ends_the_token(env: Env) -> None:
    there = (await env.login(ip="198.51.100.1")).access_token
    moved = (await env.login(ip="198.51.100.1")).access_token
    here = (await env.login()).access_token
    await env.auth.authenticate(moved, ip=IP)
    await env.auth.authenticate(there)  # no address: nothing to record
    rows = {r.token_hash: r.last_ip for r in await env.token_rows()}
    assert rows[tokens.hash_token(moved)] == IP
    assert rows[tokens.hash_token(there)] == "198.51.100.1"
    ended: list[tuple[str, str]] = []
    env.auth.on_token_revoked.append(lambda token_hash, why: ended.append((token_hash, why)))
    count = await env.auth.end_tokens_used_from(lambda ip: ip == "198.51.100.1", "banned")
    assert count == 1
    assert ended == [(tokens.hash_token(there), "banned")]
    with pytest.raises(AuthError):
        await env.auth.authenticate(there)
    await env.auth.authenticate(moved)
    await env.auth.authenticate(here)


async def test_login_info_is_rate_limited_per_address(env: Env) -> None:
    auth = env.service(msgspec.structs.replace(SETTINGS, login_info_per_minute=3))
    for _ in range(3):
        auth.login_info("2001:db8::1")
    with pytest.raises(RateLimited, match="login_info"):
        auth.login_info("2001:db8::2")  # the same /64
    auth.login_info(IP)


@pytest.mark.sqlite_only  # the store's file on a full file system
async def test_a_full_disk_does_not_fail_authentication(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    """Renewing a token's expiry (or its address) writes the store; on a full disk the
    call is still authenticated, the renewal is kept in memory and written once there
    is space again. An expired token is refused all the same."""
    with small_filesystem(tmp_path / "fs") as fs:
        db = Database.open(fs / "leosuite.db")
        try:
            with trio.fail_after(60) as scope:
                env = Env(db, mock_clock, scope)
                account_ops.create_account(db, env.hasher, "alice", PASSWORD)
                token = (await env.login()).access_token
                stale = (await env.login()).access_token
                stored = (await env.token_rows())[0].expires_at
                env.jump(1000)
                with filled(fs):
                    with pytest.raises(DiskFull):  # the store really cannot take a write
                        await db.call(lambda conn: kv.set(conn, "filler", "x" * 65536))
                    principal = await env.auth.authenticate(token, ip="198.51.100.9")
                    assert principal.username == "alice"
                    rows = {r.token_hash: r for r in await env.token_rows()}
                    assert rows[tokens.hash_token(token)].expires_at == stored  # not written
                    env.jump(300)  # the stale token is now past its expiry
                    with pytest.raises(AuthError, match="expired"):
                        await env.auth.authenticate(stale)
                    principal = await env.auth.authenticate(token)  # renewed in memory
                    assert principal.username == "alice"
                env.jump(61)
                await env.auth.authenticate(token)  # space again: the renewal is written
                env.jump(1100)  # past every expiry but the renewed one
                assert (await env.service().authenticate(token)).username == "alice"
        finally:
            db.close()

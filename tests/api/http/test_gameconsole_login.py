"""``/service?service=config`` and ``?service=password`` over real HTTP against an
in-process daemon: GameConsole's login with its proof of work, on leosuite's accounts,
tokens, audit log and failure counts; hostile bodies; and the proof rule itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from leosuite.api.http.gameconsole import proof_count, solve
from leosuite.api.http.gameconsole._proofs import MAX_PROOFS, good_proofs, meets_rule
from leosuite.errors import ConfigError
from leosuite.settings import Settings, load_settings
from leosuite.store import audit as audit_table
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, make_settings, running_daemon
from tests.helpers.gameconsole import GameConsole, worker_proofs
from tests.helpers.http import assert_error

ON = {"gameconsole_service": True}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", http=ON)


async def auth_audit(daemon: RunningDaemon) -> list[str]:
    entries: list[audit_table.AuditEntry] = await daemon.ctx.db.call(
        lambda conn: audit_table.page(conn, newest_first=False, limit=1000)
    )
    return [entry.message for entry in entries if entry.topic == "auth"]


@pytest.mark.parametrize(
    ("count", "difficulty", "proofs"),
    [
        (4, 12, 1),  # the defaults: a quarter of a proof's work, rounded up
        (4, 16, 4),
        (4, 17, 8),
        (4, 20, 64),
        (4, 64, MAX_PROOFS),
        (2, 0, 1),
        (1, 18, 4),
    ],
)
def test_proof_count_matches_the_work_of_leosuites_login(
    count: int, difficulty: int, proofs: int
) -> None:
    assert proof_count(count, difficulty) == proofs


def test_the_proof_rule() -> None:
    random = "ab" * 16
    client_made = worker_proofs(random, 2)
    assert all(meets_rule(random, proof) for proof in client_made)
    assert good_proofs(random, client_made) == 2
    assert good_proofs(random, client_made + client_made) == 2  # distinct ones only
    assert good_proofs("cd" * 16, client_made) == 0
    assert not meets_rule(random, random + "x")
    assert not meets_rule(random, random + "\ud800")
    made = solve(random, 3)
    assert len(set(made)) == 3
    assert all(meets_rule(random, proof) for proof in made)


# ---------------------------------------------------------------- config and login


async def test_config_then_password_login(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as client:
            gc = GameConsole(client)
            config = await gc.config()
            assert config.status_code == 200
            assert config.json() == {"authmethod": "password", "endpoints": ["/service"]}
            # the origin answered the config on any method
            assert (await gc.post({}, "config")).json() == config.json()

            seed = await gc.seed()
            assert set(seed) == {"random", "proofs"}
            assert len(seed["random"]) == 32
            assert seed["proofs"] == 1  # the test daemon's cheap proof of work

            answer = await gc.try_login("admin", ADMIN_PASSWORD)
            assert set(answer) == {
                "session_token",
                "screenusername",
                "servercreatepermission",
                "permissions",
            }
            assert answer["screenusername"] == "admin"
            assert answer["servercreatepermission"] is True
            assert "admin" in answer["permissions"]
            token = answer["session_token"]
            # a leosuite token like any other
            listed = await client.post(
                "/api/server_list", json={}, headers={"Authorization": f"Bearer {token}"}
            )
            assert listed.status_code == 200, listed.text
        messages = await auth_audit(daemon)
        assert "login" in messages


async def test_wrong_password_and_unknown_user(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as client:
            gc = GameConsole(client)
            wrong = await gc.try_login("admin", "not-the-password")
            nobody = await gc.try_login("nobody", "not-the-password")
            assert wrong == nobody == {"error": "unknown username or wrong password"}
            assert (await gc.try_login("admin", ADMIN_PASSWORD))["session_token"]
        messages = await auth_audit(daemon)
        assert messages.count("login failed: unknown username or wrong password") == 2


async def test_proof_of_work_is_checked_and_a_random_is_spent(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as client:
            gc = GameConsole(client)

            async def login_with(proofs: Any, random: str | None = None) -> Any:
                seed = random or (await gc.seed())["random"]
                body = {
                    "password": ADMIN_PASSWORD,
                    "username": "admin",
                    "random": seed,
                    "proofofwork": proofs(seed) if callable(proofs) else proofs,
                }
                response = await gc.post(body, "password")
                assert response.status_code == 200, response.text
                return response.json()

            none = await login_with([])
            assert none == {"error": "1 proofs of work needed, 0 good ones sent"}
            # good for another random, not this one
            other = solve("f" * 32, 1)
            assert "error" in await login_with(other)
            # starts with the random, but its hash does not have 16 zero bits
            assert "error" in await login_with(lambda seed: [seed + "x"])
            # far too long to be hashed
            assert "error" in await login_with(lambda seed: [seed + "0" * 10_000])
            # a random nobody handed out
            assert await login_with(lambda seed: solve(seed, 1), "0" * 32) == {
                "error": "unknown, expired or already used random"
            }

            # a good login spends its random: the same request again is refused
            seed = (await gc.seed())["random"]
            body = {
                "password": ADMIN_PASSWORD,
                "username": "admin",
                "random": seed,
                "proofofwork": solve(seed, 1),
            }
            first = (await gc.post(body, "password")).json()
            assert "session_token" in first
            replay = (await gc.post(body, "password")).json()
            assert replay == {"error": "unknown, expired or already used random"}
            # so is a failed one's
            seed = (await gc.seed())["random"]
            body.update(random=seed, password="wrong-password", proofofwork=solve(seed, 1))
            assert "error" in (await gc.post(body, "password")).json()
            body["password"] = ADMIN_PASSWORD
            assert (await gc.post(body, "password")).json() == replay
        messages = await auth_audit(daemon)
        assert any(m.startswith("login failed (GameConsole): 1 proofs") for m in messages)


@pytest.mark.parametrize(
    "body",
    [
        {"username": 5, "password": "x", "random": "y"},
        {"username": "admin", "password": "x", "random": "y", "proofofwork": "abc"},
        {"username": "admin", "password": "x", "random": "y", "proofofwork": [1, 2]},
        {"username": "admin", "password": "x", "random": "y", "proofofwork": ["a"] * 129},
        {"username": "admin", "password": "x", "random": "r" * 65},
        {"username": "a" * 65, "password": "x", "random": "y"},
        [],
        "text",
    ],
)
async def test_hostile_login_bodies(daemon: RunningDaemon, body: Any) -> None:
    with trio.fail_after(30):
        async with daemon.http() as client:
            response = await GameConsole(client).post(body, "password")
            assert_error(response, 400)


async def test_failures_ask_for_more_proofs(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data",
        http=ON,
        auth={"pow_difficulty": 16, "pow_count": 1, "pow_max_difficulty": 20},
    )
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon, daemon.http() as client:
            gc = GameConsole(client)
            early = await gc.seed()
            assert early["proofs"] == 1
            for _ in range(2):
                assert "error" in await gc.try_login("admin", "wrong-password")
            # two failures from this address: one more bit, twice the proofs
            assert (await gc.seed())["proofs"] == 2
            stale = await gc.post(
                {
                    "password": ADMIN_PASSWORD,
                    "username": "admin",
                    "random": early["random"],
                    "proofofwork": solve(early["random"], 1),
                },
                "password",
            )
            assert stale.json() == {
                "error": "more proof of work is needed now; the next random asks for it"
            }
            answer = await gc.try_login("admin", ADMIN_PASSWORD)
            assert "session_token" in answer, answer


async def test_randoms_are_rate_limited(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", http=ON, auth={"login_info_per_minute": 3})
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon, daemon.http() as client:
            gc = GameConsole(client)
            for _ in range(3):
                await gc.seed()
            assert_error(await gc.post({}, "password"), 429)


def test_the_service_is_refused_where_its_login_would_be_cheaper() -> None:
    """Proofs of 16 bits, at most 64: a login cost beyond that cannot be matched, so the
    service may not be turned on with it (it would be the cheaper way to guess)."""
    on = {"gameconsole_service": True}
    dearer = {"pow_count": 4, "pow_max_difficulty": 21}
    with pytest.raises(ConfigError) as refused:
        load_settings(None, environ={}, overrides={"http": on, "auth": dearer})
    assert refused.value.field == "http.gameconsole_service"
    load_settings(None, environ={}, overrides={"http": on, "auth": {"pow_max_difficulty": 20}})
    load_settings(None, environ={}, overrides={"auth": dearer})  # off: nothing to match

"""Shared fixtures: settings for a cheap, isolated daemon and a running in-process daemon."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from leosuite.daemon import Daemon, Endpoints
from leosuite.settings import Settings, load_settings

ADMIN_PASSWORD = "admin-password-1"


def make_settings(data_dir: Path, **sections: dict[str, Any]) -> Settings:
    """Settings for tests: port 0 everywhere, cheap argon2 and proof-of-work."""
    overrides: dict[str, dict[str, Any]] = {
        "daemon": {"data_dir": str(data_dir)},
        "http": {"listen": "127.0.0.1:0"},
        "ws": {"listen": "127.0.0.1:0"},
        "admin": {"listen": "127.0.0.1:0"},
        "auth": {
            "pow_difficulty": 4,
            "pow_count": 2,
            "pow_max_difficulty": 8,
            "hash_time_cost": 1,
            "hash_memory_kib": 64,
        },
    }
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return load_settings(None, environ={}, overrides=overrides)


class RunningDaemon:
    def __init__(self, daemon: Daemon, endpoints: Endpoints, out: io.StringIO) -> None:
        self.daemon = daemon
        self.endpoints = endpoints
        self.out = out

    @property
    def ctx(self) -> Any:
        return self.daemon.context

    def http(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.endpoints.http, timeout=10, **kwargs)

    def admin(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.endpoints.admin, timeout=10, **kwargs)


async def start_daemon(
    nursery: trio.Nursery, settings: Settings, environ: dict[str, str] | None = None
) -> RunningDaemon:
    out = io.StringIO()
    env = {"LEOSUITE_ADMIN_PASSWORD": ADMIN_PASSWORD} if environ is None else environ
    daemon = Daemon(settings, environ=env, out=out, handle_signals=False)
    endpoints = await nursery.start(daemon.run)
    return RunningDaemon(daemon, endpoints, out)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
async def daemon(settings: Settings) -> AsyncIterator[RunningDaemon]:
    async with trio.open_nursery() as nursery:
        running = await start_daemon(nursery, settings)
        yield running
        running.daemon.request_stop()


async def login(
    client: httpx.AsyncClient, username: str = "admin", password: str = ADMIN_PASSWORD
) -> str:
    """Run the whole proof-of-work login over HTTP; returns the access token."""
    from leosuite.auth.pow import solve

    info = (await client.get("/api/auth/login_info")).json()
    proofs = solve(info["random"], count=info["proof_of_works"], difficulty=info["difficulty"])
    response = await client.post(
        "/api/auth/login",
        json={
            "username": username,
            "password": password,
            "random": info["random"],
            "proof_of_works": proofs,
        },
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token

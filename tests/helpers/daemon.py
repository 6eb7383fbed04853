"""The daemon under test: settings for a cheap, isolated daemon, the in-process daemon
and its endpoints, the proof-of-work login over HTTP, and the environment of a daemon
run as a child process."""

from __future__ import annotations

import io
import os
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

from leosuite.auth.pow import solve
from leosuite.daemon import Daemon, Endpoints
from leosuite.settings import Settings, load_settings

ADMIN_PASSWORD = "admin-password-1"

#: One TLS context for every test client (the daemons here speak plain HTTP): httpx
#: would read the system's CA certificates again for each client it makes.
CLIENT_TLS = ssl.create_default_context()

#: The ``store`` section for a data directory when the run's store is not SQLite
#: (tests/conftest.py sets it for ``--store=postgresql``: one database per data directory).
store_for: Callable[[Path], dict[str, Any]] | None = None


def make_settings(data_dir: Path, **sections: dict[str, Any]) -> Settings:
    """Settings for tests: port 0 everywhere, cheap argon2 and proof-of-work."""
    overrides: dict[str, dict[str, Any]] = {
        "daemon": {"data_dir": str(data_dir)},
        "http": {"listen": "127.0.0.1:0"},
        "ws": {"listen": "127.0.0.1:0"},
        "admin": {"listen": "127.0.0.1:0"},
        # No cgroups: daemons of tests running side by side would share one root.
        "limits": {"enabled": "off"},
        "auth": {
            "pow_difficulty": 4,
            "pow_count": 2,
            "pow_max_difficulty": 8,
            "hash_time_cost": 1,
            "hash_memory_kib": 64,
        },
    }
    if store_for is not None and "store" not in sections:
        overrides["store"] = store_for(data_dir)
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
        kwargs.setdefault("verify", CLIENT_TLS)
        return httpx.AsyncClient(base_url=self.endpoints.http, timeout=10, **kwargs)

    def admin(self, **kwargs: Any) -> httpx.AsyncClient:
        kwargs.setdefault("verify", CLIENT_TLS)
        return httpx.AsyncClient(base_url=self.endpoints.admin, timeout=10, **kwargs)


async def start_daemon(
    nursery: trio.Nursery, settings: Settings, environ: dict[str, str] | None = None
) -> RunningDaemon:
    """Start a daemon in ``nursery``; its first admin's password is :data:`ADMIN_PASSWORD`
    unless ``environ`` replaces the environment it reads."""
    out = io.StringIO()
    env = {"LEOSUITE_ADMIN_PASSWORD": ADMIN_PASSWORD} if environ is None else environ
    daemon = Daemon(settings, environ=env, out=out, handle_signals=False)
    endpoints = await nursery.start(daemon.run)
    return RunningDaemon(daemon, endpoints, out)


@asynccontextmanager
async def running_daemon(settings: Settings) -> AsyncIterator[RunningDaemon]:
    """A daemon that runs for the block and is asked to stop when it ends."""
    async with trio.open_nursery() as nursery:
        running = await start_daemon(nursery, settings)
        try:
            yield running
        finally:
            running.daemon.request_stop()


async def login(
    client: httpx.AsyncClient, username: str = "admin", password: str = ADMIN_PASSWORD
) -> str:
    """Run the whole proof-of-work login over HTTP; returns the access token."""
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


def store_env(data_dir: Path) -> dict[str, str]:
    """What a child process's environment adds to open the store of ``data_dir`` on the
    run's back-end (nothing for SQLite: the file in the data directory)."""
    if store_for is None:
        return {}
    return {"LEOSUITE_STORE_URL": str(store_for(data_dir)["url"])}


def base_env(**extra: str) -> dict[str, str]:
    """The environment of a daemon run as a child process: this one without leosuite's
    and systemd's variables, with cheap argon2 and proof-of-work, unbuffered output."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LEOSUITE_", "NOTIFY_SOCKET", "WATCHDOG_"))
    }
    env.update(
        LEOSUITE_AUTH_HASH_MEMORY_KIB="64",
        LEOSUITE_AUTH_HASH_TIME_COST="1",
        LEOSUITE_AUTH_POW_DIFFICULTY="4",
        LEOSUITE_AUTH_POW_COUNT="2",
        LEOSUITE_LIMITS_ENABLED="off",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env

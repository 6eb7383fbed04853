"""``GET /healthz`` and ``GET /readyz`` on the HTTP listener: public and cheap, refused
under a foreign Host like every call; ``/readyz`` turns 503 naming the check that fails
when the store cannot be written or free disk space is below the warning threshold."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from leosuite.api.metrics import readiness
from tests.helpers.daemon import RunningDaemon, make_settings, running_daemon


@contextlib.contextmanager
def unwritable(*paths: Path) -> Iterator[None]:
    """Make ``paths`` unwritable for this process: immutable for root (which file modes
    do not stop), read-only modes for anyone else; undone on the way out."""
    root = os.geteuid() == 0
    modes = {p: p.stat().st_mode for p in paths}
    if root:
        subprocess.run(["chattr", "+i", *map(str, paths)], check=True)
    else:
        for path in paths:
            path.chmod(modes[path] & ~0o222)
    try:
        yield
    finally:
        if root:
            subprocess.run(["chattr", "-i", *map(str, paths)], check=True)
        for path, mode in modes.items():
            path.chmod(mode)


async def test_healthz_and_readyz_answer_without_credentials(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as client:
            live = await client.get("/healthz")
            assert (live.status_code, live.json()) == (200, {"status": "ok"})
            ready = await client.get("/readyz")
            assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
            for path in ("/healthz", "/readyz"):
                foreign = await client.get(path, headers={"Host": "evil.example"})
                assert foreign.status_code == 421


@pytest.mark.sqlite_only  # the store's file made immutable
async def test_readyz_is_503_while_the_store_cannot_be_written(daemon: RunningDaemon) -> None:
    store = daemon.ctx.settings.db_path
    # Not the -shm file: the store maps it, and an immutable mapping faults the daemon.
    files = [p for p in (store, store.with_name(store.name + "-wal")) if p.exists()]
    with trio.fail_after(30):
        async with daemon.http() as client:
            with unwritable(*files):
                refused = await client.get("/readyz")
            assert refused.status_code == 503
            body = refused.json()
            assert body["status"] == "unready"
            assert set(body["failing"]) == {"store"}
            assert store.name in body["failing"]["store"]
            again = await client.get("/readyz")
            assert (again.status_code, again.json()) == (200, {"status": "ready"})


async def test_readyz_is_503_below_the_disk_warning_threshold(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", daemon={"disk_warn_free_percent": 100.0})
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon, daemon.http() as client:
            refused = await client.get("/readyz")
            assert refused.status_code == 503
            failing = refused.json()["failing"]
            assert set(failing) == {"disk"}
            assert "low" in failing["disk"]
            live = await client.get("/healthz")
            assert live.status_code == 200


def test_readiness_names_the_listeners_that_do_not_serve(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    tmp_path.joinpath("leosuite.db").write_bytes(b"")
    assert readiness(settings, {"http", "ws", "admin"}) == {}
    assert readiness(settings, {"http"}) == {"listeners": "not serving: ws, admin"}


def test_readiness_names_a_lost_store_connection(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    tmp_path.joinpath("leosuite.db").write_bytes(b"")
    lost = readiness(settings, {"http", "ws", "admin"}, time.monotonic() - 5.2)
    assert lost == {"store": "the connection to the store is lost since 5 s"}

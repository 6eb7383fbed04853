"""``leosuite serve`` as a real child process that a test may kill and start again on
the same data directory, with an HTTP :class:`Api` client for each start."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import trio

from tests.helpers.daemon import base_env, login
from tests.helpers.http import Api

PASSWORD = "served-admin-pw"


def serve_argv(data_dir: Path, *extra: str) -> list[str]:
    ports = ("--http", "127.0.0.1:0", "--ws", "127.0.0.1:0", "--admin", "127.0.0.1:0")
    return [sys.executable, "-m", "leosuite", "serve", "--data-dir", str(data_dir), *ports, *extra]


class Served:
    """One run of the daemon: its process, its endpoints once it serves."""

    def __init__(self, proc: trio.Process, data_dir: Path, err: Path) -> None:
        self.proc = proc
        self.data_dir = data_dir
        self.err_path = err
        self.endpoints: dict[str, Any] = {}

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    async def wait_ready(self) -> dict[str, Any]:
        """Poll until ``run/endpoints.json`` names this process."""
        path = self.data_dir / "run" / "endpoints.json"
        while True:
            assert self.proc.returncode is None, f"daemon exited early:\n{self.stderr}"
            try:
                data: dict[str, Any] = json.loads(path.read_text())
            except (OSError, ValueError):
                data = {}
            if data.get("pid") == self.proc.pid:
                self.endpoints = data
                return data
            await trio.sleep(0.02)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)

    async def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return await self.proc.wait()

    @asynccontextmanager
    async def api(self) -> AsyncIterator[Api]:
        async with httpx.AsyncClient(base_url=self.endpoints["http"], timeout=20) as client:
            token = await login(client, password=PASSWORD)
            yield Api(client, token)


@asynccontextmanager
async def served(data_dir: Path, *extra: str, **env: str) -> AsyncIterator[Served]:
    """Run the daemon on ``data_dir`` until the block ends (killed then if still alive;
    the servers it started are the caller's to clean up)."""
    environ = base_env(LEOSUITE_ADMIN_PASSWORD=PASSWORD, **env)
    data_dir.mkdir(parents=True, exist_ok=True)
    err = data_dir.parent / f"{data_dir.name}-stderr-{len(list(data_dir.parent.iterdir()))}.txt"
    async with trio.open_nursery() as nursery:
        with err.open("wb") as stderr:
            proc: trio.Process = await nursery.start(
                partial(
                    trio.run_process,
                    serve_argv(data_dir, *extra),
                    stdout=stderr,
                    stderr=stderr,
                    env=environ,
                    check=False,
                )
            )
        run = Served(proc, data_dir, err)
        try:
            await run.wait_ready()
            yield run
        finally:
            if proc.returncode is None:
                proc.kill()

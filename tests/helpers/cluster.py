"""Nodes of a cluster under test: each a real ``leosuite serve`` child process with a
data directory, a settings file and a node name of its own, every listener on
127.0.0.1 port 0, all of them on one PostgreSQL store.

A :class:`ClusterNode` can be started, stopped (SIGTERM), killed (SIGKILL: its servers
keep running, as after a crash) and started again on the same data directory. The
:func:`cluster` block kills whatever is left at its end: the daemons, and every
process still running in one of their data directories (servers a killed node left).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import trio

from tests.helpers.daemon import CLIENT_TLS, base_env, login
from tests.helpers.http import Api
from tests.helpers.ws import WsClient

__all__ = ["ADMIN_PASSWORD", "ClusterNode", "cluster", "processes_under"]

#: The first admin's password (the first node that opens the store creates that account).
ADMIN_PASSWORD = "cluster-admin-pw"

#: Short heartbeats, so that an unreachable node shows within a test's patience.
FAST_NODE = {"heartbeat_interval": 0.2, "heartbeat_timeout": 1.5}


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def settings_toml(sections: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


class ClusterNode:
    """One node: ``root/<name>/`` holds its settings file, data directory and stderr."""

    def __init__(self, root: Path, name: str, store_url: str, **sections: dict[str, Any]) -> None:
        self.name = name
        self.root = root / name
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.root / "data"
        self.config = self.root / "leosuite.toml"
        self.err_path = self.root / "stderr.txt"
        settings: dict[str, dict[str, Any]] = {
            "daemon": {"data_dir": str(self.data_dir), "shutdown_timeout": 10.0},
            "store": {"url": store_url},
            "node": {"name": name, **FAST_NODE},
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
        for section, values in sections.items():
            settings.setdefault(section, {}).update(values)
        self.config.write_text(settings_toml(settings))
        self.proc: trio.Process | None = None
        self.endpoints: dict[str, Any] = {}
        #: Every daemon process this node ran (they are all killed at the end).
        self.pids: list[int] = []

    # -- the process ----------------------------------------------------------

    @property
    def stderr(self) -> str:
        try:
            return self.err_path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def argv(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "leosuite", "serve", "--config", str(self.config), *extra]

    async def start(self, *, timeout: float = 60) -> dict[str, Any]:
        """Start the daemon and wait until it serves; its ``endpoints.json``."""
        assert not self.running, f"node {self.name} runs already"
        with self.err_path.open("ab") as err:
            self.proc = await trio.lowlevel.open_process(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=base_env(LEOSUITE_ADMIN_PASSWORD=ADMIN_PASSWORD),
            )
        self.pids.append(self.proc.pid)
        with trio.fail_after(timeout):
            self.endpoints = await self._wait_ready()
        return self.endpoints

    async def _wait_ready(self) -> dict[str, Any]:
        path = self.data_dir / "run" / "endpoints.json"
        while True:
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise AssertionError(
                    f"node {self.name} exited ({self.proc.returncode}):\n{self.stderr[-4000:]}"
                )
            with suppress(OSError, ValueError):
                data: dict[str, Any] = json.loads(path.read_text())
                if data.get("pid") == self.proc.pid:
                    return data
            await trio.sleep(0.05)

    async def stop(self, *, timeout: float = 60) -> int:
        """SIGTERM, then wait for the exit (its servers stop with it); the exit status."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        with trio.fail_after(timeout):
            return await self.proc.wait()

    async def kill(self) -> int:
        """SIGKILL, as a crash: its servers keep running, its heartbeat stops."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.kill()
        return await self.proc.wait()

    # -- its endpoints ----------------------------------------------------------

    @property
    def http_url(self) -> str:
        return str(self.endpoints["http"])

    @property
    def ws_url(self) -> str:
        return str(self.endpoints["ws"])

    @property
    def admin_url(self) -> str:
        return str(self.endpoints["admin"])

    def http(self, **kwargs: Any) -> httpx.AsyncClient:
        kwargs.setdefault("timeout", 20)
        kwargs.setdefault("verify", CLIENT_TLS)
        return httpx.AsyncClient(base_url=self.http_url, **kwargs)

    def admin(self, **kwargs: Any) -> httpx.AsyncClient:
        """A client of the admin listener, with the first admin's Basic credentials."""
        kwargs.setdefault("timeout", 20)
        kwargs.setdefault("auth", ("admin", ADMIN_PASSWORD))
        kwargs.setdefault("verify", CLIENT_TLS)
        return httpx.AsyncClient(base_url=self.admin_url, **kwargs)

    @asynccontextmanager
    async def api(
        self, username: str = "admin", password: str = ADMIN_PASSWORD
    ) -> AsyncIterator[Api]:
        """An :class:`~tests.helpers.http.Api` of this node's HTTP API, logged in."""
        async with self.http() as client:
            yield Api(client, await login(client, username, password))

    @asynccontextmanager
    async def ws(
        self, username: str = "admin", password: str = ADMIN_PASSWORD, *, log_in: bool = True
    ) -> AsyncIterator[WsClient]:
        """A WebSocket client of this node, logged in unless ``log_in`` is false."""
        from trio_websocket import open_websocket_url

        async with open_websocket_url(self.ws_url + "/") as conn:
            client = WsClient(conn)
            if log_in:
                await client.login(username, password)
            yield client

    async def run_cli(self, *argv: str, timeout: float = 60) -> tuple[int, str, str]:
        """``leosuite ARGV... --config <this node's file>`` with HOME in this node's
        folder (a saved login stays there): status, stdout, stderr."""
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        with trio.fail_after(timeout):
            done = await trio.run_process(
                [sys.executable, "-m", "leosuite", *argv, "--config", str(self.config)],
                env={**base_env(HOME=str(home)), "XDG_CONFIG_HOME": str(home / ".config")},
                check=False,
                capture_stdout=True,
                capture_stderr=True,
            )
        return done.returncode, done.stdout.decode(), done.stderr.decode()


def processes_under(directories: Iterable[Path]) -> list[int]:
    """Pids of processes whose working directory is inside one of ``directories``."""
    roots = [str(d.resolve()) for d in directories]
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError):
            cwd = os.readlink(entry / "cwd")
            if any(cwd == root or cwd.startswith(root + os.sep) for root in roots):
                found.append(int(entry.name))
    return found


def _kill_all(nodes: Iterable[ClusterNode]) -> None:
    nodes = list(nodes)
    for node in nodes:
        for pid in node.pids:
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    for pid in processes_under(node.data_dir for node in nodes):
        if pid == os.getpid():
            continue
        with suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)


@asynccontextmanager
async def cluster(
    root: Path, store_url: str, *names: str, start: bool = True, **sections: dict[str, Any]
) -> AsyncIterator[list[ClusterNode]]:
    """Nodes ``names`` on one store (started one after the other unless ``start`` is
    false); at the end the running ones are asked to stop and everything left is killed."""
    nodes = [ClusterNode(root, name, store_url, **sections) for name in names]
    try:
        if start:
            for node in nodes:
                await node.start()
        yield nodes
    finally:
        with trio.CancelScope(shield=True):
            for node in nodes:
                if node.running:
                    with suppress(Exception):
                        await node.stop(timeout=20)
            _kill_all(nodes)
            for node in nodes:
                if node.proc is not None and node.proc.returncode is None:
                    with trio.move_on_after(10):
                        await node.proc.wait()

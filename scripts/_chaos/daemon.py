"""``leosuite serve`` as a child process on one data directory, started again after
each fault, and an authenticated JSON client that follows it to its new ports.

The daemon runs in a session of its own with 127.0.0.1 port-0 listeners, cheap login
settings and a hard descriptor limit (so that a client can exhaust it); its output goes
to one log file per start. A call that fails says whether the request may have reached
the daemon (:attr:`CallFailed.sent`): a refused connection changed nothing, a cut one
may have.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import trio

from leosuite.auth.pow import solve

__all__ = ["PASSWORD", "Api", "CallFailed", "Daemon", "DaemonDied"]

PASSWORD = "chaos-admin-password"  # noqa: S105 (a throwaway daemon's)
#: How long a start may take before the run gives up on the daemon.
START_LIMIT = 60.0


class DaemonDied(Exception):
    """The daemon exited while the run waited for it to serve."""


class CallFailed(Exception):
    """An API call that did not succeed: ``status`` for an HTTP answer, None when the
    connection failed; ``sent`` is False only when the daemon cannot have seen it."""

    def __init__(self, what: str, *, status: int | None = None, sent: bool = True) -> None:
        super().__init__(what)
        self.status = status
        self.sent = sent


def daemon_env(on_exit: str, extra: dict[str, str]) -> dict[str, str]:
    """This environment without leosuite's and systemd's variables, plus the run's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LEOSUITE_", "NOTIFY_SOCKET", "WATCHDOG_"))
    }
    env.update(
        LEOSUITE_ADMIN_PASSWORD=PASSWORD,
        LEOSUITE_AUTH_HASH_MEMORY_KIB="64",
        LEOSUITE_AUTH_HASH_TIME_COST="1",
        LEOSUITE_AUTH_POW_DIFFICULTY="4",
        LEOSUITE_AUTH_POW_COUNT="2",
        LEOSUITE_DAEMON_ON_EXIT=on_exit,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Daemon:
    """Successive daemon processes on one data directory (one at a time)."""

    def __init__(
        self, data_dir: Path, log_dir: Path, settings: dict[str, str], *, nofile: int | None
    ) -> None:
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.settings = settings
        self.nofile = nofile
        self.proc: trio.Process | None = None
        self.on_exit = "stop"
        self.endpoints: dict[str, Any] = {}
        self.starts = 0
        self.token: str | None = None
        self._login_lock = trio.Lock()
        self._log_path: Path | None = None

    # -- the process ---------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def http_url(self) -> str | None:
        return self.endpoints.get("http") if self.running else None

    def _limit_descriptors(self) -> None:
        """In the child before exec: both limits to ``nofile`` (the daemon raises its soft
        limit to the hard one, so the hard one is what counts)."""
        if self.nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    async def start(self, on_exit: str) -> float:
        """Start a daemon (``daemon.on_exit`` = ``on_exit``); seconds until it served."""
        assert not self.running, "a daemon is running already"
        self.starts += 1
        self.on_exit = on_exit
        self.endpoints = {}
        self._log_path = self.log_dir / f"daemon-{self.starts}.log"
        argv = [sys.executable, "-m", "leosuite", "serve", "--data-dir", str(self.data_dir)]
        argv += ["--http", "127.0.0.1:0", "--ws", "127.0.0.1:0", "--admin", "127.0.0.1:0"]
        began = trio.current_time()
        with self._log_path.open("wb") as log:
            self.proc = await trio.lowlevel.open_process(
                argv,
                cwd=str(self.log_dir),  # not the repository: `-m` puts the cwd on sys.path
                env=daemon_env(on_exit, self.settings),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self._limit_descriptors,
            )
        with trio.move_on_after(START_LIMIT):
            await self.wait_serving(lambda data: data.get("pid") == self.pid)
            return trio.current_time() - began
        await self.kill()
        raise DaemonDied(f"the daemon did not serve within {START_LIMIT:.0f} s\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def read_endpoints(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(
                (self.data_dir / "run" / "endpoints.json").read_text()
            )
        except (OSError, ValueError):
            return {}
        return data

    async def wait_serving(self, ready: Callable[[dict[str, Any]], bool]) -> None:
        """Poll ``endpoints.json`` until ``ready`` accepts it (callers bound the wait)."""
        while True:
            if not self.running:
                raise DaemonDied(f"the daemon exited ({self.returncode})\n{self.log_tail()}")
            data = self.read_endpoints()
            if data and ready(data):
                self.endpoints = data
                return
            await trio.sleep(0.01)

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    def send(self, signum: signal.Signals) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signum)

    async def wait_exit(self, limit: float) -> int | None:
        """The exit code, or None if the daemon still runs after ``limit`` seconds."""
        assert self.proc is not None
        with trio.move_on_after(limit):
            return await self.proc.wait()
        return None

    async def kill(self) -> int:
        """SIGKILL the daemon (never its servers) and wait for it."""
        if self.proc is None:
            return 0
        self.send(signal.SIGKILL)
        return await self.proc.wait()

    def log_tail(self, lines: int = 15) -> str:
        if self._log_path is None:
            return ""
        try:
            text = self._log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- logging in ----------------------------------------------------------------

    async def login(self, url: str) -> str:
        """The proof-of-work login as admin; the token is kept for every client."""
        async with self._login_lock:
            async with httpx.AsyncClient(base_url=url, timeout=20, trust_env=False) as client:
                try:
                    info = (await client.get("/api/auth/login_info")).json()
                    proofs = solve(
                        info["random"], count=info["proof_of_works"], difficulty=info["difficulty"]
                    )
                    answer = await client.post(
                        "/api/auth/login",
                        json={
                            "username": "admin",
                            "password": PASSWORD,
                            "random": info["random"],
                            "proof_of_works": proofs,
                        },
                    )
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    raise CallFailed(f"login: {exc!r}", sent=False) from exc
            if answer.status_code != 200:
                raise CallFailed(f"login: {answer.status_code} {answer.text}", sent=False)
            token: str = answer.json()["access_token"]
            self.token = token
            return token


class Api:
    """One JSON client of the daemon that runs now (its own connections)."""

    def __init__(self, daemon: Daemon, *, timeout: float = 10.0) -> None:
        self._daemon = daemon
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._url: str | None = None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _connection(self) -> httpx.AsyncClient:
        url = self._daemon.http_url
        if url is None:
            raise CallFailed("the daemon is not running", sent=False)
        if url != self._url or self._client is None:
            await self.aclose()
            self._client = httpx.AsyncClient(base_url=url, timeout=self._timeout, trust_env=False)
            self._url = url
        return self._client

    async def call(
        self, path: str, body: dict[str, Any] | None = None, *, relogin: bool = True
    ) -> Any:
        """POST ``/api/<path>``; the decoded answer (None for 204), or :class:`CallFailed`.
        A refused token is renewed once with a new login (unless ``relogin`` is False)."""
        client = await self._connection()
        if self._daemon.token is None:
            await self._daemon.login(str(client.base_url))
        for attempt in (0, 1):
            headers = {"Authorization": f"Bearer {self._daemon.token}"}
            try:
                answer = await client.post(f"/api/{path}", json=body or {}, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise CallFailed(f"{path}: {exc!r}", sent=False) from exc
            except httpx.HTTPError as exc:
                raise CallFailed(f"{path}: {exc!r}") from exc
            if answer.status_code == 403 and relogin and not attempt:
                await self._daemon.login(str(client.base_url))
                continue
            if answer.status_code >= 400:
                raise CallFailed(
                    f"{path}: HTTP {answer.status_code} {answer.text[:200]}",
                    status=answer.status_code,
                )
            return answer.json() if answer.status_code == 200 else None
        raise AssertionError("unreachable")

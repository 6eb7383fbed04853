"""``leosuite serve`` as a real child process: ready file, sd_notify, SIGTERM, the data
directory lock, a taken port, bad config, ``config show`` and the first admin password."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import stat
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.helpers.daemon import base_env, login

ADMIN_PASSWORD = "process-admin-pw"


def serve_argv(data_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "leosuite",
        "serve",
        "--data-dir",
        str(data_dir),
        "--http",
        "127.0.0.1:0",
        "--ws",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        *extra,
    ]


class Daemon:
    def __init__(self, proc: trio.Process, data_dir: Path, out: Path, err: Path) -> None:
        self.proc = proc
        self.data_dir = data_dir
        self.out_path = out
        self.err_path = err
        self.endpoints: dict[str, Any] = {}

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    async def wait_ready(self) -> dict[str, Any]:
        """Poll for ``<data>/run/endpoints.json`` (signals before it kill the import)."""
        path = self.data_dir / "run" / "endpoints.json"
        while not path.exists():
            assert self.proc.returncode is None, f"daemon exited early:\n{self.stderr}"
            await trio.sleep(0.02)
        self.endpoints = json.loads(path.read_text())
        return self.endpoints

    async def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return await self.proc.wait()


@asynccontextmanager
async def running(
    tmp_path: Path, env: dict[str, str], *extra: str, data_dir: Path | None = None
) -> AsyncIterator[Daemon]:
    data_dir = data_dir or tmp_path / "data"
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    async with trio.open_nursery() as nursery:
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc: trio.Process = await nursery.start(
                partial(
                    trio.run_process,
                    serve_argv(data_dir, *extra),
                    stdout=stdout,
                    stderr=stderr,
                    env=env,
                    check=False,
                )
            )
        daemon = Daemon(proc, data_dir, out, err)
        try:
            yield daemon
        finally:
            if proc.returncode is None:
                proc.kill()


async def run_cli(argv: Sequence[str], env: dict[str, str]) -> tuple[int, str, str]:
    result = await trio.run_process(
        [sys.executable, "-m", "leosuite", *argv],
        env=env,
        check=False,
        capture_stdout=True,
        capture_stderr=True,
    )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def http_login(base: str, password: str = ADMIN_PASSWORD) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        return await login(client, password=password)


def read_db(data_dir: Path, query: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(data_dir / "leosuite.db")
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


class NotifySocket:
    """A unix datagram socket standing in for systemd's ``$NOTIFY_SOCKET``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.messages: list[str] = []
        self._changed = trio.Event()

    async def __aenter__(self) -> NotifySocket:
        await self.sock.bind(str(self.path))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.sock.close()

    async def receive_forever(self) -> None:
        while True:
            data = await self.sock.recv(4096)
            self.messages.extend(data.decode().split("\n"))
            self._changed.set()
            self._changed = trio.Event()

    async def wait_for(self, line: str, count: int = 1) -> None:
        while self.messages.count(line) < count:
            await self._changed.wait()


async def test_sigterm_exits_0_with_audit_and_notify(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with NotifySocket(tmp_path / "notify.sock") as notify, trio.open_nursery() as nursery:
            env = base_env(
                LEOSUITE_ADMIN_PASSWORD=ADMIN_PASSWORD,
                NOTIFY_SOCKET=str(notify.path),
                WATCHDOG_USEC="200000",
            )
            nursery.start_soon(notify.receive_forever)
            async with running(tmp_path, env) as daemon:
                endpoints = await daemon.wait_ready()
                assert endpoints["pid"] == daemon.proc.pid
                assert set(endpoints) == {"http", "ws", "admin", "pid", "generation"}
                await notify.wait_for("READY=1")
                await notify.wait_for("WATCHDOG=1", count=3)  # every 0.1 s
                token = await http_login(endpoints["http"])
                assert "STOPPING=1" not in notify.messages
                assert await daemon.terminate() == 0
                await notify.wait_for("STOPPING=1")
                assert notify.messages.index("READY=1") < notify.messages.index("STOPPING=1")
                assert "Traceback" not in daemon.stderr
            nursery.cancel_scope.cancel()
    data = tmp_path / "data"
    assert not (data / "run" / "endpoints.json").exists()
    assert read_db(data, "PRAGMA integrity_check") == [("ok",)]
    messages = [m for (m,) in read_db(data, "SELECT message FROM audit_log ORDER BY id")]
    assert messages[0].startswith("started (pid")
    assert "login" in messages
    assert messages[-1] == "stopping"
    # The token survives the restart of the store file.
    assert len(read_db(data, "SELECT token_hash FROM tokens")) == 1
    assert len(token) == 64


async def test_sigint_also_exits_0(tmp_path: Path) -> None:
    env = base_env(LEOSUITE_ADMIN_PASSWORD=ADMIN_PASSWORD)
    with trio.fail_after(30):
        async with running(tmp_path, env) as daemon:
            await daemon.wait_ready()
            daemon.proc.send_signal(signal.SIGINT)
            assert await daemon.proc.wait() == 0
            assert "Traceback" not in daemon.stderr
    messages = [m for (m,) in read_db(tmp_path / "data", "SELECT message FROM audit_log")]
    assert messages[-1] == "stopping"


async def test_in_flight_request_is_answered_during_shutdown(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with NotifySocket(tmp_path / "notify.sock") as notify, trio.open_nursery() as nursery:
            env = base_env(LEOSUITE_ADMIN_PASSWORD=ADMIN_PASSWORD, NOTIFY_SOCKET=str(notify.path))
            nursery.start_soon(notify.receive_forever)
            async with running(tmp_path, env) as daemon:
                endpoints = await daemon.wait_ready()
                host, port = endpoints["http"].rsplit("//", 1)[1].rsplit(":", 1)
                body = b'{"token": "' + b"0" * 64 + b'"}'
                stream = await trio.open_tcp_stream(host, int(port))
                async with stream:
                    await stream.send_all(
                        b"POST /api/auth/logout HTTP/1.1\r\nHost: localhost\r\n"
                        b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
                        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
                    )
                    # "100 Continue" proves the request is in the app: in flight.
                    received = b""
                    while b"\r\n\r\n" not in received:
                        received += await stream.receive_some(4096)
                    assert received.startswith(b"HTTP/1.1 100"), received
                    daemon.proc.send_signal(signal.SIGTERM)
                    await notify.wait_for("STOPPING=1")
                    await stream.send_all(body)
                    answer = b""
                    while b'"}' not in answer:
                        chunk = await stream.receive_some(4096)
                        assert chunk, f"connection closed without an answer: {answer!r}"
                        answer += chunk
                assert answer.startswith(b"HTTP/1.1 403"), answer
                assert b'"error_type":"forbidden"' in answer
                assert await daemon.proc.wait() == 0
            nursery.cancel_scope.cancel()


async def test_second_serve_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    env = base_env(LEOSUITE_ADMIN_PASSWORD=ADMIN_PASSWORD)
    data = tmp_path / "data"
    with trio.fail_after(30):
        async with running(tmp_path, env) as daemon:
            endpoints = await daemon.wait_ready()
            code, _out, err = await run_cli(
                serve_argv(data)[3:],
                env,  # the same argv, through run_cli
            )
            assert code == 1
            lines = err.strip().splitlines()
            assert len(lines) == 1, err
            assert "data directory" in lines[0]
            assert str(data) in lines[0]
            assert str(daemon.proc.pid) in lines[0]
            # The first one is untouched: still serving, its endpoints file intact.
            assert json.loads((data / "run" / "endpoints.json").read_text()) == endpoints
            await http_login(endpoints["http"])
            assert await daemon.terminate() == 0


async def test_taken_port_is_one_clear_line(tmp_path: Path) -> None:
    env = base_env(LEOSUITE_ADMIN_PASSWORD=ADMIN_PASSWORD)
    with trio.fail_after(30):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            argv = [*serve_argv(tmp_path / "data")[3:], "--http", f"127.0.0.1:{port}"]
            code, _out, err = await run_cli(argv, env)
    assert code == 1
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("leosuite: cannot listen on ")
    assert f"127.0.0.1:{port}" in lines[0]
    assert "address is already in use" in lines[0]
    # Nothing was left behind that would block the next start.
    assert not (tmp_path / "data" / "run" / "endpoints.json").exists()


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[http]\nlisten = '127.0.0.1:0'\nbogus = 1\n", "http.bogus"),
        ("[nosuchsection]\nx = 1\n", "nosuchsection"),
        ("[auth]\npow_count = 'four'\n", "auth.pow_count"),
        ("[ws]\nlisten = 'nowhere'\n", "ws.listen"),
    ],
    ids=["unknown-key", "unknown-section", "wrong-type", "bad-address"],
)
async def test_bad_config_file_names_the_key(tmp_path: Path, toml: str, key: str) -> None:
    config = tmp_path / "leosuite.toml"
    config.write_text(toml)
    env = base_env(LEOSUITE_ADMIN_PASSWORD=ADMIN_PASSWORD)
    with trio.fail_after(30):
        argv = ["serve", "--config", str(config), "--data-dir", str(tmp_path / "data")]
        code, _, err = await run_cli(argv, env)
    assert code == 1
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert key in err
    assert not (tmp_path / "data" / "leosuite.db").exists()


async def test_unknown_environment_setting_is_refused(tmp_path: Path) -> None:
    env = base_env(LEOSUITE_HTTP_LISTN="127.0.0.1:0")
    with trio.fail_after(30):
        code, _, err = await run_cli(["config", "show", "--data-dir", str(tmp_path)], env)
    assert code == 1
    assert "LEOSUITE_HTTP_LISTN" in err
    assert "Traceback" not in err


async def test_config_show_prints_the_effective_settings(tmp_path: Path) -> None:
    config = tmp_path / "leosuite.toml"
    config.write_text(
        "[http]\nlisten = '127.0.0.1:9999'\n[auth]\ntoken_ttl = 600.0\npow_count = 3\n"
    )
    env = base_env(LEOSUITE_ADMIN_PASSWORD="super-secret-admin")
    with trio.fail_after(30):
        argv = ["config", "show", "--config", str(config), "--data-dir", str(tmp_path / "d")]
        code, out, err = await run_cli(argv, env)
        assert (code, err) == (0, "")
        for section in ("[daemon]", "[http]", "[ws]", "[admin]", "[auth]", "[store]"):
            assert section in out
        assert 'listen = "127.0.0.1:9999"' in out
        assert "token_ttl = 600.0" in out
        assert "pow_count = 2" in out  # the environment wins over the file
        assert "pow_difficulty = 4" in out
        assert f'data_dir = "{tmp_path / "d"}"' in out
        assert "super-secret-admin" not in out
        code, out, _ = await run_cli([*argv, "--json"], env)
        assert code == 0
        data = json.loads(out)
        assert data["http"]["listen"] == "127.0.0.1:9999"
        assert data["auth"]["token_ttl"] == 600.0


async def test_first_start_generates_the_admin_password_once(tmp_path: Path) -> None:
    env = base_env()
    data = tmp_path / "data"
    with trio.fail_after(30):
        async with running(tmp_path, env) as daemon:
            endpoints = await daemon.wait_ready()
            password_file = data / "initial-admin-password"
            assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
            password = password_file.read_text().strip()
            assert len(password) >= 16
            assert daemon.stdout.count(password) == 1
            await http_login(endpoints["http"], password)
            assert await daemon.terminate() == 0
        # The second start creates nothing and prints no password.
        async with running(tmp_path, env) as daemon:
            await daemon.wait_ready()
            assert "password" not in daemon.stdout
            assert await daemon.terminate() == 0
    rows = read_db(data, "SELECT username, flags FROM accounts")
    assert rows == [("admin", "ADMIN")]

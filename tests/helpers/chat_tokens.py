"""The chat with an access token in ``Sec-WebSocket-Protocol``, and ``leosuite serve`` as
a child process (its stderr, its store, the ``leosuite user`` command beside it)."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.helpers.chat import Chat
from tests.helpers.daemon import store_env
from tests.helpers.store import store_sql

CHAT_PROTOCOL = "leosuite.chat"


def token_protocols(token: str) -> list[str]:
    """What a client offers in ``Sec-WebSocket-Protocol`` to log in with ``token``."""
    return [CHAT_PROTOCOL, f"leosuite.token.{token}"]


@asynccontextmanager
async def token_chat(ws_url: str, nick: str, token: str) -> AsyncIterator[Chat]:
    """A chat client logged in as an account with its token in the header only."""
    url = f"{ws_url}/chat/login/{quote(nick, safe='')}"
    async with open_websocket_url(url, subprotocols=token_protocols(token)) as ws:
        assert ws.subprotocol == CHAT_PROTOCOL
        client = Chat(ws, nick)
        client.login = await client.expect(2)
        client.nick = client.login["user"]
        yield client


async def closed_within(client: Chat, seconds: float) -> tuple[int | None, str]:
    """Read until the server closes the connection, which must be within ``seconds``;
    its close code and reason."""
    with trio.fail_after(seconds):
        try:
            while True:
                client.seen.append(await client.receive())
        except ConnectionClosed as exc:
            reason = exc.reason
            return (None, "") if reason is None else (reason.code, reason.reason or "")


class ServeProcess:
    """``leosuite serve`` in a child process, on port 0 everywhere."""

    def __init__(self, proc: trio.Process, data_dir: Path, err: Path, env: dict[str, str]):
        self.proc = proc
        self.data_dir = data_dir
        self.err_path = err
        self.env = env
        self.endpoints: dict[str, Any] = {}

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    async def wait_ready(self) -> None:
        path = self.data_dir / "run" / "endpoints.json"
        while not path.exists():
            assert self.proc.returncode is None, f"the daemon exited early:\n{self.stderr}"
            await trio.sleep(0.02)
        self.endpoints = json.loads(path.read_text())

    async def cli(self, *argv: str, stdin: bytes = b"") -> str:
        """``leosuite <argv> --data-dir <its data>``, which must succeed; its stdout."""
        result = await trio.run_process(
            [sys.executable, "-m", "leosuite", *argv, "--data-dir", str(self.data_dir)],
            stdin=stdin,
            env=self.env,
            check=False,
            capture_stdout=True,
            capture_stderr=True,
        )
        assert result.returncode == 0, (argv, result.stdout, result.stderr)
        return result.stdout.decode()

    def audit_rows(self) -> list[tuple[Any, ...]]:
        """Every row of the audit table, every column, read straight from the store."""
        return store_sql(self.data_dir, "SELECT * FROM audit_log")


@asynccontextmanager
async def serve_process(tmp_path: Path, env: dict[str, str]) -> AsyncIterator[ServeProcess]:
    data_dir, err = tmp_path / "data", tmp_path / "stderr.txt"
    argv: Sequence[str] = [
        sys.executable, "-m", "leosuite", "serve", "--data-dir", str(data_dir),
        "--http", "127.0.0.1:0", "--ws", "127.0.0.1:0", "--admin", "127.0.0.1:0",
    ]  # fmt: skip
    env = {**env, **store_env(data_dir)}
    async with trio.open_nursery() as nursery:
        with err.open("wb") as stderr:
            proc: trio.Process = await nursery.start(
                partial(trio.run_process, argv, stderr=stderr, env=env, check=False)
            )
        daemon = ServeProcess(proc, data_dir, err, env)
        try:
            await daemon.wait_ready()
            yield daemon
        finally:
            if proc.returncode is None:
                proc.kill()

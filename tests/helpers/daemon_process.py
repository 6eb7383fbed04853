"""A daemon run as a real child process (``python -m leosuite serve``, ports 0) and
what ``/proc`` tells about it: its descriptors, its signal masks, its sockets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import trio

from tests.helpers.daemon import base_env, login, store_env
from tests.helpers.http import Api
from tests.helpers.store import store_sql

PASSWORD = "reload-admin-pw"


def serve_argv(data_dir: Path, *extra: str) -> list[str]:
    ports = ("--http", "127.0.0.1:0", "--ws", "127.0.0.1:0", "--admin", "127.0.0.1:0")
    return [sys.executable, "-m", "leosuite", "serve", "--data-dir", str(data_dir), *ports, *extra]


def hostport(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


class Served:
    def __init__(self, proc: trio.Process, data_dir: Path, err: Path) -> None:
        self.proc = proc
        self.data_dir = data_dir
        self.err_path = err

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def endpoints(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(
                (self.data_dir / "run" / "endpoints.json").read_text()
            )
        except (OSError, ValueError):
            return None
        return data

    async def wait_generation(self, generation: int) -> dict[str, Any]:
        """Poll until ``endpoints.json`` names this process at ``generation`` or later."""
        while True:
            assert self.proc.returncode is None, f"daemon exited:\n{self.stderr}"
            data = self.endpoints()
            if data and data["pid"] == self.proc.pid and data["generation"] >= generation:
                return data
            await trio.sleep(0.02)

    async def wait_stderr(self, needle: str, count: int = 1) -> None:
        while self.stderr.count(needle) < count:
            assert self.proc.returncode is None, f"daemon exited:\n{self.stderr}"
            await trio.sleep(0.01)

    async def reload(self) -> dict[str, Any]:
        """SIGHUP, then wait until the next generation serves."""
        current = await self.wait_generation(0)
        self.proc.send_signal(signal.SIGHUP)
        return await self.wait_generation(current["generation"] + 1)

    async def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return await self.proc.wait()


@asynccontextmanager
async def serving(
    tmp_path: Path, *extra: str, python: str = sys.executable, **env: str
) -> AsyncIterator[Served]:
    """``leosuite serve`` (with ``extra`` arguments) on ``tmp_path/data``, run by
    ``python``, with ``env`` added to its environment; killed at the end if alive."""
    data_dir = tmp_path / "data"
    err = tmp_path / "stderr.txt"
    environ = base_env(LEOSUITE_ADMIN_PASSWORD=PASSWORD, **store_env(data_dir), **env)
    async with trio.open_nursery() as nursery:
        with err.open("wb") as stderr:
            proc: trio.Process = await nursery.start(
                partial(
                    trio.run_process,
                    [python, *serve_argv(data_dir, *extra)[1:]],
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    env=environ,
                    check=False,
                )
            )
        try:
            yield Served(proc, data_dir, err)
        finally:
            if proc.returncode is None:
                proc.kill()


@asynccontextmanager
async def api_at(url: str) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield Api(client, await login(client, password=PASSWORD))


async def run_cli(*argv: str) -> tuple[int, str, str]:
    result = await trio.run_process(
        [sys.executable, "-m", "leosuite", *argv],
        env=base_env(),
        check=False,
        capture_stdout=True,
        capture_stderr=True,
    )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def audit_messages(data_dir: Path) -> list[str]:
    rows = store_sql(data_dir, "SELECT message FROM audit_log WHERE topic = 'daemon' ORDER BY id")
    return [message for (message,) in rows]


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def listening_inodes() -> set[str]:
    """Every listening TCP socket on this machine (``socket:[inode]``)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":  # LISTEN
                    found.add(f"socket:[{fields[9]}]")
    return found


def descriptors(pid: int) -> tuple[int, int]:
    """How many descriptors a process holds: listening sockets, and those that are
    no socket (connections come and go with the clients)."""
    listening = listening_inodes()
    targets = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with suppress(OSError):
            targets.append(os.readlink(fd))
    return (
        sum(1 for t in targets if t in listening),
        sum(1 for t in targets if not t.startswith("socket:")),
    )


def signal_masks(pid: int) -> tuple[int, int]:
    """The blocked and the caught signals of a process's main thread, as bit masks."""
    fields = dict(
        line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["SigBlk"], 16), int(fields["SigCgt"], 16)


def socket_inodes(pid: int) -> set[str]:
    """The sockets a process holds open (``socket:[inode]``)."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:"):
                found.add(target)
    return found


@contextmanager
def reaping() -> Iterator[list[int]]:
    """Pids of servers a test leaves running on purpose or by failure: SIGKILLed at the end."""
    pids: list[int] = []
    try:
        yield pids
    finally:
        for pid in pids:
            with suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


def python_copy(where: Path) -> Path:
    """A virtual environment at ``where`` sharing this one's packages: its interpreter
    can be deleted under a running daemon."""
    venv = Path(sys.prefix)
    (where / "bin").mkdir(parents=True)
    (where / "pyvenv.cfg").write_bytes((venv / "pyvenv.cfg").read_bytes())
    (where / "lib").symlink_to(venv / "lib")
    python = where / "bin" / "python"
    python.symlink_to(Path(sys.executable).resolve())
    return python

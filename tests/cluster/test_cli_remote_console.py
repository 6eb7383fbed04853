"""``leosuite server logs`` logged in to one node, for a server another node runs: the
command mints a console token there and reads the console from the node that runs the
server (its bytes never pass through the first), once or following it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import trio

from tests.helpers.cli import Cli
from tests.helpers.cluster import ADMIN_PASSWORD, cluster
from tests.helpers.servers import FAST_DEMO

from .test_two_nodes import PATIENCE, wait_for


async def test_logs_of_a_server_on_another_node(tmp_path: Path, cluster_store_url: str) -> None:
    async with cluster(tmp_path, cluster_store_url, "node-a", "node-b") as (a, b):
        with trio.fail_after(PATIENCE):
            async with a.api() as on_a:
                create = {"server": "far", "type": "demo-game", "settings": FAST_DEMO}
                await on_a.ok("server_create", {**create, "node": "node-b"})
            async with b.api() as on_b:
                await wait_for(on_b, "far", status="stopped")
                await on_b.ok("server_start", {"server": "far"})
                await wait_for(on_b, "far", status="running")
                log = {"server": "far", "readIndex": 0}
                while "Server ready" not in (await on_b.ok("server_log", log))["data"]:
                    await trio.sleep(0.1)
            cli = Cli(tmp_path / "home")
            await cli.login(a.http_url, password=ADMIN_PASSWORD)

            printed = await cli.run("server", "logs", "far")
            assert b"Server ready" in printed.stdout
            assert printed.stderr == b""
            from_start = await cli.run("server", "logs", "far", "--from", "0")
            assert from_start.stdout.endswith(printed.stdout)

            # Following: the backlog, then what the server prints while it is followed.
            argv = [sys.executable, "-m", "leosuite", "server", "logs", "-f", "far", "--from", "0"]
            pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
            with subprocess.Popen(argv, env=cli.env, **pipes) as follow:

                async def until(text: bytes, seen: bytes) -> bytes:
                    while text not in seen:
                        assert follow.stdout is not None
                        read = follow.stdout.read1  # a hang fails at fail_after, not later
                        chunk = await trio.to_thread.run_sync(read, 65536, abandon_on_cancel=True)
                        assert chunk, follow.stderr.read() if follow.stderr else b""
                        seen += chunk
                    return seen

                try:
                    seen = await until(b"Server ready", b"")  # the backlog
                    async with a.api() as on_a:  # forwarded to node b
                        await on_a.ok("server_cmd", {"server": "far", "command": "say followed"})
                    await until(b"followed", seen)  # live
                finally:
                    follow.send_signal(signal.SIGINT)
                    stopped = await trio.to_thread.run_sync(_waited, follow, 30.0)
                    assert stopped, "logs -f did not stop within 30 s of SIGINT (killed)"


def _waited(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """Whether ``proc`` exits within ``seconds``; killed (and reaped) if not."""
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False
    return True

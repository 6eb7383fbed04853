"""Out of file descriptors: new connections get a prompt 503, the log says so once per
burst, servers still start, and new clients are served again once descriptors free up.

The daemon runs as a real child process under a low ``RLIMIT_NOFILE``; the spare
descriptors' path (``accept`` failing with ``EMFILE``) runs in a child process that
fills its own descriptor table.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import trio

from tests.helpers.daemon_process import api_at, hostport, reaping, serving
from tests.helpers.servers import command_settings

SOFT, HARD = 64, 96
#: More connections than the daemon may hold under :data:`HARD` descriptors.
HOGS = 90
REFUSED = b"HTTP/1.1 503 Service Unavailable"
STARTS = "out of file descriptors: refusing new connections"
ENDS = "file descriptors available again"
UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def limited_python(where: Path, soft: int, hard: int) -> Path:
    """An interpreter that runs under ``soft``/``hard`` RLIMIT_NOFILE."""
    script = where / "limited-python"
    script.write_text(
        f"#!/bin/sh\nulimit -Sn {soft} && ulimit -Hn {hard} || exit 97\n"
        f'exec {shlex.quote(sys.executable)} "$@"\n'
    )
    script.chmod(0o755)
    return script


async def ask(url: str, request: bytes) -> bytes:
    """Send ``request`` on a new connection; everything answered until the close (or a
    reset)."""
    host, port = hostport(url)
    stream = await trio.open_tcp_stream(host, port)
    answer = b""
    async with stream:
        try:
            await stream.send_all(request)
            while chunk := await stream.receive_some(4096):
                answer += chunk
                if b"\r\n\r\n" in answer and not answer.startswith(REFUSED):
                    break  # served: the head is enough
        except trio.BrokenResourceError:
            pass
    return answer


async def wait_answered(url: str, request: bytes) -> bytes:
    """Ask until the answer is no bare close; each attempt ends at once, with an answer
    or a close (callers bound it with fail_after)."""
    while not (answer := await ask(url, request)):
        await trio.sleep(0.05)
    return answer


def health(url: str) -> bytes:
    return f"GET /api/health HTTP/1.1\r\nHost: {hostport(url)[0]}\r\n\r\n".encode()


@asynccontextmanager
async def hogging(url: str, count: int) -> AsyncIterator[None]:
    """``count`` idle connections to ``url`` for the block."""
    host, port = hostport(url)
    async with AsyncExitStack() as stack:
        for _ in range(count):
            await stack.enter_async_context(await trio.open_tcp_stream(host, port))
        yield


async def wait_served(url: str, request: bytes) -> bytes:
    """Ask until the answer is no refusal (callers bound it with fail_after)."""
    while (answer := await ask(url, request)).startswith(REFUSED):
        await trio.sleep(0.05)
    return answer


def assert_refused(answer: bytes) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(REFUSED), answer
    assert b"Retry-After: 1" in head
    assert b'"error_type":"unavailable"' in body


async def test_at_the_limit_connections_are_refused_at_once_and_servers_still_start(
    tmp_path: Path,
) -> None:
    python = limited_python(tmp_path, SOFT, HARD)
    env = {"LEOSUITE_HTTP_KEEP_ALIVE_TIMEOUT": "120"}
    with trio.fail_after(60), reaping() as leftovers:
        async with serving(tmp_path, python=str(python), **env) as run:
            endpoints = await run.wait_generation(0)
            # The soft limit was raised to the hard one, and the start-up line says so.
            assert f"soft limit {HARD} = hard limit" in run.stderr
            async with api_at(endpoints["http"]) as api:
                await api.create("game", "command", command_settings("echo"))
                async with hogging(endpoints["http"], HOGS):
                    await run.wait_stderr(STARTS)
                    # Every listener answers a new connection at once (503, or a close
                    # while the refused hogs still hold every answering slot).
                    with trio.fail_after(10):
                        assert_refused(
                            await wait_answered(endpoints["http"], health(endpoints["http"]))
                        )
                        assert_refused(
                            await wait_answered(endpoints["admin"], health(endpoints["admin"]))
                        )
                        assert_refused(await wait_answered(endpoints["ws"], UPGRADE))
                    # A server starts: its console file and FIFO open in the headroom.
                    await api.ok("server_start", {"server": "game"})
                    status = await api.wait_status("game", "running")
                    leftovers.append(status["pid"])
                    await api.wait_log("game", b"ready")
                    await api.ok("server_cmd", {"server": "game", "command": "hello"})
                    await api.wait_log("game", b"echo: hello")
                # The hogs are gone: served again, and the burst's end is logged.
                answer = await wait_served(endpoints["http"], health(endpoints["http"]))
                assert answer.startswith(b"HTTP/1.1 200"), answer
                assert (await wait_served(endpoints["ws"], UPGRADE)).startswith(b"HTTP/1.1 101")
                await run.wait_stderr(ENDS)
                await api.ok("server_stop", {"server": "game"})
            stderr = run.stderr
            assert stderr.count(STARTS) == 1, stderr
            assert stderr.count(ENDS) == 1, stderr
            assert "Traceback" not in stderr, stderr
            assert "EMFILE" not in stderr, stderr
            assert await run.terminate() == 0


SPARES_CHILD = textwrap.dedent(
    """
    import os, resource, socket, sys
    import trio
    from leosuite.api.fd_reserve import DescriptorReserve, ReservedListener

    async def serve(stream):
        await stream.send_all(b"served")

    async def main():
        sock = socket.create_server(("127.0.0.1", 0))
        reserve = DescriptorReserve()
        fillers = []
        while True:  # the descriptor table full: accept fails with EMFILE
            try:
                fillers.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                break
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
        async with trio.open_nursery() as nursery:
            await nursery.start(reserve.run)
            await nursery.start(trio.serve_listeners, serve, [ReservedListener(listener, reserve)])
            print(sock.getsockname()[1], flush=True)
            await trio.to_thread.run_sync(sys.stdin.readline)  # a thread needs no descriptor
            for fd in fillers:
                os.close(fd)
            print("freed", flush=True)
            await trio.to_thread.run_sync(sys.stdin.readline)
            nursery.cancel_scope.cancel()

    resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
    trio.run(main)
    """
)


async def read_line(stream: trio.abc.ReceiveStream) -> str:
    """One line of a child's output (it prints nothing else meanwhile)."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = await stream.receive_some(1)
        assert chunk, line
        line += chunk
    return line.decode().strip()


async def test_when_accept_fails_with_emfile_a_spare_descriptor_answers(tmp_path: Path) -> None:
    err = tmp_path / "stderr.txt"
    with trio.fail_after(30), err.open("wb") as stderr:
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-c", SPARES_CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            url = f"http://127.0.0.1:{int(await read_line(proc.stdout))}"
            for _ in range(3):
                assert_refused(await ask(url, health(url)))
            await proc.stdin.send_all(b"\n")
            assert await read_line(proc.stdout) == "freed"
            assert await ask(url, b"") == b"served"
            await proc.stdin.send_all(b"\n")
            assert await proc.wait() == 0
        finally:
            if proc.returncode is None:
                proc.kill()
    text = err.read_text()
    assert text.count(STARTS) == 1, text
    assert "file descriptors available again: 3 connections refused" in text, text
    assert "Traceback" not in text, text

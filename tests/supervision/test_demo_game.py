"""demo-game as a real child process, driven over pipes the way the supervisor does."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from leosuite.supervision.type_files import load_builtin_types

DEMO = [sys.executable, "-m", "leosuite.templates.demo_game"]
_PATTERN = load_builtin_types()["demo-game"].ready_pattern
assert _PATTERN is not None
READY = _PATTERN.encode()


class Console:
    """Reads a child's stdout into one growing buffer; ``expect`` waits for a regex."""

    def __init__(self, proc: trio.Process) -> None:
        self.proc = proc
        self.data = bytearray()

    async def expect(self, pattern: bytes, start: int = 0) -> re.Match[bytes]:
        regex = re.compile(pattern)
        while True:
            found = regex.search(self.data, start)
            if found:
                return found
            assert self.proc.stdout is not None
            chunk = await self.proc.stdout.receive_some(1 << 20)
            assert chunk, f"EOF before {pattern!r}; got {bytes(self.data[-2000:])!r}"
            self.data += chunk

    async def read_at_least(self, size: int) -> None:
        assert self.proc.stdout is not None
        while len(self.data) < size:
            chunk = await self.proc.stdout.receive_some(1 << 20)
            assert chunk, f"EOF at {len(self.data)} bytes, wanted {size}"
            self.data += chunk

    async def read_to_eof(self) -> bytes:
        assert self.proc.stdout is not None
        while chunk := await self.proc.stdout.receive_some(1 << 20):
            self.data += chunk
        return bytes(self.data)

    async def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        await self.proc.stdin.send_all(line.encode() + b"\n")


@asynccontextmanager
async def demo_game(*args: str) -> AsyncIterator[Console]:
    proc = await trio.lowlevel.open_process(
        [*DEMO, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield Console(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    await stream.aclose()


async def test_ready_line_commands_and_stop() -> None:
    with trio.fail_after(20):
        async with demo_game("--ready-delay", "0.2", "--player-interval", "0") as game:
            ready = await game.expect(READY)
            assert re.search(rb"Server ready on port 25565", ready.group(0) + game.data)
            await game.send("say hello")
            await game.expect(rb"\[Server\] hello\n")
            await game.send("list")
            await game.expect(rb"There are 0 of a max of 20 players online")
            await game.send("save")
            await game.expect(rb"Saved the game\n")
            await game.send("frobnicate")
            await game.expect(rb'Unknown command "frobnicate"')
            await game.send("help")
            await game.expect(rb"say <text>")
            await game.send("stop")
            out = await game.read_to_eof()
            assert await game.proc.wait() == 0
            assert b"Stopping the server" in out


async def test_ready_waits_for_delay() -> None:
    with trio.fail_after(20):
        async with demo_game("--ready-delay", "0.5", "--player-interval", "0") as game:
            start = trio.current_time()
            await game.expect(READY)
            assert trio.current_time() - start >= 0.4


async def test_players_join_and_leave() -> None:
    with trio.fail_after(20):
        async with demo_game("--ready-delay", "0", "--player-interval", "0.01", "--seed", "1") as g:
            joined = await g.expect(rb"Player (\w+) joined the game\n")
            await g.expect(rb"Player \w+ left the game\n", joined.end())
            await g.send("list")
            await g.expect(rb"There are \d+ of a max of 20 players online: ")


async def test_stdin_eof_keeps_running_and_sigterm_stops_gracefully() -> None:
    with trio.fail_after(20):
        async with demo_game("--ready-delay", "0", "--player-interval", "0") as game:
            await game.expect(READY)
            assert game.proc.stdin is not None
            await game.proc.stdin.aclose()
            # still answering to signals after stdin EOF, and stopping cleanly
            with trio.move_on_after(0.3):
                await game.proc.wait()
            assert game.proc.returncode is None
            game.proc.send_signal(signal.SIGTERM)
            out = await game.read_to_eof()
            assert await game.proc.wait() == 0
            assert b"Stopping the server (SIGTERM)" in out


async def test_ignore_sigterm_survives_until_killed() -> None:
    with trio.fail_after(20):
        async with demo_game(
            "--ready-delay", "0", "--player-interval", "0", "--ignore-sigterm"
        ) as g:
            await g.expect(READY)
            g.proc.send_signal(signal.SIGTERM)
            with trio.move_on_after(0.3):
                await g.proc.wait()
            assert g.proc.returncode is None
            # it must still answer after the SIGTERM
            await g.send("say still here")
            await g.expect(rb"\[Server\] still here\n")
            assert g.proc.returncode is None
            g.proc.kill()
            assert await g.proc.wait() == -signal.SIGKILL


async def test_flood_bytes_exact() -> None:
    total = 3_000_000
    with trio.fail_after(30):
        async with demo_game(
            "--ready-delay", "0", "--player-interval", "0", "--flood", "--flood-bytes", str(total)
        ) as game:
            ready = await game.expect(READY + rb".*\n")
            # read until the whole flood has arrived, then stop it
            await game.read_at_least(ready.end() + total)
            await game.send("stop")
            out = await game.read_to_eof()
            assert await game.proc.wait() == 0
            flood, rest = out[ready.end() : ready.end() + total], out[ready.end() + total :]
            assert flood.startswith(b"[flood] ")
            assert b"INFO]" not in flood
            # the very next byte after exactly `total` flood bytes starts the stop line
            assert re.match(rb"\[\d\d:\d\d:\d\d INFO\]: Stopping the server", rest)


async def test_flood_no_newline_answers_commands() -> None:
    with trio.fail_after(30):
        async with demo_game(
            "--ready-delay", "0", "--player-interval", "0", "--flood", "--no-newline"
        ) as game:
            ready = await game.expect(READY + rb".*\n")
            await game.read_at_least(ready.end() + 200_000)
            assert game.data[ready.end() :] == b"x" * (len(game.data) - ready.end())
            await game.send("stop")
            await game.read_to_eof()
            assert await game.proc.wait() == 0

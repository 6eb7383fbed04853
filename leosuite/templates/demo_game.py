"""demo-game: a small game-server simulator (stdlib only, quick to start).

Run as ``python -m leosuite.templates.demo_game [options]``. It behaves like a
console game server under supervision: a start-up banner, a ready line after
``--ready-delay`` seconds::

    [12:00:01 INFO]: Done (1.000s)! Server ready on port 25565. For help, type "help"

then simulated players join, chat and leave every ``--player-interval`` seconds
(``Player alice joined the game`` / ``Player alice left the game``). Console
commands on stdin, one per line: ``say <text>`` (``[Server] <text>``), ``list``,
``save``, ``help``, ``stop`` (saves and exits 0); anything else answers
``Unknown command``. End of stdin does not stop it: like a real server it keeps
running until ``stop`` or a signal. SIGTERM and SIGINT make it stop gracefully
(exit 0), unless ``--ignore-sigterm`` (then only SIGKILL or ``stop`` ends it).

``--flood`` writes console output as fast as it can (``--flood-bytes N``: exactly
N bytes of it, then idle; ``--no-newline``: one endless line), still answering
commands between chunks. Every line is flushed, so it works on a pipe.
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import signal
import sys
import threading
import time

NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")
CHAT = ("hello!", "anyone up for a raid?", "gg", "brb", "nice base", "lag?")
MAX_PLAYERS = 20
FLOOD_CHUNK = 64 * 1024
HELP = (
    "Commands: say <text>, list, save, help, stop",
    "  say <text>  broadcast a message to every player",
    "  list        show the players online",
    "  save        save the world",
    "  stop        save and stop the server",
)


class _Terminate(Exception):
    """Raised from the SIGTERM/SIGINT handler to stop gracefully."""


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text!r}")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="demo_game", description="A game-server simulator.")
    p.add_argument("--port", type=int, default=25565, help="port it claims (nothing is bound)")
    p.add_argument("--ready-delay", type=float, default=1.0, help="seconds until ready")
    p.add_argument("--player-interval", type=float, default=5.0, help="0 disables players")
    p.add_argument("--flood", type=_bool, nargs="?", const=True, default=False)
    p.add_argument("--flood-bytes", type=int, default=0, help="flood this many bytes, then idle")
    p.add_argument("--no-newline", action="store_true", help="flood without any newline")
    p.add_argument("--ignore-sigterm", type=_bool, nargs="?", const=True, default=False)
    p.add_argument("--seed", type=int, default=None, help="seed for the player simulation")
    return p.parse_args(argv)


def _read_stdin(lines: queue.Queue[str | None]) -> None:
    """Thread: split fd 0 into lines (os.read: no buffered-reader lock at exit)."""
    pending = b""
    while True:
        try:
            chunk = os.read(0, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            break
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            lines.put(raw.rstrip(b"\r").decode("utf-8", "replace"))
    if pending:
        lines.put(pending.decode("utf-8", "replace"))
    lines.put(None)  # EOF: noted, and the server keeps running


class Game:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.online: list[str] = []
        self.started = time.monotonic()
        self.ready = False
        self.flood_left = args.flood_bytes if args.flood_bytes > 0 else -1
        self.flooding = bool(args.flood)

    def log(self, message: str, level: str = "INFO") -> None:
        sys.stdout.write(f"[{time.strftime('%H:%M:%S')} {level}]: {message}\n")
        sys.stdout.flush()

    def become_ready(self) -> None:
        self.ready = True
        took = time.monotonic() - self.started
        self.log(
            f'Done ({took:.3f}s)! Server ready on port {self.args.port}. For help, type "help"'
        )

    def tick_players(self) -> None:
        offline = [n for n in NAMES if n not in self.online]
        roll = self.rng.random()
        if self.online and roll < 0.25:
            self.log(f"<{self.rng.choice(self.online)}> {self.rng.choice(CHAT)}")
        elif offline and len(self.online) < MAX_PLAYERS and (not self.online or roll < 0.65):
            name = self.rng.choice(offline)
            self.online.append(name)
            self.log(f"Player {name} joined the game")
        elif self.online:
            name = self.rng.choice(self.online)
            self.online.remove(name)
            self.log(f"Player {name} left the game")

    def command(self, line: str) -> bool:
        """Handle one console line; False when the server should stop."""
        verb, _, rest = line.strip().partition(" ")
        if not verb:
            return True
        if verb == "say":
            self.log(f"[Server] {rest.strip()}")
        elif verb == "list":
            names = ", ".join(sorted(self.online))
            self.log(
                f"There are {len(self.online)} of a max of {MAX_PLAYERS} players online: {names}"
            )
        elif verb == "save":
            self.log("Saving the game (this may take a moment!)")
            self.log("Saved the game")
        elif verb == "help":
            for text in HELP:
                self.log(text)
        elif verb == "stop":
            return False
        else:
            self.log(f'Unknown command "{verb}". Type "help" for help.', "WARN")
        return True

    def shutdown(self, why: str) -> None:
        self.log(f"Stopping the server ({why})")
        for name in list(self.online):
            self.log(f"Player {name} left the game")
        self.log("Saving players")
        self.log("Saving worlds")
        self.log("Saved the game")

    def flood_chunk(self) -> None:
        if self.args.no_newline:
            line = b"x" * 64
        else:
            line = b"[flood] " + b"lorem ipsum dolor sit amet " * 2 + b"0123\n"
        chunk = line * (FLOOD_CHUNK // len(line))
        if self.flood_left >= 0:
            chunk = chunk[: self.flood_left]
            self.flood_left -= len(chunk)
            if self.flood_left == 0:
                self.flooding = False
        sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()

    def run(self, lines: queue.Queue[str | None]) -> int:
        self.log(f"Starting demo-game server version 1.0 (pid {os.getpid()})")
        self.log('Loading world "world"')
        ready_at = self.started + max(0.0, self.args.ready_delay)
        interval = self.args.player_interval
        next_player = ready_at + interval if interval > 0 else float("inf")
        while True:
            now = time.monotonic()
            if not self.ready and now >= ready_at:
                self.become_ready()
            if self.ready and now >= next_player:
                self.tick_players()
                next_player = max(next_player + interval, now)
            if self.ready and self.flooding:
                self.flood_chunk()
                wait = 0.0
            else:
                deadline = next_player if self.ready else ready_at
                wait = max(0.0, min(deadline - time.monotonic(), 3600.0))
            try:
                line = lines.get(timeout=wait) if wait > 0 else lines.get_nowait()
            except queue.Empty:
                continue
            if line is None:
                continue  # stdin closed: keep running, as a real server does
            if not self.command(line):
                self.shutdown("stop command")
                return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # reader gone: die quietly like a C server

    def terminate(signum: int, _frame: object) -> None:
        raise _Terminate(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, terminate)
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, terminate)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_stdin, args=(lines,), daemon=True).start()
    game = Game(args)
    try:
        return game.run(lines)
    except _Terminate as exc:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        game.shutdown(str(exc))
        return 0


if __name__ == "__main__":
    sys.exit(main())

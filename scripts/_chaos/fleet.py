"""The servers of a chaos run: every misbehaving kind, a few demo-games, and stopped
servers whose settings the run keeps changing (the store writes it checks).

Most servers are ``autostart``, so after a stop of the daemon the next one starts them
again; the crash loops restart ``always`` with a short backoff.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .programs import command_of

__all__ = ["LONG_RUNNING", "NUMBERS", "ServerSpec", "fleet_specs"]

#: The server whose console is checked line by line.
NUMBERS = "numbers"
#: Bytes each flood writes per start (then it sleeps): bounded.
FLOOD_BYTES = 3 << 20
#: Kinds of server that run until they are stopped.
LONG_RUNNING = frozenset(
    {
        "TERM-ignorer",
        "forker",
        "setsid escaper",
        "demo-game",
        "closed stdin",
        "invalid UTF-8",
        "echo",
    }
)
FAST_DEMO = {"ready_delay": 0.1, "player_interval": 0.5, "stop_timeout": 1}


@dataclass(frozen=True)
class ServerSpec:
    name: str
    kind: str
    type: str
    settings: dict[str, Any]
    #: Started by the run (and by every daemon start, through autostart).
    started: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def _fixture(repo: Path, name: str, *args: object) -> str:
    return shlex.join(
        [sys.executable, str(repo / "tests" / "fixtures" / f"{name}.py"), *map(str, args)]
    )


def fleet_specs(repo: Path, programs: Path, *, quick: bool, numbers_rate: int) -> list[ServerSpec]:
    """About twenty servers (twelve when ``quick``), each named after its kind."""

    def command(name: str, kind: str, line: str, **settings: Any) -> ServerSpec:
        base = {"command": line, "stop_timeout": 1, "autostart": True, "restart": "on-failure"}
        return ServerSpec(name, kind, "command", {**base, **settings})

    def game(name: str, port: int, **settings: Any) -> ServerSpec:
        return ServerSpec(
            name,
            "demo-game",
            "demo-game",
            {**FAST_DEMO, "port": port, "autostart": True, **settings},
        )

    numbers_total = numbers_rate * 3600  # an hour of lines per start at most: bounded
    specs = [
        command(
            NUMBERS,
            "numbered flood",
            command_of(programs / "chaos_numbers.py", numbers_total, numbers_rate),
        ),
        command("flood-1", "flood", _fixture(repo, "flood", FLOOD_BYTES, "--sleep")),
        command(
            "crash-1", "crash loop", _fixture(repo, "crash", 3), restart="always", max_restarts=1000
        ),
        command("crash-limited", "crash loop", _fixture(repo, "crash", 4), max_restarts=2),
        command("term-1", "TERM-ignorer", _fixture(repo, "unkillable"), restart="never"),
        command("forker-1", "forker", _fixture(repo, "forker", 3)),
        command("escaper-1", "setsid escaper", command_of(programs / "chaos_escaper.py")),
        command("no-newline", "no newline", _fixture(repo, "no_newline", 1 << 20)),
        command("bad-utf8", "invalid UTF-8", _fixture(repo, "invalid_utf8", "--sleep")),
        command("no-stdin", "closed stdin", _fixture(repo, "closes_stdin")),
        game("game-1", 27101),
        ServerSpec("ledger-1", "settings ledger", "demo-game", {"port": 1000}, started=False),
    ]
    if not quick:
        specs += [
            command("flood-2", "flood", _fixture(repo, "flood", FLOOD_BYTES, "--sleep")),
            command(
                "crash-2",
                "crash loop",
                _fixture(repo, "crash", 5),
                restart="always",
                max_restarts=1000,
            ),
            command("term-2", "TERM-ignorer", _fixture(repo, "unkillable"), restart="never"),
            command("forker-2", "forker", _fixture(repo, "forker", 2)),
            command("escaper-2", "setsid escaper", command_of(programs / "chaos_escaper.py")),
            command("echo", "echo", _fixture(repo, "echo")),
            game("game-2", 27102),
            game("game-3", 27103, ignore_sigterm=True),
            ServerSpec("ledger-2", "settings ledger", "demo-game", {"port": 1000}, started=False),
        ]
    return specs

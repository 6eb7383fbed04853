"""The ``leosuite`` command line as a subprocess, with HOME in a test folder so the
saved token is isolated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

from tests.helpers.daemon import ADMIN_PASSWORD


class Cli:
    def __init__(self, home: Path) -> None:
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("LEOSUITE_") and k != "XDG_CONFIG_HOME"
        }
        self.env["HOME"] = str(home)

    async def run(
        self, *args: str, stdin: bytes = b"", expect: int = 0
    ) -> subprocess.CompletedProcess[bytes]:
        result = await trio.run_process(
            [sys.executable, "-m", "leosuite", *args],
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            env=self.env,
            check=False,
        )
        assert result.returncode == expect, (args, result.returncode, result.stdout, result.stderr)
        return result

    async def json(self, *args: str) -> Any:
        return json.loads((await self.run(*args, "--json")).stdout)

    async def login(
        self, url: str, username: str = "admin", password: str = ADMIN_PASSWORD
    ) -> None:
        out = await self.run(
            "login", "--url", url, "-u", username, "--password-stdin", stdin=password.encode()
        )
        assert b"logged in" in out.stdout

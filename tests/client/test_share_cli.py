"""``leosuite server share`` and ``leosuite server shares`` as subprocesses against the
in-process daemon: grant, change, list and revoke, and the refusals a grantee gets."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.cli import Cli
from tests.helpers.daemon import RunningDaemon
from tests.helpers.servers import FAST_DEMO


async def test_share_commands(daemon: RunningDaemon, tmp_path: Path) -> None:
    owner = Cli(tmp_path / "owner")
    friend = Cli(tmp_path / "friend")
    with trio.fail_after(90):
        await add_account(daemon, "olga", "HOST")
        await add_account(daemon, "finn")
        await owner.login(daemon.endpoints.http, "olga", PASSWORD)
        await friend.login(daemon.endpoints.http, "finn", PASSWORD)
        await owner.run("server", "create", "game", "-t", "demo-game",
                        *(f"--set={k}={v}" for k, v in FAST_DEMO.items()))  # fmt: skip
        assert (await owner.run("server", "shares", "game")).stdout == b"(not shared)\n"

        shared = await owner.run("server", "share", "game", "finn", "--rights", "console,commands")
        assert shared.stdout == b"game: finn has console, commands\n"
        listing = (await owner.run("server", "shares", "game")).stdout.decode()
        assert listing.split() == ["finn", "console,commands"]
        assert (await friend.run("server", "list")).stdout == b"game\n"
        assert (await friend.json("server", "status", "game"))["rights"] == ["console", "commands"]

        # A grantee may not stop the server, share it or destroy it.
        refused = await friend.run("server", "stop", "game", expect=1)
        assert b"do not include 'power'" in refused.stderr
        for args in (("share", "game", "olga", "--rights", "files"), ("shares", "game")):
            refused = await friend.run("server", *args, expect=1)
            assert b"only the owner" in refused.stderr
        await friend.run("server", "destroy", "game", expect=1)
        bad = await owner.run(
            "server", "share", "game", "finn", "--rights", "console,root", expect=1
        )
        assert b"unknown right 'root'" in bad.stderr
        await owner.run("server", "share", "game", "nobody", "--rights", "console", expect=1)

        answer = await owner.json("server", "share", "game", "finn", "--revoke")
        assert answer == {"server": "game", "account": "finn", "rights": []}
        assert (await friend.run("server", "list")).stdout == b"(no servers)\n"
        await friend.run("server", "status", "game", expect=1)

"""``leosuite server install NAME`` as a subprocess against the in-process daemon: the
progress lines printed live, the exit status of a failed install."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.helpers.cli import Cli
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import api_client
from tests.helpers.mojang import fake_mojang, jar_of
from tests.helpers.servers import FAST_DEMO


async def test_install_command(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    root = tmp_path / "data" / "servers" / "mc"
    with fake_mojang() as mojang, trio.fail_after(90):
        mojang.add_versions("1.21.4")
        settings = make_settings(
            tmp_path / "data", servers={"minecraft_manifest_url": mojang.manifest_url}
        )
        async with running_daemon(settings) as daemon:
            async with api_client(daemon) as api:
                await api.create("mc", "minecraft", {"jar": "server.jar", "eula": True})
                await api.create("nomc", "minecraft", {"jar": "server.jar"})
                await api.create("game", "demo-game", FAST_DEMO)
            await cli.login(daemon.endpoints.http)

            done = await cli.run("server", "install", "mc")
            out = done.stdout.decode()
            assert "[leosuite] install: step 2 of 2: download the Minecraft server latest" in out
            assert "[leosuite] install: server.jar: 100%" in out
            assert out.endswith("[leosuite] install: done\nmc: installed (stopped)\n")
            assert (root / "server.jar").read_bytes() == jar_of("1.21.4")
            answer = await cli.json("server", "install", "mc")
            assert answer == {"server": "mc", "status": "stopped", "installed": True}

            failed = await cli.run("server", "install", "nomc", expect=1)
            assert b"[leosuite] install failed: accept the Minecraft EULA" in failed.stdout
            assert failed.stderr.decode().startswith(
                "leosuite: nomc: install failed: accept the Minecraft EULA"
            )
            refused = await cli.run("server", "install", "game", expect=1)
            assert b"servers of type 'demo-game' have no install steps" in refused.stderr
            await cli.run("server", "install", "nope", expect=1)

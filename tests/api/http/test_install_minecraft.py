"""The ``minecraft`` type's install on a real daemon: Mojang's manifest, a version's
JSON and its jar come from a local stand-in; the jar is a small program that talks
like a Minecraft server, run by a ``java`` put first on PATH."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from tests.helpers.accounts import add_account
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import api_client, decode_data
from tests.helpers.mojang import fake_java, fake_mojang, jar_of

MC = {"jar": "server.jar", "memory": 256, "restart": "on-failure", "stop_timeout": 5}


@pytest.fixture
def java_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = fake_java(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.mark.usefixtures("java_on_path")
async def test_install_then_start_then_a_new_version(tmp_path: Path) -> None:
    root = tmp_path / "data" / "servers" / "mc"
    with fake_mojang() as mojang, trio.fail_after(90):
        mojang.add_versions("1.20.1", "1.21.4")
        settings = make_settings(
            tmp_path / "data", servers={"minecraft_manifest_url": mojang.manifest_url}
        )
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "host", "HOST")
            async with api_client(daemon, "host") as api:
                await api.create("mc", "minecraft", {**MC, "version": "1.20.1", "eula": True})
                status = await api.status("mc")
                assert status["install"] == {"steps": 2, "done": False, "running": False}

                # The first start installs, then starts what it installed.
                answer = await api.ok("server_start", {"server": "mc"})
                assert answer["status"] in ("starting", "running")
                await api.wait_status("mc", "running")
                assert (root / "server.jar").read_bytes() == jar_of("1.20.1")
                assert (root / "eula.txt").read_text() == "eula=true\n"
                log = await api.wait_log("mc", b"Done (1.0s)!")
                assert b"[leosuite] install: step 1 of 2: write eula.txt" in log
                assert b"install: step 2 of 2: download the Minecraft server 1.20.1" in log
                assert b"install: server.jar: 100%" in log
                assert b"[leosuite] install: done" in log
                assert b"version 1.20.1" in log
                assert (await api.status("mc"))["install"]["done"] is True
                assert not [p.name for p in root.iterdir() if p.name.startswith(".leosuite-")]

                # A later start does not install again.
                await api.ok("server_stop", {"server": "mc"})
                hits = dict(mojang.hits)
                _, index = await api.read_log("mc")
                await api.ok("server_start", {"server": "mc"})
                await api.wait_status("mc", "running")
                again = await api.wait_log("mc", b"Done (1.0s)!", index)
                assert b"install:" not in again
                assert mojang.hits == hits
                await api.ok("server_stop", {"server": "mc"})

                # A new version: the next start installs it.
                await api.ok("server_settings", {"server": "mc", "set": {"version": "latest"}})
                assert (await api.status("mc"))["install"]["done"] is False
                await api.ok("server_start", {"server": "mc"})
                await api.wait_status("mc", "running")
                assert (root / "server.jar").read_bytes() == jar_of("1.21.4")
                await api.ok("server_stop", {"server": "mc"})

                # On demand, at rest: it runs again whatever was done.
                answer = await api.ok("server_install", {"server": "mc"})
                assert answer == {"server": "mc", "status": "stopped", "installed": True}
                assert mojang.hits["/jars/1.21.4/server.jar"] == 2
                audit = await api.ok("server_status", {"server": "mc"})
                assert audit["install"] == {"steps": 2, "done": True, "running": False}


@pytest.mark.usefixtures("java_on_path")
async def test_without_the_eula_nothing_is_fetched_and_nothing_loops(tmp_path: Path) -> None:
    root = tmp_path / "data" / "servers" / "mc"
    with fake_mojang() as mojang, trio.fail_after(60):
        mojang.add_versions("1.21.4")
        settings = make_settings(
            tmp_path / "data", servers={"minecraft_manifest_url": mojang.manifest_url}
        )
        async with running_daemon(settings) as daemon, api_client(daemon) as api:
            await api.create("mc", "minecraft", MC)
            answer = await api.ok("server_start", {"server": "mc"})
            assert answer == {"server": "mc", "status": "crashed"}
            status = await api.status("mc")
            assert status["status"] == "crashed"
            assert status["restarts"] == 0
            assert status["last_error"].startswith(
                "install failed: accept the Minecraft EULA (https://aka.ms/MinecraftEULA)"
            )
            assert mojang.hits == {}
            assert sorted(p.name for p in root.iterdir()) == []
            answer = await api.ok("server_log", {"server": "mc", "readIndex": 0})
            assert b"install failed: accept the Minecraft EULA" in decode_data(answer)
            assert b"starting:" not in decode_data(answer)

            # Accepted: the same server installs and runs.
            await api.ok("server_settings", {"server": "mc", "set": {"eula": True}})
            await api.ok("server_start", {"server": "mc"})
            status = await api.wait_status("mc", "running")
            assert status["last_error"] is None
            await api.ok("server_stop", {"server": "mc"})


async def test_a_jar_that_does_not_match_its_sha1_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "data" / "servers" / "mc"
    with fake_mojang() as mojang, trio.fail_after(60):
        mojang.add_versions("1.21.4", bad_sha1="1.21.4")
        settings = make_settings(
            tmp_path / "data", servers={"minecraft_manifest_url": mojang.manifest_url}
        )
        async with running_daemon(settings) as daemon, api_client(daemon) as api:
            await api.create("mc", "minecraft", {**MC, "eula": True})
            answer = await api.ok("server_install", {"server": "mc"})
            assert answer == {
                "server": "mc",
                "status": "crashed",
                "installed": False,
                "error": "install failed: server.jar does not match its SHA1: refused",
            }
            assert mojang.hits["/jars/1.21.4/server.jar"] == 1
            assert sorted(p.name for p in root.iterdir()) == ["eula.txt"]

            unknown = {"version": "9.9.9"}
            await api.ok("server_settings", {"server": "mc", "set": unknown})
            answer = await api.ok("server_install", {"server": "mc"})
            assert answer["error"] == (
                "install failed: Minecraft version '9.9.9' is not in the manifest"
            )

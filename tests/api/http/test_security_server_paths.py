"""A server's path settings cannot point outside its directory: a ``minecraft`` jar of
``/etc/passwd`` or ``../../..`` is refused at create, a path variable or a working
directory built from variables of a type that is not admin-only is confined to the
server's directory with symbolic links resolved, at create, at every settings change
and again at every start (a managed server can plant a link at any time). Over real
HTTP against the real daemon, as a HOST account, with real child processes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import trio

from tests.helpers.accounts import add_account
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import api_client

SECRET = Path("/etc/passwd")
SECRET_TEXT = b"root:"

# A type that is not admin-only: it prints its "mods" file, runs in its "world"
# directory, and (with plant = true) replaces its mods file with a link to SECRET and
# crashes, so the automatic restart meets the link.
MOD_GAME = f"""
description = "a game with a mods file and a world directory"
command = ["/bin/sh", "-c", '''
echo "in $(pwd)"; cat "$0"; echo
if [ "$1" = true ]; then ln -s {SECRET} "$0.new" && mv -f "$0.new" "$0"; exit 3; fi
exec sleep 30''', "{{mods}}", "{{plant}}"]
working_dir = "{{world}}"
stop_timeout = 1.0
restart = "never"

[[variables]]
name = "mods"
type = "path"
default = "mods.txt"

[[variables]]
name = "world"
default = "."

[[variables]]
name = "plant"
type = "bool"
default = false
"""


def invalid(body: dict[str, Any], field: str) -> None:
    """The documented refusal: 400 ``invalid`` with a message naming the setting (by its
    label, which forms show; ``field`` in lower case)."""
    assert body["error_type"] == "invalid", body
    assert body["error_message"].lower().startswith(field), body


async def test_a_minecraft_jar_cannot_point_outside_the_server(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    server_dir = tmp_path / "data" / "servers" / "mc"
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "host", "HOST")
            async with api_client(daemon, "host") as api:
                for jar in (str(SECRET), "../../../../../../etc/passwd", "a/../../x.jar"):
                    body = {"server": "mc", "type": "minecraft", "settings": {"jar": jar}}
                    invalid(await api.error("server_create", body, 400), "server jar")
                assert not server_dir.exists()

                # The legitimate jar, inside the directory, is created...
                await api.create("mc", "minecraft", {"jar": "server.jar", "restart": "never"})
                # ...but a link planted in its place later is refused at the start.
                (server_dir / "server.jar").symlink_to(SECRET)
                invalid(await api.error("server_start", {"server": "mc"}, 400), "jar")
                status = await api.status("mc")
                assert (status["status"], status["pid"]) == ("stopped", None)

                # A real file there starts (java says the jar is not one, and it crashes).
                (server_dir / "server.jar").unlink()
                (server_dir / "server.jar").write_bytes(b"not a jar")
                await api.ok("server_start", {"server": "mc"})
                await api.wait_status("mc", "crashed", "stopped")


async def test_path_variables_and_working_dir_are_confined(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "templates").mkdir(parents=True)
    (data / "templates" / "mod-game.toml").write_text(MOD_GAME)
    server_dir = data / "servers" / "modded"
    with trio.fail_after(30):
        async with running_daemon(make_settings(data)) as daemon:
            await add_account(daemon, "host", "HOST")
            async with api_client(daemon, "host") as api:
                for given, field in (
                    ({"mods": str(SECRET)}, "mods"),
                    ({"mods": "../../../../../../../etc/passwd"}, "mods"),
                    ({"world": "../.."}, "working_dir"),
                    ({"world": "/etc"}, "working_dir"),
                ):
                    body = {"server": "modded", "type": "mod-game", "settings": given}
                    invalid(await api.error("server_create", body, 400), field)

                await api.create("modded", "mod-game", {})
                (server_dir / "mods.txt").write_text("mod list\n")
                (server_dir / "maps").mkdir()
                (server_dir / "evil").symlink_to(SECRET)
                (server_dir / "elsewhere").symlink_to("/")

                # A settings change to a link that leads out is refused, naming the setting.
                change = "server_settings"
                for given, field in (
                    ({"mods": "evil"}, "mods"),
                    ({"mods": "maps/../../../../../../etc/passwd"}, "mods"),
                    ({"world": "elsewhere"}, "working_dir"),
                    ({"world": "elsewhere/etc"}, "working_dir"),
                ):
                    body = {"server": "modded", "set": given}
                    invalid(await api.error(change, body, 400), field)
                view = await api.ok(change, {"server": "modded", "set": {"world": "maps"}})
                assert {v["name"]: v["value"] for v in view}["world"] == "maps"

                # Links planted after the change are refused at the start.
                (server_dir / "maps").rename(server_dir / "maps.old")
                (server_dir / "maps").symlink_to("/")
                invalid(await api.error("server_start", {"server": "modded"}, 400), "working_dir")
                (server_dir / "maps").unlink()
                (server_dir / "maps.old").rename(server_dir / "maps")
                (server_dir / "mods.txt").rename(server_dir / "mods.old")
                (server_dir / "mods.txt").symlink_to(SECRET)
                invalid(await api.error("server_start", {"server": "modded"}, 400), "mods")
                assert (await api.status("modded"))["status"] == "stopped"

                # The legitimate use right next to it: a file and a directory inside.
                (server_dir / "mods.txt").unlink()
                (server_dir / "mods.old").rename(server_dir / "mods.txt")
                await api.ok("server_start", {"server": "modded"})
                log = await api.wait_log("modded", b"mod list")
                assert f"in {server_dir / 'maps'}".encode() in log
                await api.ok("server_stop", {"server": "modded"})


async def test_a_link_planted_by_the_server_fails_its_automatic_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "templates").mkdir(parents=True)
    (data / "templates" / "mod-game.toml").write_text(MOD_GAME)
    settings = make_settings(data, servers={"backoff_initial": 0.1})
    server_dir = data / "servers" / "modded"
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "host", "HOST")
            async with api_client(daemon, "host") as api:
                given = {"plant": True, "restart": "on-failure", "max_restarts": 3}
                await api.create("modded", "mod-game", given)
                (server_dir / "mods.txt").write_text("first run\n")
                await api.ok("server_start", {"server": "modded"})
                # It prints its file, plants the link and crashes; the restart is refused.
                status = await api.wait_status("modded", "crashed")
                while status["restarts"] == 0 or status["status"] != "crashed":
                    await trio.sleep(0.05)
                    status = await api.status("modded")
                assert os.path.islink(server_dir / "mods.txt")
                assert "mods must stay inside the server directory" in status["last_error"]
                log, _ = await api.read_log("modded")
                assert b"first run" in log
                assert SECRET_TEXT not in log
                assert log.count(b"[leosuite] started pid") == 1

"""The daemon never follows a symbolic link that a managed server plants where the
daemon keeps its files: the console log's directory, ``console.log``, its rotated
files and the temporary file of its start index. Each test runs a real server (a
shell script of the ``command`` type) that plants the links itself, against the real
daemon over real HTTP, and shows the files the links point at stay untouched and
unread while the console keeps working."""

from __future__ import annotations

import shlex
from pathlib import Path

import trio

from leosuite.settings import Settings
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import Api, api_client

SECRET = b"TOP SECRET of another program\n"
PRECIOUS = b"precious data of another program\n"
FLOOD = 'head -c 3000 /dev/zero | tr "\\0" {}; echo'


def small_console(data: Path) -> Settings:
    """Keep the least console the daemon allows, so retention runs during a test."""
    return make_settings(data, servers={"console_retention_bytes": 65536})


def outside(tmp_path: Path) -> Path:
    other = tmp_path / "outside"
    (other / "dir").mkdir(parents=True)
    (other / "secret.txt").write_bytes(SECRET)
    (other / "precious.txt").write_bytes(PRECIOUS)
    return other


async def run_script(api: Api, name: str, script: str, *args: Path) -> None:
    """Create and start a ``command`` server running ``sh -c script args`` (the lines
    of ``script`` joined: a command is one line). Its output is waited for in capitals,
    which the script writes in pieces (``echo DO"NE"``) so the command line in the
    console's start marker does not match."""
    line = "; ".join(script.splitlines())
    command = shlex.join(["/bin/sh", "-c", line, *map(str, args)])
    await api.create(name, "command", {"command": command, "stop_timeout": 1})
    await api.ok("server_start", {"server": name})


async def test_links_planted_beside_the_console_log_are_not_followed(tmp_path: Path) -> None:
    data, other = tmp_path / "data", outside(tmp_path)
    logs = data / "logs" / "planter"
    script = """L=$0; O=$1
ln -s "$O/secret.txt" "$L/console.log.0"
ln -s "$O/precious.txt" "$L/console.log.start"
ln -s "$O/precious.txt" "$L/console.log.start.tmp"
echo PLAN"TED"
head -c 300000 /dev/zero | tr "\\0" a; echo
echo DO"NE"; exec sleep 30"""
    with trio.fail_after(30):
        async with running_daemon(small_console(data)) as daemon, api_client(daemon) as api:
            await run_script(api, "planter", script, logs, other)
            await api.wait_log("planter", b"DONE")
            # Retention dropped the oldest bytes while the links were there.
            console, _ = await api.read_log("planter")
            assert SECRET.strip() not in console
            assert b"DONE" in console
            await api.ok("server_stop", {"server": "planter"})
            end = (await api.status("planter"))["readIndex"]
        assert (other / "precious.txt").read_bytes() == PRECIOUS
        # A restarted daemon reads none of the links as a console file or its start.
        async with running_daemon(small_console(data)) as daemon, api_client(daemon) as api:
            assert (await api.status("planter"))["readIndex"] == end
            console, _ = await api.read_log("planter")
            assert SECRET.strip() not in console
            await api.ok("server_start", {"server": "planter"})
            await api.wait_log("planter", b"DONE", start=end)
            await api.ok("server_stop", {"server": "planter"})
        assert (other / "precious.txt").read_bytes() == PRECIOUS
        assert (other / "secret.txt").read_bytes() == SECRET


async def test_a_log_directory_replaced_by_a_link_is_not_followed(tmp_path: Path) -> None:
    data, other = tmp_path / "data", outside(tmp_path)
    logs = data / "logs" / "mover"
    script = f"""L=$0; O=$1
echo before
mv "$L" "$L.moved"; ln -s "$O/dir" "$L"
echo PLAN"TED"
{FLOOD.format("c")}
echo DO"NE"; exec sleep 30"""
    with trio.fail_after(30):
        async with running_daemon(small_console(data)) as daemon, api_client(daemon) as api:
            await run_script(api, "mover", script, logs, other)
            await api.wait_log("mover", b"DONE")
            # The daemon writes on in the directory it opened, wherever it was moved.
            assert list((other / "dir").iterdir()) == []
            assert (logs.with_name("mover.moved") / "console.log").exists()
            await api.ok("server_stop", {"server": "mover"})
            end = (await api.status("mover"))["readIndex"]
        assert logs.is_symlink()
        # A restarted daemon does not follow the link either: it makes a new directory.
        async with running_daemon(small_console(data)) as daemon, api_client(daemon) as api:
            assert not logs.is_symlink()
            assert logs.is_dir()
            assert (await api.status("mover"))["readIndex"] == end  # the index goes on
            await api.ok("server_start", {"server": "mover"})
            await api.wait_log("mover", b"DONE", start=end)
            await api.ok("server_stop", {"server": "mover"})
        assert list((other / "dir").iterdir()) == []


async def test_a_console_log_replaced_by_a_link_is_not_followed(tmp_path: Path) -> None:
    data, other = tmp_path / "data", outside(tmp_path)
    logs = data / "logs" / "swapper"
    script = """L=$0; O=$1
if [ ! -e "$O/planted" ]; then touch "$O/planted"
rm "$L/console.log"; ln -s "$O/precious.txt" "$L/console.log"; fi
echo PLAN"TED"; exec sleep 30"""
    with trio.fail_after(30):
        async with running_daemon(small_console(data)) as daemon, api_client(daemon) as api:
            await run_script(api, "swapper", script, logs, other)
            await api.wait_log("swapper", b"PLANTED")
            await api.ok("server_stop", {"server": "swapper"})
        assert (logs / "console.log").is_symlink()
        async with running_daemon(small_console(data)) as daemon, api_client(daemon) as api:
            await api.ok("server_start", {"server": "swapper"})
            await api.wait_status("swapper", "running")
            await api.ok("server_stop", {"server": "swapper"})
            console, _ = await api.read_log("swapper")
            assert b"[leosuite] started pid" in console
            assert PRECIOUS.strip() not in console
        assert (other / "precious.txt").read_bytes() == PRECIOUS
        assert not (logs / "console.log").is_symlink()
        assert b"[leosuite] started pid" in (logs / "console.log").read_bytes()

"""Managed servers can run as another system user than the daemon, so a compromised
game server cannot rewrite the store: the child gets that user's uid, gid and
supplementary groups; its directory is handed to it without following the links it
planted there; only an ADMIN may choose the user. Real users (``useradd``), the real
daemon over real HTTP; and a daemon that is not root but holds capabilities the way
systemd's ``AmbientCapabilities=`` gives them, whose servers get none of them."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import trio

from tests.helpers.accounts import add_account
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import api_client
from tests.helpers.servers import FAST_DEMO
from tests.helpers.users import needs_root, reachable_dir, system_user

pytestmark = needs_root

# Run as root (the first run) it plants links to files outside; run as its user it
# tells who it is, whether it can touch the store, and writes into its directory.
GAME = """O=$0; DB=$1
if [ "$(id -u)" = 0 ]; then ln -s "$O/file.txt" link.txt; mkdir sub; ln -s "$O/dir" sub/deeper
echo PLAN"TED"; exit 0; fi
echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"
if [ -r "$DB" ] || [ -w "$DB" ]; then echo STORE-OPEN; else echo STORE-CLO"SED"; fi
echo mine > own.txt && echo WRO"TE"
exec sleep 30"""


def owner(path: Path) -> int:
    return os.lstat(path).st_uid


async def test_a_server_runs_as_its_user_and_only_an_admin_chooses_it() -> None:
    with reachable_dir() as base, system_user(group=True) as (user, extra_gid):
        data = base / "data"
        outside = base / "outside"
        (outside / "dir").mkdir(parents=True)
        (outside / "file.txt").write_text("root's file\n")
        store = data / "leosuite.db"
        line = "; ".join(GAME.splitlines())
        command = shlex.join(["/bin/sh", "-c", line, str(outside), str(store)])
        with trio.fail_after(30):
            async with running_daemon(make_settings(data)) as daemon:
                await add_account(daemon, "host", "HOST")
                async with api_client(daemon, "host") as host:
                    body = {"server": "hosted", "type": "demo-game",
                            "settings": {**FAST_DEMO, "user": user.pw_name}}  # fmt: skip
                    refused = await host.error("server_create", body, 403)
                    assert refused["error_message"] == (
                        "only an ADMIN may set the user a server runs as"
                    )
                    await host.create("hosted", "demo-game", FAST_DEMO)
                    change = {"server": "hosted", "set": {"user": user.pw_name}}
                    await host.error("server_settings", change, 403)
                    same = {"server": "hosted", "set": {"user": "", "ready_delay": 0.2}}
                    await host.ok("server_settings", same)

                async with api_client(daemon) as admin:
                    await admin.create("game", "command", {"command": command, "stop_timeout": 1})
                    await admin.ok("server_start", {"server": "game"})
                    await admin.wait_log("game", b"PLANTED")
                    await admin.wait_status("game", "crashed", "stopped")

                    unknown = {"server": "game", "set": {"user": "no-such-user-here"}}
                    assert (await admin.error("server_settings", unknown, 400))[
                        "error_message"
                    ] == "user: no system user 'no-such-user-here'"
                    chosen = {"server": "game", "set": {"user": user.pw_name}}
                    await admin.ok("server_settings", chosen)
                    await admin.ok("server_start", {"server": "game"})
                    log = await admin.wait_log("game", b"WROTE")
                    pid = (await admin.status("game"))["pid"]
                    process = psutil.Process(pid)
                    assert process.uids().real == process.uids().effective == user.pw_uid
                    assert process.gids().real == user.pw_gid
                    assert f"uid={user.pw_uid} gid={user.pw_gid} ".encode() in log
                    said = next(x for x in log.splitlines() if x.startswith(b"uid="))
                    groups = said.split(b"groups=")[1].split()
                    assert str(extra_gid).encode() in groups
                    assert f"as user {user.pw_name}".encode() in log
                    assert b"STORE-CLOSED" in log

                    server_dir = data / "servers" / "game"
                    assert owner(server_dir) == owner(server_dir / "own.txt") == user.pw_uid
                    assert stat.S_IMODE(server_dir.stat().st_mode) == 0o710  # x: the daemon
                    # The links were handed over; what they point at was not.
                    assert owner(server_dir / "link.txt") == user.pw_uid
                    assert owner(server_dir / "sub" / "deeper") == user.pw_uid
                    assert owner(outside / "file.txt") == owner(outside / "dir") == 0
                    assert stat.S_IMODE(os.stat(data).st_mode) & 0o001  # passable, not listable
                    if not daemon.ctx.settings.store.url:  # the SQLite store's file
                        assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
                    await admin.ok("server_stop", {"server": "game"})
                    assert (await admin.status("game"))["status"] == "stopped"


# The daemon's side, as systemd starts it with User=<a> and AmbientCapabilities=CAP_CHOWN
# CAP_KILL CAP_SETGID CAP_SETUID: every module loaded while still root (the interpreter
# lives where user a cannot read), then the switch, then one server spawned as user b.
DRIVER = textwrap.dedent(
    """
    import ctypes, os, pwd, sys
    import trio, trio.lowlevel, trio.to_thread, trio._subprocess_platform.waitid
    import leosuite.supervision.process as process
    from leosuite.supervision.spec import LaunchSpec
    from leosuite.supervision.run_as import drop_inheritable_capabilities
    import encodings.ascii, encodings.idna, grp, subprocess, threading

    a, b, directory, drop = sys.argv[1:5]
    libc = ctypes.CDLL(None, use_errno=True)
    CAPS = (1 << 0) | (1 << 5) | (1 << 6) | (1 << 7)  # CHOWN, KILL, SETGID, SETUID

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]

    def capset(caps):
        data = (Data * 2)(Data(caps, caps, caps), Data(0, 0, 0))
        assert libc.capset(ctypes.byref(Header(0x20080522, 0)), data) == 0

    user = pwd.getpwnam(a)
    libc.prctl(8, 1, 0, 0, 0)  # PR_SET_KEEPCAPS across the switch
    capset(CAPS)
    os.setgroups([])
    os.setresgid(user.pw_gid, user.pw_gid, user.pw_gid)
    os.setresuid(user.pw_uid, user.pw_uid, user.pw_uid)
    capset(CAPS)
    for cap in (0, 5, 6, 7):
        assert libc.prctl(47, 2, cap, 0, 0) == 0  # PR_CAP_AMBIENT_RAISE
    if drop == "drop":
        drop_inheritable_capabilities()

    async def main():
        spec = LaunchSpec(
            argv=["/bin/sh", "-c", "id -u; grep ^Cap /proc/self/status; exec sleep 30"],
            cwd=directory, user=b, server_dir=directory, stop_timeout=1,
        )
        read_end, write_end = os.pipe()
        null = os.open(os.devnull, os.O_RDONLY)
        proc = await process.spawn(spec, stdin_fd=null, output_fd=write_end)
        os.close(write_end)
        os.close(null)
        out = b""
        while out.count(b"\\n") < 6:
            out += os.read(read_end, 4096)
        os.killpg(proc.pid, 9)  # user a signals user b's group: CAP_KILL
        proc.wait()
        print(f"daemon uid={os.getuid()}")
        print(out.decode(), end="")
        print(f"exit {proc.returncode}")

    trio.run(main)
    """
)


def run_driver(a: str, b: str, directory: Path, drop: str) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, a, b, str(directory), drop],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd="/",
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    fields = dict(line.split(":", 1) for line in lines if line.startswith("Cap"))
    return {
        **{k: v.strip() for k, v in fields.items()},
        "daemon": lines[0],
        "child": lines[1],
        "exit": lines[-1],
    }


def test_a_daemon_with_capabilities_passes_none_to_its_servers() -> None:
    with reachable_dir() as base, system_user() as (daemon, _), system_user() as (game, _):
        directory = base / "srv"
        directory.mkdir()
        os.chown(base, daemon.pw_uid, daemon.pw_gid)
        os.chown(directory, daemon.pw_uid, daemon.pw_gid)
        seen = run_driver(daemon.pw_name, game.pw_name, directory, "drop")
        assert seen["daemon"] == f"daemon uid={daemon.pw_uid}"
        assert seen["child"] == str(game.pw_uid)
        for name in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
            assert int(seen[name], 16) == 0, (name, seen)
        assert seen["exit"] == "exit -9"
        assert owner(directory) == game.pw_uid
        # Without the drop at start, the ambient set would reach the server.
        kept = run_driver(daemon.pw_name, game.pw_name, directory, "keep")
        assert kept["child"] == str(game.pw_uid)
        assert int(kept["CapAmb"], 16) == 0b11100001

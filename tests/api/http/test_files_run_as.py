"""A server that runs as another system user gets the files the daemon makes for it
as its own (owner and group), before its first start and after it: it reads and
changes them, and nothing in its directory is left to root. Real users (``useradd``),
a real daemon and its HTTP listener, a real child process."""

from __future__ import annotations

import os
import shlex

import trio

from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import api_client
from tests.helpers.server_files import Files
from tests.helpers.users import needs_root, reachable_dir, system_user

pytestmark = needs_root

# It shows what it was given and who it is, changes the file it was given, and waits.
PROGRAM = shlex.join(
    [
        "/bin/sh",
        "-c",
        'cat config/motd.txt; echo "uid=$(id -u)"; echo changed >> config/motd.txt; '
        "echo server-made > made.txt; echo done; exec sleep 60",
    ]
)


async def test_files_are_made_for_the_user_a_server_runs_as() -> None:
    with reachable_dir() as base, system_user() as (user, _):
        data = base / "data"
        root = data / "servers" / "svc"
        ours = (user.pw_uid, user.pw_gid)

        def owner(relative: str) -> tuple[int, int]:
            st = os.stat(root / relative, follow_symlinks=False)
            return st.st_uid, st.st_gid

        with trio.fail_after(60):
            async with running_daemon(make_settings(data)) as daemon, api_client(daemon) as api:
                settings = {"command": PROGRAM, "user": user.pw_name, "stop_timeout": 1}
                await api.create("svc", "command", settings)
                files = Files(api, "svc")
                # Before its first start: made by the daemon, owned by the server's user.
                await files.ok("mkdir", path="config")
                await files.ok("write", path="config/motd.txt", data="hello from the api\n")
                assert owner("config") == owner("config/motd.txt") == ours

                await api.ok("server_start", {"server": "svc"})
                log = await api.wait_log("svc", b"done\n")
                assert b"hello from the api\n" in log
                assert f"uid={user.pw_uid}\n".encode() in log
                assert (root / "config" / "motd.txt").read_text() == "hello from the api\nchanged\n"

                # After it: its own files are read, new ones are its user's too.
                made = await files.ok("read", path="made.txt")
                assert made["data"] == "server-made\n"
                upload = await files.upload("config/extra.cfg", b"x" * 1000)
                assert upload.status_code == 200, upload.text
                await files.ok("mkdir", path="plugins/a/b", parents=True)
                await files.ok("write", path="config/motd.txt", data="rewritten\n")
                for relative in (
                    "config/extra.cfg",
                    "plugins",
                    "plugins/a",
                    "plugins/a/b",
                    "config/motd.txt",
                ):
                    assert owner(relative) == ours, relative
                await files.ok("rename", path="config/extra.cfg", to="plugins/extra.cfg")
                assert owner("plugins/extra.cfg") == ours
                await api.ok("server_stop", {"server": "svc"})
                for directory, _dirs, names in os.walk(root):
                    for name in names:
                        st = os.stat(os.path.join(directory, name), follow_symlinks=False)
                        assert st.st_uid == user.pw_uid, (directory, name)

"""Installs against hostile settings and servers on a real daemon: who may have an
install put what settings say into a server that runs as the daemon's user, where a
download that takes a setting may go, broken answers, stalled downloads (readiness,
the store), who sees install events, what a step leaves behind."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import trio

from leosuite.supervision.escapers import server_tag
from tests.api.http.test_install_steps import BLOB, _fetch, _settings
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import login, running_daemon, start_daemon
from tests.helpers.http import api_client
from tests.helpers.mojang import fake_mojang
from tests.helpers.servers import wait_gone
from tests.helpers.users import needs_root, reachable_dir, system_user
from tests.helpers.ws import ws_client

REFUSAL = (
    "server 'f' runs as the daemon's own user and its install fetches, writes or runs "
    "what its settings say: only an ADMIN may install it (give it a user of its own, or "
    "set servers.user)"
)

LEFTOVER = """
description = "an install command that leaves a child behind"
admin_only = true
command = ["{python}", "-c", "import sys; sys.stdin.read()"]

[[install]]
[install.write]
to = "step.py"
content = '''
import os, subprocess, sys, time
child = "import os, time; open('tag', 'w').write(os.environ.get('LEOSUITE_SERVER_ID', '')); " \\
    "open('child.pid', 'w').write(str(os.getpid())); time.sleep(600)"
subprocess.Popen([sys.executable, "-c", child])
while not os.path.exists("child.pid"):
    time.sleep(0.05)
'''

[[install]]
run = ["{python}", "step.py"]
"""


def _data(tmp_path: Path) -> Path:
    return tmp_path / "data" / "servers"


async def test_a_non_admin_may_not_install_settings_into_a_daemon_user_server(
    tmp_path: Path,
) -> None:
    with fake_mojang() as site, trio.fail_after(60):
        async with running_daemon(_settings(tmp_path, site)) as daemon:
            await add_account(daemon, "host", "HOST")
            async with api_client(daemon, "host") as host, api_client(daemon) as admin:
                payload = b"print('planted')\n"
                await host.create("f", "fetcher", _fetch(site, "p", payload, target="x.py"))
                refusal = await host.error("server_install", {"server": "f"}, 403)
                assert refusal["error_message"] == REFUSAL
                refusal = await host.error("server_start", {"server": "f"}, 403)
                assert refusal["error_message"] == REFUSAL
                assert not (_data(tmp_path) / "f" / "x.py").exists()
                assert site.hits.get("/files/p") is None
                # A type whose steps take no setting: its owner installs and starts it.
                await host.create("fixed", "fixed", {})
                assert (await host.ok("server_install", {"server": "fixed"}))["installed"]
                await host.ok("server_start", {"server": "fixed"})
                await host.wait_status("fixed", "running")
                await host.ok("server_stop", {"server": "fixed"})
                # An ADMIN may; once installed, the owner starts it (nothing to install).
                assert (await admin.ok("server_install", {"server": "f"}))["installed"]
                assert (_data(tmp_path) / "f" / "x.py").read_bytes() == payload
                await host.ok("server_start", {"server": "f"})
                await host.wait_status("f", "running")
                await host.ok("server_stop", {"server": "f"})
                # A new setting while it runs, then a start nobody asked for (autostart,
                # a crash's restart): the owner, who started it last, is no ADMIN.
                await host.ok("server_settings", {"server": "f", "set": {"target": "y.py"}})
                answer = await daemon.ctx.servers.power("f", "start")
                assert answer.value == "crashed"
                assert (await host.status("f"))["last_error"] == f"install failed: {REFUSAL}"
                assert not (_data(tmp_path) / "f" / "y.py").exists()


async def test_a_download_that_takes_a_setting_reaches_no_private_address(
    tmp_path: Path,
) -> None:
    with fake_mojang() as site, fake_mojang() as inner, trio.fail_after(60):
        inner.files["/secret"] = BLOB
        sha = hashlib.sha256(BLOB).hexdigest()
        site.redirects["/files/away"] = inner.url("/secret")
        site.redirects["/files/here"] = site.url("/files/blob")
        site.files["/files/blob"] = BLOB
        async with running_daemon(_settings(tmp_path, site)) as daemon, api_client(daemon) as admin:
            await admin.create("f", "fetcher", {"file": "away", "sha": sha})
            answer = await admin.ok("server_install", {"server": "f"})
            assert answer["error"] == "install failed: download of data.bin failed"
            assert inner.hits == {}  # refused before it connected
            # A redirect that stays on the type's own host is followed.
            await admin.ok("server_settings", {"server": "f", "set": {"file": "here"}})
            assert (await admin.ok("server_install", {"server": "f"}))["installed"]
            # A value cannot leave the path: its separators are encoded.
            await admin.ok("server_settings", {"server": "f", "set": {"file": "../x?y"}})
            answer = await admin.ok("server_install", {"server": "f"})
            assert answer["installed"] is False
            assert "/files/..%2Fx%3Fy" in site.hits


async def test_broken_answers_fail_the_install_and_nothing_else(tmp_path: Path) -> None:
    long_host = "http://" + "a" * 70 + ".example/x"
    with fake_mojang() as site, trio.fail_after(60):
        site.files["/files/odd"] = b"x"
        site.lengths["/files/odd"] = "\u00b2"
        settings = _settings(tmp_path, site)
        (tmp_path / "data" / "templates" / "far.toml").write_text(
            'command = ["{python}", "-c", "import sys; sys.stdin.read()"]\n'
            f'[[install]]\ndownload = {{url = "{long_host}", to = "a", sha1 = "{"0" * 40}"}}\n'
        )
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await admin.create("f", "fetcher", {"file": "odd", "sha": "0" * 64})
            answer = await admin.ok("server_install", {"server": "f"})
            assert answer["installed"] is False
            assert answer["error"].startswith("install failed: ")
            await admin.create("g", "far", {})
            answer = await admin.ok("server_install", {"server": "g"})
            assert answer["installed"] is False
            assert answer["error"].startswith("install failed: cannot fetch")
            # The supervisors live on: installs and starts still work.
            await admin.ok("server_settings", {"server": "f", "set": _fetch(site, "ok", BLOB)})
            assert (await admin.ok("server_install", {"server": "f"}))["installed"]
            await admin.ok("server_start", {"server": "f"})
            await admin.wait_status("f", "running")


async def test_an_autostart_install_does_not_hold_readiness(tmp_path: Path) -> None:
    with fake_mojang() as site, trio.fail_after(90):
        site.files["/files/fixed.bin"] = BLOB
        settings = _settings(tmp_path, site)
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await admin.create("f", "fixed", {"autostart": True})
        site.stalls.add("/files/fixed.bin")
        endpoints = tmp_path / "data" / "run" / "endpoints.json"
        endpoints.unlink(missing_ok=True)
        async with trio.open_nursery() as nursery:
            running = await start_daemon(nursery, settings)
            try:
                assert endpoints.exists()
                async with api_client(running) as admin:
                    status = await admin.status("f")
                    assert status["status"] == "starting"
                    assert status["install"]["running"] is True
                    site.release.set()
                    await admin.wait_status("f", "running")
            finally:
                running.daemon.request_stop()


async def test_stalled_downloads_do_not_hold_the_store(tmp_path: Path) -> None:
    count = 41
    with fake_mojang() as site, trio.fail_after(240):
        settings = _settings(tmp_path, site)
        site.stalls.add("/files/fixed.bin")
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            for i in range(count):
                await admin.create(f"s{i}", "fixed", {})
            async with trio.open_nursery() as nursery:
                for i in range(count):
                    nursery.start_soon(admin.post, "server_install", {"server": f"s{i}"})
                while True:
                    status = await admin.ok("server_status", {})
                    if all(s["install"]["running"] for s in status["servers"].values()):
                        break
                    await trio.sleep(0.1)
                await trio.to_thread.run_sync(site.stalled.wait)
                # The store answers: a settings change and a login.
                await admin.ok("server_settings", {"server": "s0", "set": {"autostart": True}})
                await add_account(daemon, "late", "HOST")
                async with daemon.http() as client:
                    await login(client, "late", PASSWORD)
                site.release.set()


async def test_install_events_reach_only_who_may_read_the_console(tmp_path: Path) -> None:
    with fake_mojang() as site, trio.fail_after(60):
        async with running_daemon(_settings(tmp_path, site)) as daemon:
            await add_account(daemon, "finn")
            await add_account(daemon, "cora")
            async with api_client(daemon) as admin:
                await admin.create("f", "fixed", {})
                for who, rights in (("finn", ["files", "power"]), ("cora", ["console"])):
                    await admin.ok(
                        "server_share_set", {"server": "f", "account": who, "rights": rights}
                    )
                async with ws_client(daemon) as finn, ws_client(daemon) as cora:
                    await finn.login("finn", PASSWORD)
                    await cora.login("cora", PASSWORD)
                    await finn.ok("events.subscribe")
                    await cora.ok("events.subscribe")
                    assert (await admin.ok("server_install", {"server": "f"}))["installed"]
                    phases = []
                    while "done" not in phases:
                        push = await cora.next_push("event")
                        if push["content"]["kind"] == "install":
                            phases.append(push["content"]["phase"])
                    await admin.ok("server_start", {"server": "f"})
                    kinds = []
                    while "state" not in kinds:
                        kinds.append((await finn.next_push("event"))["content"]["kind"])
                    assert kinds == ["state"]
                    await admin.ok("server_stop", {"server": "f"})


async def test_a_run_step_leaves_nothing_running_and_carries_the_tag(tmp_path: Path) -> None:
    root = _data(tmp_path) / "s"
    with trio.fail_after(60):
        settings = _settings(tmp_path)
        (tmp_path / "data" / "templates" / "leftover.toml").write_text(LEFTOVER)
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await admin.create("s", "leftover", {})
            answer = await admin.ok("server_install", {"server": "s"})
            assert answer["installed"] is True, answer
            pid = int((root / "child.pid").read_text())
            await wait_gone([pid])
            console = daemon.ctx.servers.dirs.logs("s")
            assert (root / "tag").read_text() == server_tag("s", console)


async def test_stale_temporary_files_are_swept_before_an_install(tmp_path: Path) -> None:
    root = _data(tmp_path) / "f"
    with fake_mojang() as site, trio.fail_after(60):
        async with running_daemon(_settings(tmp_path, site)) as daemon, api_client(daemon) as admin:
            await admin.create("f", "fixed", {})
            stale, fresh = (
                root / ".leosuite-0123456789abcdef.tmp",
                root / (".leosuite-fedcba9876543210.tmp"),
            )
            other = root / ".leosuite-mine.tmp"
            for path in (stale, fresh, other):
                path.write_bytes(b"partial")
            old = time.time() - 7200
            os.utime(stale, (old, old))
            os.utime(other, (old, old))
            assert (await admin.ok("server_install", {"server": "f"}))["installed"]
            assert not stale.exists()
            assert fresh.exists()
            assert other.exists()


async def test_a_download_over_its_deadline_fails(tmp_path: Path) -> None:
    with fake_mojang() as site, trio.fail_after(60):
        settings = _settings(tmp_path, site, install_timeout=1)
        site.stalls.add("/files/fixed.bin")
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await admin.create("f", "fixed", {})
            answer: dict[str, Any] = await admin.ok("server_install", {"server": "f"})
            assert (
                answer["error"] == "install failed: download fixed.bin took more than 1 s: stopped"
            )
            assert not list((_data(tmp_path) / "f").glob(".leosuite-*"))


@needs_root
async def test_an_install_writes_files_for_the_server_s_own_user() -> None:
    with reachable_dir() as base, system_user() as (user, _), fake_mojang() as site:
        settings = _settings(base, site)
        root = base / "data" / "servers" / "f"
        with trio.fail_after(60):
            async with running_daemon(settings) as daemon, api_client(daemon) as admin:
                await admin.create("f", "fetcher", _fetch(site, "a", BLOB, user=user.pw_name))
                for _ in range(2):  # the first install, then a reinstall
                    assert (await admin.ok("server_install", {"server": "f"}))["installed"]
                    st = os.stat(root / "data.bin")
                    assert (st.st_uid, st.st_gid) == (user.pw_uid, user.pw_gid)

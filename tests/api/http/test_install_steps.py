"""Install steps of operator-written types on a real daemon: downloads checked against
their checksum and kept inside the server's directory, commands that fail, installs
stopped half-way, who may install, and hostile requests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import trio

from tests.helpers.accounts import add_account
from tests.helpers.admin_accounts import server_audit, set_flags
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import Api, api_client, decode_data
from tests.helpers.mojang import FakeMojang, fake_mojang
from tests.helpers.servers import FAST_DEMO
from tests.helpers.ws import ws_client

FETCHER = """
description = "fetches a file"
command = ["{python}", "-c", "import sys; print('up', flush=True); sys.stdin.read()"]
stop_timeout = 2.0
restart = "on-failure"

[[variables]]
name = "file"
required = true

[[variables]]
name = "sha"
required = true

[[variables]]
name = "target"
default = "data.bin"

[[install]]
download = { url = "BASE/files/{file}", to = "{target}", sha256 = "{sha}" }
"""

#: A type whose install takes no setting: anyone who may start it may install it.
FIXED = """
description = "fetches one file its author chose"
command = ["{python}", "-c", "import sys; print('up', flush=True); sys.stdin.read()"]
stop_timeout = 2.0

[[install]]
download = { url = "BASE/files/fixed.bin", to = "fixed.bin", sha256 = "FIXED_SHA" }
"""

SCRIPTED = """
description = "runs a script at install"
admin_only = true
command = ["{python}", "-c", "import sys; sys.stdin.read()"]
stop_timeout = 2.0

[[variables]]
name = "code"
default = "open('made.txt', 'w').write('made')"

[[install]]
run = ["{python}", "-c", "{code}"]
timeout = 60
"""

SLOW = """
description = "an install command that overruns"
admin_only = true
command = ["{python}", "-c", "import sys; sys.stdin.read()"]

[[install]]
run = ["{python}", "-c", "import time; time.sleep(600)"]
timeout = 0.5
"""

BLOB = bytes(range(256)) * 40


def _settings(tmp_path: Path, site: FakeMojang | None = None, **servers: Any) -> Any:
    """The test types; ``site`` is where the fetching ones download from (its address
    written into them as a type's author does)."""
    templates = tmp_path / "data" / "templates"
    templates.mkdir(parents=True)
    for name, text in (("scripted", SCRIPTED), ("slow", SLOW)):
        (templates / f"{name}.toml").write_text(text)
    if site is not None:
        site.files["/files/fixed.bin"] = BLOB
        for name, text in (("fetcher", FETCHER), ("fixed", FIXED)):
            text = text.replace("BASE", site.base)
            text = text.replace("FIXED_SHA", hashlib.sha256(BLOB).hexdigest())
            (templates / f"{name}.toml").write_text(text)
    return make_settings(tmp_path / "data", servers=servers)


def _temp_files(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "data" / "servers").rglob(".leosuite-*"))


async def _install(api: Api, server: str) -> dict[str, Any]:
    answer: dict[str, Any] = await api.ok("server_install", {"server": server})
    return answer


def _fetch(site: FakeMojang, name: str, data: bytes, **extra: Any) -> dict[str, Any]:
    """The settings of a ``fetcher`` server that downloads ``data`` as file ``name``."""
    site.files[f"/files/{name}"] = data
    return {"file": name, "sha": hashlib.sha256(data).hexdigest(), **extra}


async def test_downloads_are_checked_and_stay_inside(tmp_path: Path) -> None:
    root = tmp_path / "data" / "servers" / "f"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"untouched")
    with fake_mojang() as site, trio.fail_after(60):
        async with running_daemon(_settings(tmp_path, site, install_max_bytes=20000)) as daemon:
            async with api_client(daemon) as api:
                await api.create("f", "fetcher", _fetch(site, "blob", BLOB))
                assert await _install(api, "f") == {
                    "server": "f",
                    "status": "stopped",
                    "installed": True,
                }
                assert (root / "data.bin").read_bytes() == BLOB

                async def refused(change: dict[str, Any], error: str) -> None:
                    await api.ok("server_settings", {"server": "f", "set": change})
                    answer = await _install(api, "f")
                    assert (answer["installed"], answer["status"]) == (False, "crashed"), answer
                    assert answer["error"] == f"install failed: {error}"
                    assert (await api.status("f"))["last_error"] == answer["error"]

                # The wrong checksum: nothing at the target, nothing beside it.
                wrong = {"sha": hashlib.sha256(b"other").hexdigest(), "target": "new.bin"}
                await refused(wrong, "new.bin does not match its SHA256: refused")
                assert not (root / "new.bin").exists()
                # Over servers.install_max_bytes (announced, then while reading).
                big = _fetch(site, "big", bytes(30000))
                await refused(big, f"{site.url('/files/big')} is larger than 20000 bytes")
                # A URL that takes a setting says no more than that it failed (the daemon
                # log has the reason): no answer tells which addresses and ports answer.
                missing = _fetch(site, "gone", b"") | {"file": "nothing"}
                await refused(missing, "download of new.bin failed")

                # Out of the directory by name, or through a link the server planted.
                await api.ok("server_settings", {"server": "f", "set": _fetch(site, "b", BLOB)})
                for target in ("../x.bin", "/tmp/x.bin", "a/../../x.bin"):
                    await refused(
                        {"target": target}, "to must be a file inside the server directory"
                    )
                never = "is a symbolic link (links are never followed)"
                (root / "link.bin").symlink_to(outside / "victim")
                await refused({"target": "link.bin"}, f"path: link.bin {never}")
                (root / "sub").symlink_to(outside)
                await refused({"target": "sub/x.bin"}, f"path: sub {never}")
                assert sorted(p.name for p in outside.iterdir()) == ["victim"]
                assert (outside / "victim").read_bytes() == b"untouched"
                assert not (tmp_path / "data" / "servers" / "x.bin").exists()
                assert _temp_files(tmp_path) == []

                # Fixed, it installs again; the console told each attempt.
                await api.ok("server_settings", {"server": "f", "set": {"target": "ok.bin"}})
                assert (await _install(api, "f"))["installed"] is True
                log, _ = await api.read_log("f")
                assert b"[leosuite] install failed: new.bin does not match its SHA256" in log
                assert b"[leosuite] install: ok.bin: 100% (10.0 KiB of 10.0 KiB)" in log
            messages = [e.message for e in await server_audit(daemon, "f")]
            assert "install done (now stopped)" in messages
            assert any(m.startswith("install failed: new.bin does not") for m in messages)


async def test_install_commands_and_their_failures(tmp_path: Path) -> None:
    root = tmp_path / "data" / "servers" / "s"
    with trio.fail_after(60):
        async with running_daemon(_settings(tmp_path)) as daemon, api_client(daemon) as api:
            await api.create("s", "scripted", {})
            await api.ok("server_start", {"server": "s"})
            await api.wait_status("s", "running")
            assert (root / "made.txt").read_text() == "made"
            await api.ok("server_stop", {"server": "s"})

            code = "import sys; print('boom from the step'); sys.exit(3)"
            await api.ok("server_settings", {"server": "s", "set": {"code": code}})
            answer = await api.ok("server_start", {"server": "s"})
            assert answer == {"server": "s", "status": "crashed"}
            status = await api.status("s")
            assert status["last_error"] == "install failed: run python3 exited with code 3" or (
                status["last_error"].startswith("install failed: run python")
                and status["last_error"].endswith("exited with code 3")
            )
            assert (status["restarts"], status["pid"]) == (0, None)
            log, _ = await api.read_log("s")
            assert b"boom from the step" in log

            await api.create("slow", "slow", {})
            answer = await _install(api, "slow")
            assert answer["installed"] is False
            assert answer["error"].endswith("took more than 0.5 s: killed")


async def test_a_stopped_or_destroyed_install_leaves_nothing(tmp_path: Path) -> None:
    with fake_mojang() as site, trio.fail_after(60):
        async with running_daemon(_settings(tmp_path, site)) as daemon, api_client(daemon) as api:
            big = _fetch(site, "slow", bytes(4 << 20))
            site.stalls.add("/files/slow")
            await api.create("f", "fetcher", big)

            # Stopped while the first start installs: stopped, not crashed.
            async with trio.open_nursery() as nursery:
                nursery.start_soon(api.ok, "server_start", {"server": "f"})
                await trio.to_thread.run_sync(site.stalled.wait)
                status = await api.status("f")
                assert status["status"] == "starting"
                assert status["install"]["running"] is True
                answer = await api.ok("server_stop", {"server": "f"})
                assert answer == {"server": "f", "status": "stopped"}
            status = await api.status("f")
            assert (status["install"]["running"], status["last_error"]) == (False, None)
            assert _temp_files(tmp_path) == []
            log, _ = await api.read_log("f")
            assert b"[leosuite] install cancelled" in log

            # Destroyed while an install runs on demand.
            site.stalled.clear()
            answers: list[int] = []

            async def install() -> None:
                response = await api.post("server_install", {"server": "f"})
                answers.append(response.status_code)
                if response.status_code == 200:
                    assert response.json()["installed"] is False

            async with trio.open_nursery() as nursery:
                nursery.start_soon(install)
                await trio.to_thread.run_sync(site.stalled.wait)
                await api.ok("server_destroy", {"server": "f"})
            assert answers in ([200], [404])
            kept = list((tmp_path / "data" / "servers" / ".destroyed").iterdir())
            assert len(kept) == 1
            assert _temp_files(tmp_path) == []
            assert not (kept[0] / "data.bin").exists()


async def test_who_may_install_and_hostile_requests(tmp_path: Path) -> None:
    with fake_mojang() as site, trio.fail_after(60):
        async with running_daemon(_settings(tmp_path, site)) as daemon:
            await add_account(daemon, "host", "HOST")
            await add_account(daemon, "other", "HOST")
            boss = await add_account(daemon, "boss", "ADMIN", "HOST")
            async with (
                api_client(daemon, "host") as host,
                api_client(daemon, "other") as other,
                api_client(daemon, "boss") as boss_api,
            ):
                await host.create("f", "fixed", {})
                await host.create("demo", "demo-game", FAST_DEMO)
                await boss_api.create("s", "scripted", {})

                # Another account does not see the server at all.
                refusal = await other.error("server_install", {"server": "f"}, 404)
                assert refusal["error_type"] == "not_found"
                # An admin-only type is installed by an ADMIN only, even by its owner.
                await set_flags(daemon, boss, "HOST")
                async with api_client(daemon, "boss") as former_admin:
                    refusal = await former_admin.error("server_install", {"server": "s"}, 403)
                assert refusal["error_message"] == (
                    "installing a server of type 'scripted' needs the ADMIN flag"
                )
                assert not (tmp_path / "data" / "servers" / "s" / "made.txt").exists()

                for body, status in (
                    ({}, 400),
                    ({"server": "../f"}, 400),
                    ({"server": "f", "extra": 1}, 400),
                    ({"server": 7}, 400),
                    ({"server": "nope"}, 404),
                ):
                    await host.error("server_install", body, status)
                refusal = await host.error("server_install", {"server": "demo"}, 409)
                assert refusal["error_message"] == (
                    "servers of type 'demo-game' have no install steps"
                )
                await host.ok("server_start", {"server": "f"})
                await host.wait_status("f", "running")
                refusal = await host.error("server_install", {"server": "f"}, 409)
                assert refusal["error_message"] == "stop the server first (running)"
                await host.ok("server_stop", {"server": "f"})
                response = await host.client.post("/api/server_install", json={"server": "f"})
                assert response.status_code == 403
                assert response.json()["error_type"] == "forbidden"


async def test_install_over_the_websocket_with_progress_events(tmp_path: Path) -> None:
    with fake_mojang() as site, trio.fail_after(60):
        async with running_daemon(_settings(tmp_path, site)) as daemon:
            async with api_client(daemon) as api:
                await api.create("f", "fetcher", _fetch(site, "blob", bytes(300_000)))
            async with ws_client(daemon, login=True) as ws:
                await ws.ok("events.subscribe")
                answer = await ws.ok("server.install", {"server": "f"})
                assert answer == {"server": "f", "status": "stopped", "installed": True}
                events = []
                while not events or events[-1]["phase"] != "done":
                    push = await ws.next_push("event")
                    if push["content"]["kind"] == "install":
                        events.append(push["content"])
                phases = [e["phase"] for e in events]
                assert phases[:2] == ["begin", "step"]
                progress = [e for e in events if e["phase"] == "progress"]
                assert progress[-1]["done"] == progress[-1]["total"] == 300_000
                assert all(e["server"] == "f" and e["steps"] == 1 for e in events)
                log = decode_data(await ws.ok("server.log", {"server": "f", "readIndex": 0}))
                assert b"[leosuite] install: done" in log
                refusal = await ws.call("server.install", {"server": "f", "x": 1})
                assert refusal["status_code"] != 0

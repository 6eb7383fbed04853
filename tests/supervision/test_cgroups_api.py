"""Resource limits through the HTTP API of an in-process daemon: who may set what, the
ceilings a HOST meets, the refusal where no cgroup can be made, and a server started
in its limited cgroup and destroyed with it.

The daemon gets a test root of its own (``limits.cgroup_name``) and the test asserts
that nothing of it is left once the daemon has stopped.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from leosuite.supervision.cgroups import detect
from leosuite.supervision.cgroups_v1 import own_paths
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import api_client
from tests.helpers.servers import FAST_DEMO
from tests.helpers.ws import ws_client

MOUNT = Path("/sys/fs/cgroup")
MiB = 1 << 20
_numbers = itertools.count()


def _dirs(name: str) -> list[Path]:
    own = own_paths(Path("/proc/self/cgroup").read_text(encoding="utf-8"))
    controllers = ("memory", "pids", "cpu", "cpuacct")
    return [MOUNT / c / own[c].lstrip("/") / name for c in controllers if c in own]


@pytest.fixture
def cgroup_name() -> Iterator[str]:
    """A fresh test root where cgroups can be made (else the test skips); it must be
    gone at the end."""
    name = f"leosuite-test-{os.getpid()}-api{next(_numbers)}"
    found = detect(name)
    if found.driver is None:
        pytest.skip(f"no cgroup can be made here: {found.reason}")
    found.driver.close()
    yield name
    left = [d for d in _dirs(name) if d.exists()]
    for directory in left:
        for group in sorted(directory.iterdir()):
            if group.is_dir():
                group.rmdir()
        directory.rmdir()
    assert not left, f"cgroups left behind: {left}"


async def test_a_host_sets_limits_up_to_the_ceilings_and_the_server_runs_in_them(
    tmp_path: Path, cgroup_name: str
) -> None:
    limits: dict[str, Any] = {
        "enabled": "on",
        "cgroup_name": cgroup_name,
        "max_memory_mb": 256,
        "max_pids": 50,
    }
    settings = make_settings(tmp_path / "data", limits=limits)
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "host", "HOST")
            async with api_client(daemon, "host") as host, api_client(daemon) as admin:
                options = await host.ok("server_create_options", {"type": "demo-game"})
                memory = next(v for v in options["variables"] if v["name"] == "memory_mb")
                assert memory["max"] == 256
                assert memory["ceiling"] == 256
                assert "Ceiling for non-ADMIN owners: 256." in memory["description"]
                shown = await admin.ok("server_create_options", {"type": "demo-game"})
                memory = next(v for v in shown["variables"] if v["name"] == "memory_mb")
                assert memory["max"] > 256  # an ADMIN's form is not held to it

                body = {"server": "w", "type": "demo-game", "settings": {**FAST_DEMO}}
                body["settings"]["memory_mb"] = 512
                refused = await host.error("server_create", body, 403)
                assert "at most 256 (limits.max_memory_mb)" in refused["error_message"]
                for hostile in (-1, "64", True, 1.5, None):
                    body["settings"]["memory_mb"] = hostile
                    await host.error("server_create", body, 400)
                body["settings"]["memory_mb"] = 2**40
                await host.error("server_create", body, 403)  # over the ceiling first
                await admin.error("server_create", body, 400)  # over the type's maximum
                await host.create("w", "demo-game", {**FAST_DEMO, "memory_mb": 128, "pids_max": 40})

                change = {"server": "w", "set": {"pids_max": 51}}
                refused = await host.error("server_settings", change, 403)
                assert "limits.max_pids" in refused["error_message"]
                await host.ok("server_settings", {"server": "w", "set": {"pids_max": 30}})
                async with ws_client(daemon) as ws:  # the WebSocket API: the same rules
                    await ws.login("host", PASSWORD)
                    answer = await ws.call("server.settings", change)
                    assert answer["status_code"] != 0
                    assert "limits.max_pids" in answer["status_string"]
                    await ws.ok("server.settings", {"server": "w", "set": {"pids_max": 30}})
                await admin.ok("server_settings", {"server": "w", "set": {"memory_mb": 1024}})
                # the ADMIN's value stays; the HOST may change the rest
                await host.ok("server_settings", {"server": "w", "set": {"cpu_percent": 50}})

                await host.ok("server_start", {"server": "w"})
                await host.wait_log("w", b"Server ready")
                memory_dir, pids_dir, cpu_dir = _dirs(cgroup_name)[:3]
                limit = (memory_dir / "w" / "memory.limit_in_bytes").read_text()
                assert int(limit) == 1024 * MiB
                assert (pids_dir / "w" / "pids.max").read_text().strip() == "30"
                assert int((cpu_dir / "w" / "cpu.cfs_quota_us").read_text()) == 50_000
                pid = (await host.status("w"))["pid"]
                procs = (pids_dir / "w" / "cgroup.procs").read_text().split()
                assert str(pid) in procs

                await host.ok("server_stop", {"server": "w"})
                await host.ok("server_destroy", {"server": "w"})
                assert not (memory_dir / "w").exists()


async def test_limits_are_refused_with_the_how_to_where_no_cgroup_can_be_made(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "no-cgroups"
    empty.mkdir()
    limits = {"enabled": "auto", "cgroup_mount": str(empty)}
    settings = make_settings(tmp_path / "data", limits=limits)
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            options = await admin.ok("server_create_options", {"type": "demo-game"})
            memory = next(v for v in options["variables"] if v["name"] == "memory_mb")
            assert "Not available here" in memory["description"]
            body = {"server": "w", "type": "demo-game", "settings": {**FAST_DEMO, "memory_mb": 64}}
            refused = await admin.error("server_create", body, 400)
            assert "Delegate=yes" in refused["error_message"]
            assert "cgroup v1" in refused["error_message"]
            # everything else works as before
            await admin.create("w", "demo-game", {**FAST_DEMO, "memory_mb": 0})
            await admin.ok("server_start", {"server": "w"})
            await admin.wait_log("w", b"Server ready")
            change = {"server": "w", "set": {"pids_max": 10}}
            refused = await admin.error("server_settings", change, 400)
            assert "Delegate=yes" in refused["error_message"]
            await admin.ok("server_stop", {"server": "w"})

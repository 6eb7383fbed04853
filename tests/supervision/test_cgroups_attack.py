"""Hostile use of resource limits: values past the ceilings by a non-ADMIN through every
way a setting is given, hostile numbers, a demoted ADMIN, grantees with each single
right, and server names that are names of the cgroup filesystem's own files.

Each test that makes cgroups gets a fresh root (``limits.cgroup_name``) and asserts that
nothing of it is left afterwards; it skips where no cgroup can be made here.
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
from leosuite.supervision.cgroups_v1 import check_key, dir_name, key_of, own_paths
from leosuite.supervision.type_files import TypeLoadError, load_type_file
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, make_settings, running_daemon
from tests.helpers.http import Api, api_client
from tests.helpers.servers import FAST_DEMO
from tests.helpers.ws import ws_client

MOUNT = Path("/sys/fs/cgroup")
MiB = 1 << 20
RIGHTS = ("console", "commands", "power", "files", "settings")
_numbers = itertools.count()


def _dirs(name: str) -> list[Path]:
    own = own_paths(Path("/proc/self/cgroup").read_text(encoding="utf-8"))
    controllers = ("memory", "pids", "cpu", "cpuacct")
    return [MOUNT / c / own[c].lstrip("/") / name for c in controllers if c in own]


@pytest.fixture
def cgroup_name() -> Iterator[str]:
    name = f"leosuite-test-{os.getpid()}-attack{next(_numbers)}"
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


def test_hostile_keys_are_refused_and_file_names_are_moved() -> None:
    for hostile in ("..", "../x", "a/b", "", ".", "x" * 65, "A", "a\n", "tasks.server", "a b"):
        with pytest.raises(ValueError, match="not a cgroup key"):
            dir_name(hostile)
    assert dir_name("tasks") == "tasks.server"
    assert dir_name("notify_on_release") == "notify_on_release.server"
    assert dir_name("daemon") == "daemon"
    for key in ("tasks", "notify_on_release", "release_agent", "w", "daemon", "a-b_c"):
        assert key_of(dir_name(key)) == key
        assert check_key(key) == key
    for name in ("w.server", "cgroup.procs", "tasks.server.server", "..", "memory.max"):
        assert key_of(name) is None


def test_groups_of_servers_named_as_cgroup_files(cgroup_name: str) -> None:
    """On cgroup v1 ``tasks`` and ``notify_on_release`` are files of every group: servers
    of those names still get groups of their own, found, listed and removed again."""
    found = detect(cgroup_name)
    driver = found.driver
    assert driver is not None
    try:
        for key in ("tasks", "notify_on_release", "daemon"):
            group = driver.create(key)
            group.set_limits(64 * MiB, 50, 20)
            assert driver.find(key) is not None
            assert group.pids() == []
        assert driver.keys() == ["daemon", "notify_on_release", "tasks"]
    finally:
        driver.close()
    assert driver.keys() == []


@pytest.mark.parametrize("name", ["memory_mb", "cpu_percent", "pids_max"])
def test_a_type_file_cannot_declare_a_limit_of_its_own(tmp_path: Path, name: str) -> None:
    """A type's own variable of a limit's name (with a default past any ceiling) would
    give every server of it that limit unchecked: the file is refused."""
    path = tmp_path / "greedy.toml"
    path.write_text(
        'command = ["sleep", "1"]\n'
        f'[[variables]]\nname = "{name}"\ntype = "int"\ndefault = 999999\n'
    )
    with pytest.raises(TypeLoadError, match="duplicate or reserved"):
        load_type_file(path)


async def _put_account(daemon: RunningDaemon, account_id: int, body: dict[str, Any]) -> None:
    async with daemon.admin(auth=("admin", ADMIN_PASSWORD)) as client:
        response = await client.put(f"/accounts/{account_id}", json=body)
        assert response.status_code == 200, response.text


def _limits(cgroup_name: str) -> dict[str, Any]:
    return {
        "enabled": "on",
        "cgroup_name": cgroup_name,
        "max_memory_mb": 256,
        "max_cpu_percent": 100,
        "max_pids": 50,
    }


def _create(name: str, **settings: Any) -> dict[str, Any]:
    return {"server": name, "type": "demo-game", "settings": {**FAST_DEMO, **settings}}


async def test_values_past_the_ceilings_by_a_host_every_way(
    tmp_path: Path, cgroup_name: str
) -> None:
    settings = make_settings(tmp_path / "data", limits=_limits(cgroup_name))
    with trio.fail_after(90):
        async with running_daemon(settings) as daemon:
            await add_account(daemon, "host", "HOST")
            async with api_client(daemon, "host") as host, ws_client(daemon) as ws:
                await ws.login("host", PASSWORD)
                for key, over in (("memory_mb", 257), ("cpu_percent", 101), ("pids_max", 51)):
                    refused = await host.error("server_create", _create("w", **{key: over}), 403)
                    assert "unless set by an ADMIN" in refused["error_message"]
                    answer = await ws.call("server.create", _create("w", **{key: over}))
                    assert answer["status_code"] == 2, answer
                hostile: list[Any] = [-1, -(2**63), 2**22 + 1, 2**64, 1.5, "64", True, None, [], {}]
                for key in ("memory_mb", "cpu_percent", "pids_max"):
                    for value in hostile:
                        response = await host.post("server_create", _create("w", **{key: value}))
                        assert response.status_code in (400, 403), (key, value, response.text)
                assert (await host.ok("server_list"))["servers"] == []
                await host.create("w", "demo-game", {**FAST_DEMO, "pids_max": 50})
                for key, over in (("memory_mb", 257), ("cpu_percent", 101), ("pids_max", 51)):
                    change = {"server": "w", "set": {key: over}}
                    await host.error("server_settings", change, 403)
                    answer = await ws.call("server.settings", change)
                    assert answer["status_code"] == 2, answer
                    for value in hostile:
                        change = {"server": "w", "set": {key: value}}
                        response = await host.post("server_settings", change)
                        assert response.status_code in (400, 403), (key, value, response.text)
                values = {
                    item["name"]: item["value"]
                    for item in await host.ok("server_settings", {"server": "w"})
                }
                assert (values["memory_mb"], values["cpu_percent"], values["pids_max"]) == (
                    0,
                    0,
                    50,
                )


async def test_a_demoted_admin_and_grantees_meet_the_ceilings(
    tmp_path: Path, cgroup_name: str
) -> None:
    settings = make_settings(tmp_path / "data", limits=_limits(cgroup_name))
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon:
            boss = await add_account(daemon, "boss", "ADMIN", "HOST")
            for right in RIGHTS:
                await add_account(daemon, f"u-{right}", "HOST")
            async with api_client(daemon, "boss") as boss_api:
                await boss_api.create("big", "demo-game", {**FAST_DEMO, "memory_mb": 1024})
                for right in RIGHTS:
                    share = {"server": "big", "account": f"u-{right}", "rights": [right]}
                    await boss_api.ok("server_share_set", share)
            await _put_account(daemon, boss, {"admin": False})  # its tokens end
            async with api_client(daemon, "boss") as boss_api:
                change: dict[str, Any] = {"server": "big", "set": {"memory_mb": 512}}
                await boss_api.error("server_settings", change, 403)
                # the ADMIN's value stays, and the owner may change the rest
                await boss_api.ok("server_settings", {"server": "big", "set": {"memory_mb": 1024}})
                await boss_api.ok("server_settings", {"server": "big", "set": {"pids_max": 40}})
                await boss_api.ok("server_settings", {"server": "big", "set": {"memory_mb": 0}})
                back = {"server": "big", "set": {"memory_mb": 1024}}
                await boss_api.error("server_settings", back, 403)  # gone once lowered
                await boss_api.error("server_create", _create("big2", memory_mb=1024), 403)
            for right in RIGHTS:
                async with api_client(daemon, f"u-{right}") as user:
                    over = {"server": "big", "set": {"pids_max": 51}}
                    within = {"server": "big", "set": {"pids_max": 30}}
                    await user.error("server_settings", over, 403)
                    if right == "settings":
                        await user.ok("server_settings", within)
                    else:
                        await user.error("server_settings", within, 403)
            async with api_client(daemon) as admin:
                # its owner deleted: the grantee is still held to the ceilings
                async with daemon.admin(auth=("admin", ADMIN_PASSWORD)) as admin_api:
                    deleted = await admin_api.delete(f"/accounts/{boss}")
                    assert deleted.status_code in (200, 204), deleted.text
                async with api_client(daemon, "u-settings") as user:
                    over = {"server": "big", "set": {"memory_mb": 300}}
                    await user.error("server_settings", over, 403)
                await admin.ok("server_settings", {"server": "big", "set": {"memory_mb": 4096}})
                values = {
                    item["name"]: item["value"]
                    for item in await admin.ok("server_settings", {"server": "big"})
                }
                assert (values["memory_mb"], values["pids_max"]) == (4096, 30)
                await admin.ok("server_destroy", {"server": "big"})


async def _start_and_read(api: Api, name: str, memory_dir: Path) -> str:
    await api.ok("server_start", {"server": name})
    await api.wait_log(name, b"Server ready")
    pid = (await api.status(name))["pid"]
    group = memory_dir / dir_name(name)
    assert str(pid) in (group / "cgroup.procs").read_text().split()
    return (group / "memory.limit_in_bytes").read_text().strip()


async def test_servers_named_as_cgroup_files_run_in_their_limits(
    tmp_path: Path, cgroup_name: str
) -> None:
    settings = make_settings(tmp_path / "data", limits=_limits(cgroup_name))
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            memory_dir = _dirs(cgroup_name)[0]
            for name in ("tasks", "notify_on_release"):
                await admin.create(name, "demo-game", {**FAST_DEMO, "memory_mb": 200})
                assert await _start_and_read(admin, name, memory_dir) == str(200 * MiB)
                assert (memory_dir / "tasks").is_file()  # the controller's own file, untouched
                await admin.ok("server_stop", {"server": name})
                await admin.ok("server_destroy", {"server": name})
                assert not (memory_dir / dir_name(name)).exists()

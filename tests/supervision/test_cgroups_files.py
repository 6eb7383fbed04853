"""The cgroup drivers' file logic on plain directory trees, and the limits' rules.

cgroup v2 cannot run on the machine these tests run on (it has cgroup v1 controllers
only), so the v2 driver is tested here against a FAKE directory tree, for what it
writes and reads only: no kernel enforces anything in these tests. The real limits
are tested with real processes in ``test_cgroups.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leosuite.errors import StartupError
from leosuite.settings import LimitsSettings
from leosuite.supervision.cgroups import (
    HOW_TO_ENABLE,
    detect,
    kill_listed,
    read_pids,
    read_text,
)
from leosuite.supervision.cgroups_limits import Limits, ServerLimits, open_limits
from leosuite.supervision.cgroups_v2 import open_driver

MiB = 1 << 20


def fake_v2(tmp_path: Path, *, controllers: str = "cpuset cpu io memory pids") -> Path:
    """A cgroup2 mount with the daemon's cgroup ``/system.slice/leosuite.service``."""
    mount = tmp_path / "cgroup"
    base = mount / "system.slice" / "leosuite.service"
    base.mkdir(parents=True)
    (mount / "cgroup.controllers").write_text(controllers + "\n")
    (base / "cgroup.controllers").write_text(controllers + "\n")
    (base / "cgroup.subtree_control").write_text("")
    (base / "cgroup.procs").write_text(f"{os.getpid()}\n")
    return mount


MEMBERSHIP = "0::/system.slice/leosuite.service\n"


def test_v2_moves_the_daemon_to_a_leaf_and_enables_the_controllers(tmp_path: Path) -> None:
    mount = fake_v2(tmp_path)
    base = mount / "system.slice" / "leosuite.service"
    driver, why = open_driver(mount, MEMBERSHIP, "leosuite")
    assert driver is not None, why
    assert driver.version == 2
    assert driver.root == str(base / "leosuite")
    assert (base / "daemon" / "cgroup.procs").read_text() == str(os.getpid())
    assert (base / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert (base / "leosuite" / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"


def test_v2_already_in_its_leaf_finds_the_same_root(tmp_path: Path) -> None:
    mount = fake_v2(tmp_path)
    base = mount / "system.slice" / "leosuite.service"
    (base / "daemon").mkdir()
    (base / "cgroup.subtree_control").write_text("memory pids cpu")
    driver, _ = open_driver(mount, "0::/system.slice/leosuite.service/daemon\n", "leosuite")
    assert driver is not None
    assert driver.root == str(base / "leosuite")
    assert not (base / "daemon" / "cgroup.procs").exists()  # no move: it is there already


def test_v2_group_limits_kill_stats_and_oom_files(tmp_path: Path) -> None:
    driver, _ = open_driver(fake_v2(tmp_path), MEMBERSHIP, "leosuite")
    assert driver is not None
    group = driver.create("world1")
    directory = Path(group.path)
    (directory / "memory.swap.max").write_text("max")
    group.set_limits(64 * MiB, 150, 20)
    assert (directory / "memory.max").read_text() == str(64 * MiB)
    assert (directory / "memory.swap.max").read_text() == "0"
    assert (directory / "cpu.max").read_text() == "150000 100000"
    assert (directory / "pids.max").read_text() == "20"
    group.set_limits(None, None, None)
    assert (directory / "memory.max").read_text() == "max"
    assert (directory / "cpu.max").read_text() == "max 100000"
    assert (directory / "pids.max").read_text() == "max"
    (directory / "memory.current").write_text(f"{10 * MiB}\n")
    (directory / "memory.stat").write_text(f"anon 1\ninactive_file {MiB}\n")
    (directory / "memory.peak").write_text(f"{20 * MiB}\n")
    (directory / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 1\n")
    (directory / "pids.current").write_text("3\n")
    (directory / "cgroup.procs").write_text("")
    stats = group.stats()
    assert stats.memory_bytes == 9 * MiB
    assert stats.memory_peak_bytes == 20 * MiB
    assert stats.cpu_seconds == 2.5
    assert stats.tasks == 3
    assert stats.processes == 0
    (directory / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n")
    assert group.oom_kills() == 2
    assert group.oom_killed(since=1)
    assert not group.oom_killed(since=2)
    (directory / "cgroup.kill").write_text("")
    assert group.kill() == 0  # nothing listed: nothing written
    assert (directory / "cgroup.kill").read_text() == ""
    assert driver.find("world1") is not None
    assert driver.find("world2") is None
    assert driver.keys() == ["world1"]


@pytest.mark.parametrize(
    ("controllers", "expected"),
    [("cpu io", "no memory/pids controller"), ("", "no memory/pids/cpu controller")],
)
def test_v2_refuses_a_subtree_without_the_controllers(
    tmp_path: Path, controllers: str, expected: str
) -> None:
    driver, why = open_driver(fake_v2(tmp_path, controllers=controllers), MEMBERSHIP, "leosuite")
    assert driver is None
    assert expected in why


def test_keys_are_server_names_only(tmp_path: Path) -> None:
    driver, _ = open_driver(fake_v2(tmp_path), MEMBERSHIP, "leosuite")
    assert driver is not None
    for hostile in ("..", "../x", "a/b", "", ".", "cgroup.procs", "-x", "A"):
        with pytest.raises(ValueError, match="not a cgroup key"):
            driver.create(hostile)
    with pytest.raises(ValueError, match="not a cgroup key"):
        open_driver(tmp_path, MEMBERSHIP, "../escape")


def test_an_empty_directory_has_no_cgroups_and_says_how_to_enable_them(tmp_path: Path) -> None:
    found = detect("leosuite", mount=str(tmp_path))
    assert found.driver is None
    assert found.reason.startswith(HOW_TO_ENABLE)
    assert "Delegate=yes" in found.reason


def test_limits_on_without_cgroups_stop_start_up(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="Delegate=yes"):
        open_limits(LimitsSettings(enabled="on", cgroup_mount=str(tmp_path)))
    auto = open_limits(LimitsSettings(enabled="auto", cgroup_mount=str(tmp_path)))
    assert not auto.available
    assert "Delegate=yes" in auto.reason
    off = open_limits(LimitsSettings(enabled="off"))
    assert not off.available
    assert "limits.enabled is off" in off.reason


def test_kill_listed_kills_every_live_process_listed(tmp_path: Path) -> None:
    """A real sleeper listed in a plain file: it gets SIGKILL; once it is a zombie it is
    not listed as live any more, and the kill stops."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        procs = tmp_path / "cgroup.procs"
        procs.write_text(f"{sleeper.pid}\n999999999\n")
        assert read_pids(procs) == [sleeper.pid]
        assert kill_listed(procs, rounds=50, sleep=lambda _: time.sleep(0.02)) == 1
        assert sleeper.wait(timeout=10) == -signal.SIGKILL
    finally:
        sleeper.kill()
        sleeper.wait()


def test_resolve_refusal_and_ceilings_shown() -> None:
    settings = LimitsSettings(
        max_memory_mb=1024, max_pids=100, default_memory_mb=512, default_cpu_percent=200
    )
    unavailable = ServerLimits(settings, None, HOW_TO_ENABLE)
    assert unavailable.resolve({"memory_mb": 64}) == Limits()
    refused = unavailable.refusal({"memory_mb": 64}, {}, admin=True)
    assert refused is not None
    assert refused[0] == "memory_mb"
    assert "Delegate=yes" in refused[1]
    assert not refused[2]
    assert unavailable.refusal({"memory_mb": 0, "pids_max": 0}, {}, admin=False) is None

    class Driver:  # stands for a driver: refusal and resolve never call it
        version = 1

    limits = ServerLimits(settings, Driver())  # type: ignore[arg-type]
    assert limits.resolve({}) == Limits(512, 200, 0)
    assert limits.resolve({"memory_mb": 64, "pids_max": 10}) == Limits(64, 200, 10)
    assert limits.refusal({"memory_mb": 1024}, {}, admin=False) is None
    above = limits.refusal({"memory_mb": 1025}, {}, admin=False)
    assert above is not None
    assert above[2]
    assert "at most 1024 (limits.max_memory_mb)" in above[1]
    assert limits.refusal({"memory_mb": 4096}, {}, admin=True) is None
    assert limits.refusal({"memory_mb": 4096}, {"memory_mb": 4096}, admin=False) is None
    assert limits.refusal({"cpu_percent": 10_000}, {}, admin=False) is None  # no ceiling
    items: list[dict[str, object]] = [
        {"name": "memory_mb", "description": "Memory", "max": 2**22},
        {"name": "cpu_percent", "description": "CPU"},
    ]
    limits.annotate(items, admin=False)
    assert items[0]["max"] == 1024
    assert items[0]["ceiling"] == 1024
    assert "Ceiling for non-ADMIN owners: 1024." in str(items[0]["description"])
    assert items[1]["ceiling"] == 0
    admin_items: list[dict[str, object]] = [{"name": "memory_mb", "max": 2**22}]
    limits.annotate(admin_items, admin=True)
    assert admin_items[0]["max"] == 2**22


def test_kernel_files_are_read_whole(tmp_path: Path) -> None:
    """A long ``cgroup.procs`` (more than one read's worth) is read to its end."""
    procs = tmp_path / "cgroup.procs"
    pids = list(range(100_000, 120_000))
    procs.write_text("".join(f"{pid}\n" for pid in pids))
    assert len(procs.read_bytes()) > 65536
    assert read_text(procs).split() == [str(pid) for pid in pids]
    procs.write_text("")
    assert read_text(procs) == ""
    assert read_pids(procs) == []

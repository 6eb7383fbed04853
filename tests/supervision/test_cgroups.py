"""Servers in cgroups, with real processes and the machine's real cgroup controllers.

Every test makes its own root (``leosuite-test-<pid>-<n>``, the ``limits.cgroup_name``
setting) and the ``limits`` fixture asserts that nothing of it is left afterwards; a
test skips with the reason where no cgroup can be made here.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import pytest
import trio

from leosuite.errors import ProcessError
from leosuite.settings import LimitsSettings
from leosuite.supervision.cgroups import JOIN_FAILED, detect, read_pids
from leosuite.supervision.cgroups_limits import ServerLimits
from leosuite.supervision.cgroups_v1 import own_paths
from leosuite.supervision.console_file import ConsoleFile
from leosuite.supervision.fleet import Fleet
from leosuite.supervision.handle import ProcessIdentity, boot_id, process_start_time
from leosuite.supervision.process import spawn
from leosuite.supervision.spec import LaunchSpec
from leosuite.supervision.states import State as S
from leosuite.supervision.supervisor import Supervisor
from tests.helpers.servers import make_spec, pid_alive, running_fleet, text

MOUNT = Path("/sys/fs/cgroup")
_numbers = itertools.count()

#: Forks a session leader that forks again and execs a sleeper with an empty
#: environment (no tag: only the cgroup finds it), which writes its pid to argv[1].
GRANDCHILD = (
    "import os, sys, time\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"
    "        code = 'import os, sys, time\\n'\\\n"
    "               'open(sys.argv[1], \"w\").write(str(os.getpid()))\\n'\\\n"
    "               'time.sleep(120)\\n'\n"
    "        os.execve(sys.executable, [sys.executable, '-c', code, sys.argv[1]], {})\n"
    "    os._exit(0)\n"
    "print('launched', flush=True)\n"
    "time.sleep(120)\n"
)

FORK_BOMB = (
    "import os, time\n"
    "made = failed = 0\n"
    "for _ in range(500):\n"
    "    try:\n"
    "        if os.fork() == 0:\n"
    "            time.sleep(60)\n"
    "            os._exit(0)\n"
    "        made += 1\n"
    "    except OSError:\n"
    "        failed += 1\n"
    "print('result:', made, failed, flush=True)\n"
    "time.sleep(60)\n"
)


def _test_dirs(name: str) -> list[Path]:
    own = own_paths(Path("/proc/self/cgroup").read_text(encoding="utf-8"))
    controllers = ("memory", "pids", "cpu", "cpuacct")
    return [MOUNT / c / own[c].lstrip("/") / name for c in controllers if c in own]


def _tear_down(root: Path) -> None:
    """What a failed test left: its processes killed, its directories removed."""
    for group in [p for p in root.iterdir() if p.is_dir()]:
        for pid in read_pids(group / "cgroup.procs"):
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        with suppress(OSError):
            group.rmdir()
    with suppress(OSError):
        root.rmdir()


@pytest.fixture
def limits() -> Iterator[ServerLimits]:
    """Limits on a fresh test root; the root must be gone at the end."""
    name = f"leosuite-test-{os.getpid()}-{next(_numbers)}"
    found = detect(name)
    if found.driver is None:
        pytest.skip(f"no cgroup can be made here: {found.reason}")
    try:
        yield ServerLimits(LimitsSettings(cgroup_name=name), found.driver)
    finally:
        left = [d for d in _test_dirs(name) if d.exists()]
        for directory in left:
            _tear_down(directory)
        assert not left, f"cgroups left behind: {left}"


@asynccontextmanager
async def server(
    fleet: Fleet, consoles: list[ConsoleFile], tmp_path: Path, spec: LaunchSpec
) -> AsyncIterator[tuple[Supervisor, ConsoleFile]]:
    """The server ``srv`` in ``fleet``; destroyed (its cgroup removed) at the end."""
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    console = ConsoleFile(logs, retention_bytes=1 << 20)
    consoles.append(console)
    sup = await fleet.add("srv", spec, console)
    try:
        yield sup, console
    finally:
        with trio.CancelScope(shield=True), trio.fail_after(20):
            await fleet.remove("srv")


async def _wait_text(console: ConsoleFile, needle: str) -> str:
    while needle not in (seen := text(console)):
        await trio.sleep(0.05)
    return seen


async def _wait_pid_file(path: Path) -> int:
    while not path.exists() or not path.read_text():
        await trio.sleep(0.05)
    return int(path.read_text())


def _group_file(limits: ServerLimits, controller: str, name: str) -> Path:
    assert limits.settings is not None
    return (
        _test_dirs(limits.settings.cgroup_name)[
            ("memory", "pids", "cpu", "cpuacct").index(controller)
        ]
        / "srv"
        / name
    )


async def test_a_server_over_its_memory_limit_is_shown_killed_out_of_memory(
    tmp_path: Path, limits: ServerLimits
) -> None:
    spec = make_spec(tmp_path, "-c", "x = b'x' * (300 << 20)\nprint('sur' + 'vived')", memory_mb=64)
    with trio.fail_after(60):
        async with (
            running_fleet(limits=limits) as (fleet, consoles),
            server(fleet, consoles, tmp_path, spec) as (sup, console),
        ):
            await sup.request("start")
            await sup.wait_state(S.CRASHED)
            reason = "killed: out of memory (limit 64 MiB)"
            assert sup.status().last_error == reason
            assert reason in text(console)
            assert "survived" not in text(console)


async def test_a_fork_bomb_stops_at_its_pids_limit_and_everything_is_killed(
    tmp_path: Path, limits: ServerLimits
) -> None:
    spec = make_spec(tmp_path, "-c", FORK_BOMB, pids_max=20)
    with trio.fail_after(60):
        async with (
            running_fleet(limits=limits) as (fleet, consoles),
            server(fleet, consoles, tmp_path, spec) as (sup, console),
        ):
            await sup.request("start")
            seen = await _wait_text(console, "result: ")
            made, failed = (int(w) for w in seen.split("result: ")[-1].split()[:2])
            assert made < 20
            assert failed > 480
            group = sup.cgroup
            assert group is not None
            pids = group.pids()
            assert 1 < len(pids) <= 20
            assert await sup.request("stop") is S.STOPPED
            assert not any(pid_alive(pid) for pid in pids)
            assert group.pids() == []
            # the daemon's side goes on as before: the server starts again
            await sup.request("start")
            await _wait_text(console, "result: ")
            assert await sup.request("kill") is S.STOPPED


@pytest.mark.parametrize("action", ["stop", "force_kill"])
async def test_a_setsid_grandchild_dies_with_its_server(
    tmp_path: Path, limits: ServerLimits, action: str
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    spec = make_spec(tmp_path, "-c", GRANDCHILD, str(pid_file))
    with trio.fail_after(60):
        async with (
            running_fleet(limits=limits) as (fleet, consoles),
            server(fleet, consoles, tmp_path, spec) as (sup, console),
        ):
            await sup.request("start")
            grandchild = await _wait_pid_file(pid_file)
            assert os.getsid(grandchild) != sup.status().pid
            assert await sup.request(action) is S.STOPPED  # type: ignore[arg-type]
            assert not pid_alive(grandchild)
            if action == "stop":  # the leader ended first: the rest was swept
                assert "left in the server's cgroup" in text(console)


async def test_the_cpu_limit_is_written_as_a_cfs_quota(
    tmp_path: Path, limits: ServerLimits
) -> None:
    spec = make_spec(tmp_path, "-c", "import time; time.sleep(60)", cpu_percent=50)
    with trio.fail_after(30):
        async with (
            running_fleet(limits=limits) as (fleet, consoles),
            server(fleet, consoles, tmp_path, spec) as (sup, _),
        ):
            await sup.request("start")
            quota = _group_file(limits, "cpu", "cpu.cfs_quota_us").read_text()
            period = _group_file(limits, "cpu", "cpu.cfs_period_us").read_text()
            assert (int(quota), int(period)) == (50_000, 100_000)
            assert await sup.request("stop") is S.STOPPED


async def test_stats_count_the_memory_of_a_forked_child(
    tmp_path: Path, limits: ServerLimits
) -> None:
    script = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"  # another process group: only the cgroup sees it
        "    x = b'x' * (100 << 20)\n"
        "    print('alloc' + 'ated', flush=True)\n"
        "    time.sleep(60)\n"
        "time.sleep(60)\n"
    )
    spec = make_spec(tmp_path, "-c", script)
    with trio.fail_after(30):
        async with (
            running_fleet(limits=limits) as (fleet, consoles),
            server(fleet, consoles, tmp_path, spec) as (sup, console),
        ):
            await sup.request("start")
            await _wait_text(console, "allocated")
            await fleet.sample_stats_once()
            status = sup.status()
            assert status.memory is not None
            assert status.memory >= 100 << 20
            # Nobody watching: the one /proc pass, which sees the process group only.
            await fleet.sample_stats_once(cgroups=False)
            status = sup.status()
            assert status.memory is not None
            assert status.memory < 100 << 20
            assert await sup.request("stop") is S.STOPPED


async def test_a_readopted_server_is_found_in_its_cgroup(
    tmp_path: Path, limits: ServerLimits
) -> None:
    """The daemon let the server run on; the next one finds its group, and its kill
    reaches the grandchild no tag names."""
    pid_file = tmp_path / "grandchild.pid"
    spec = make_spec(tmp_path, "-c", GRANDCHILD, str(pid_file), pids_max=50)
    logs = tmp_path / "logs"
    logs.mkdir()
    leader = 0
    try:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                first = await nursery.start(Fleet(limits=limits).run)
                console = ConsoleFile(logs, retention_bytes=1 << 20)
                try:
                    sup = await first.add("srv", spec, console)
                    await sup.request("start")
                    grandchild = await _wait_pid_file(pid_file)
                    leader = sup.status().pid or 0
                    await first.leave()
                finally:
                    console.close()
                nursery.cancel_scope.cancel()
            assert pid_alive(leader)
            assert pid_alive(grandchild)
            start_time = process_start_time(leader)
            assert start_time is not None
            async with (
                running_fleet(limits=limits) as (fleet, consoles),
                server(fleet, consoles, tmp_path, spec) as (sup, _),
            ):
                identity = ProcessIdentity(pid=leader, start_time=start_time, boot_id=boot_id())
                assert await sup.adopt(identity, time.time())
                assert sup.cgroup is not None
                assert leader in sup.cgroup.pids()
                assert grandchild in sup.cgroup.pids()
                await fleet.sample_stats_once()
                assert sup.status().memory
                assert await sup.request("force_kill") is S.STOPPED
                assert not pid_alive(grandchild)
    finally:
        with suppress(OSError):
            os.killpg(leader, signal.SIGKILL)


def test_a_spawn_that_cannot_join_its_group_does_not_run(
    tmp_path: Path, limits: ServerLimits
) -> None:
    """The group is gone between its set-up and the spawn: the child never runs."""
    assert limits.driver is not None
    group = limits.driver.create("srv")
    fds = group.open_procs()
    group.remove()
    marker = tmp_path / "ran"
    try:
        import subprocess

        from leosuite.supervision.cgroups import join_preexec

        with pytest.raises(subprocess.SubprocessError):
            subprocess.Popen(
                [sys.executable, "-c", f"open({str(marker)!r}, 'w')"],
                preexec_fn=join_preexec(fds),
            )
    finally:
        for fd in fds:
            os.close(fd)
        limits.close()
    assert not marker.exists()


def _in_group(pid: int, group_dirs: list[Path]) -> bool:
    """``pid``'s cgroups (``/proc/<pid>/cgroup``) are the given directories."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    member = {line.split(":", 2)[2] for line in lines}
    return all(
        any(str(directory).endswith(path) and path != "/" for path in member)
        for directory in group_dirs
    )


async def test_a_spawn_joins_its_group_in_a_shell_before_the_program_runs(
    tmp_path: Path, limits: ServerLimits
) -> None:
    """Without a user switch the daemon spawns without a ``preexec_fn`` (no copy of
    itself): a shell joins the cgroup and becomes the program, under the same pid."""
    assert limits.driver is not None
    group = limits.driver.create("srv")
    out = tmp_path / "out"
    code = "import os, sys; open(sys.argv[1], 'w').write(f'{os.getpid()} {sys.argv[0]}')"
    spec = make_spec(tmp_path, "-c", code, str(out))
    stdin_r, stdin_w = os.pipe()
    try:
        with open(tmp_path / "console", "wb") as console:
            popen = await spawn(spec, stdin_fd=stdin_r, output_fd=console.fileno(), group=group)
        assert popen.wait(30) == 0
        pid, argv0 = out.read_text().split(" ", 1)
        assert int(pid) == popen.pid  # the shell became the program
        assert argv0 == "-c"
        assert isinstance(popen.args, list)
        assert popen.args[:2] == ["/bin/sh", "-c"]
        directories = [path.parent for path in group.procs_paths()]
        probe = await spawn(
            make_spec(tmp_path, "-c", "import time; time.sleep(30)"),
            stdin_fd=stdin_r,
            output_fd=stdin_w,
            group=group,
        )
        try:
            with trio.fail_after(10):
                while "python" not in Path(f"/proc/{probe.pid}/comm").read_text():
                    await trio.sleep(0.01)
            assert _in_group(probe.pid, directories)
            assert probe.pid in group.pids()
        finally:
            probe.kill()
            probe.wait()
    finally:
        os.close(stdin_r)
        os.close(stdin_w)
        group.remove()
        limits.close()


async def test_a_spawn_through_the_shell_that_cannot_join_does_not_run(
    tmp_path: Path, limits: ServerLimits
) -> None:
    """The group is gone between its set-up and the spawn: the shell says so on the
    console and exits JOIN_FAILED; the program never runs."""
    assert limits.driver is not None
    group = limits.driver.create("srv")
    group.remove()
    marker = tmp_path / "ran"
    spec = make_spec(tmp_path, "-c", f"open({str(marker)!r}, 'w')")
    stdin_r, stdin_w = os.pipe()
    try:
        with open(tmp_path / "console", "wb") as console:
            popen = await spawn(spec, stdin_fd=stdin_r, output_fd=console.fileno(), group=group)
        assert popen.wait(30) == JOIN_FAILED
    finally:
        os.close(stdin_r)
        os.close(stdin_w)
        limits.close()
    assert not marker.exists()
    assert "leosuite: cannot join the server's cgroup" in (tmp_path / "console").read_text()


async def test_a_missing_or_unrunnable_program_in_a_group_is_refused_at_spawn(
    tmp_path: Path, limits: ServerLimits
) -> None:
    """The shell would only exit 127 or 126: the spawn checks the program first, so
    the start fails with the same error as without a group."""
    assert limits.driver is not None
    group = limits.driver.create("srv")
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    stdin_r, stdin_w = os.pipe()
    try:
        cases = [
            ("no-such-program-here", "command not found: no-such-program-here"),
            ("./not-executable.sh", "permission denied: ./not-executable.sh"),
            ("./missing.sh", "command not found: ./missing.sh"),
        ]
        for program, message in cases:
            spec = LaunchSpec(argv=[program], cwd=str(tmp_path), restart="never")
            with pytest.raises(ProcessError) as caught:
                await spawn(spec, stdin_fd=stdin_r, output_fd=stdin_w, group=group)
            assert caught.value.message == message
    finally:
        os.close(stdin_r)
        os.close(stdin_w)
        group.remove()
        limits.close()

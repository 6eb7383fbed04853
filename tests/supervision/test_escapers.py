"""Descendants that leave their server's process group: the daemon is their subreaper,
reaps them, and stops them with their server (real processes throughout)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
import trio
import trio.testing

from leosuite.settings import RESERVED_ENV, load_settings
from leosuite.supervision.console_file import ConsoleFile
from leosuite.supervision.escapers import TAG_VARIABLE, Lineage, find_escapers, server_tag
from leosuite.supervision.fleet import Fleet
from leosuite.supervision.handle import ProcessIdentity, boot_id, process_start_time
from leosuite.supervision.reaper import REAPER, is_subreaper
from leosuite.supervision.spec import LaunchSpec
from leosuite.supervision.states import State
from leosuite.supervision.supervisor import Supervisor
from tests.helpers.child_processes import parent_of, spawn_handle
from tests.helpers.servers import make_spec, pid_alive, running_fleet, text

S = State

#: A server whose grandchild leaves the group (``setsid`` or ``setpgid``) and is
#: orphaned at once (its parent exits); prints ``escaper <pid>`` and ``ready``.
ESCAPING = """
import os, signal, sys, time
how = sys.argv[1]
r, w = os.pipe()
middle = os.fork()
if middle == 0:
    os.close(r)
    if os.fork() == 0:
        if how == "setsid":
            os.setsid()
        else:
            os.setpgid(0, 0)
        if "ignore-term" in sys.argv:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.write(w, b"%d\\n" % os.getpid())
        while True:
            time.sleep(3600)
    os._exit(0)
os.close(w)
escaper = int(os.read(r, 64))
os.waitpid(middle, 0)
print(f"escaper {escaper}", flush=True)
print("ready", flush=True)
if "crash" in sys.argv:
    sys.exit(3)
while True:
    time.sleep(3600)
"""

#: Runs until its stdin is closed, then exits 0 (any user may run it).
SLEEPER = ["/bin/cat"]


def escaping_spec(tmp_path: Path, *args: str, **kw: object) -> LaunchSpec:
    path = tmp_path / "escaping.py"
    path.write_text(ESCAPING)
    kw.setdefault("ready_pattern", "ready")
    return make_spec(tmp_path, str(path), *args, **kw)


def new_console(tmp_path: Path, consoles: list[ConsoleFile], name: str = "srv") -> ConsoleFile:
    directory = tmp_path / "logs" / name
    directory.mkdir(parents=True)
    console = ConsoleFile(directory, retention_bytes=1 << 20)
    consoles.append(console)
    return console


async def started(fleet: Fleet, spec: LaunchSpec, console: ConsoleFile) -> tuple[Supervisor, int]:
    """Add server ``srv``, start it, and return it with its escaper's pid."""
    sup = await fleet.add("srv", spec, console)
    await sup.request("start")
    await sup.wait_state(S.RUNNING)
    return sup, escaper_in(text(console))


def escaper_in(output: str) -> int:
    return int(output.split("escaper ", 1)[1].split()[0])


def zombie_children() -> set[int]:
    """This process's children that exited and were not reaped."""
    return {
        child.pid for child in psutil.Process().children() if _status(child) == psutil.STATUS_ZOMBIE
    }


def _status(proc: psutil.Process) -> str | None:
    try:
        return str(proc.status())
    except psutil.NoSuchProcess:
        return None


async def wait_reaped(pid: int) -> None:
    """Until ``pid`` is neither running nor a zombie child of this process (callers
    bound it with fail_after)."""
    while pid_alive(pid) or pid in zombie_children():
        await trio.sleep(0.02)


async def wait_zombie(pid: int) -> None:
    while _status(psutil.Process(pid)) != psutil.STATUS_ZOMBIE:
        await trio.sleep(0.01)


async def environ_ready(pid: int) -> None:
    """Until ``/proc/<pid>/environ`` shows the environment (empty while ``execve`` is
    still setting up the new program)."""
    while not Path(f"/proc/{pid}/environ").read_bytes():
        await trio.sleep(0.01)


@contextmanager
def killed_at_end(*procs: subprocess.Popen[bytes]) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            with suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
            if proc.stdin is not None:
                proc.stdin.close()


# ---------------------------------------------------------------- stopped with their server


@pytest.mark.parametrize("how", ["setsid", "setpgid"])
async def test_escaper_is_stopped_with_its_server(tmp_path: Path, how: str) -> None:
    with trio.fail_after(20):
        async with running_fleet() as (fleet, consoles):
            console = new_console(tmp_path, consoles)
            sup, escaper = await started(fleet, escaping_spec(tmp_path, how), console)
            assert parent_of(escaper) == os.getpid()  # orphaned while the daemon is subreaper
            assert os.getpgid(escaper) != sup.pgid
            tag = f"{TAG_VARIABLE}={server_tag('srv', console.directory)}".encode()
            with open(f"/proc/{escaper}/environ", "rb") as environ:
                assert tag in environ.read().split(b"\0")
            assert await sup.request("stop") is S.STOPPED
            assert not pid_alive(escaper)  # the stop waited for it
            await wait_reaped(escaper)  # and the reaper collected it: no zombie left
            assert f"sending SIGTERM to 1 process(es) that left the process group: {escaper}" in (
                text(console)
            )


async def test_escaper_ignoring_the_stop_signal_is_killed(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_fleet() as (fleet, consoles):
            console = new_console(tmp_path, consoles)
            spec = escaping_spec(tmp_path, "setsid", "ignore-term", stop_timeout=0.3)
            sup, escaper = await started(fleet, spec, console)
            assert await sup.request("stop") is S.STOPPED
            assert not pid_alive(escaper)
            out = text(console)
            assert f"sending SIGTERM to 1 process(es) that left the process group: {escaper}" in out
            assert f"sending SIGKILL to 1 process(es) that left the process group: {escaper}" in out


async def test_force_kill_kills_escapers_without_the_stop_timeout(tmp_path: Path) -> None:
    with trio.fail_after(15):
        async with running_fleet() as (fleet, consoles):
            console = new_console(tmp_path, consoles)
            spec = escaping_spec(tmp_path, "setsid", "ignore-term", stop_timeout=60)
            sup, escaper = await started(fleet, spec, console)
            assert await sup.request("force_kill") is S.STOPPED
            assert not pid_alive(escaper)
            assert "sending SIGTERM" not in text(console)


async def test_a_crashed_server_leaves_no_escaper(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_fleet() as (fleet, consoles):
            console = new_console(tmp_path, consoles)
            sup = await fleet.add("srv", escaping_spec(tmp_path, "setsid", "crash"), console)
            await sup.request("start")
            assert await sup.wait_state(S.CRASHED) is S.CRASHED
            assert sup.status().exit_code == 3
            escaper = escaper_in(text(console))
            assert not pid_alive(escaper)


async def test_fleet_shutdown_stops_escapers(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_fleet() as (fleet, consoles):
            console = new_console(tmp_path, consoles)
            _, escaper = await started(fleet, escaping_spec(tmp_path, "setsid"), console)
            assert pid_alive(escaper)
        assert not pid_alive(escaper)


async def test_orphans_are_reaped_while_their_server_runs(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_fleet() as (fleet, consoles):
            console = new_console(tmp_path, consoles)
            sup, escaper = await started(fleet, escaping_spec(tmp_path, "setsid"), console)
            os.kill(escaper, signal.SIGKILL)
            await wait_reaped(escaper)
            assert sup.state is S.RUNNING


# ---------------------------------------------------------------- what is not the server's


def boot_ticks() -> int:
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


@pytest.mark.skipif(os.geteuid() != 0, reason="starts a process as another user")
async def test_a_forged_tag_is_not_trusted(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_fleet() as (fleet, consoles):
            console = new_console(tmp_path, consoles)
            forged = {**os.environ, TAG_VARIABLE: server_tag("srv", console.directory)}
            older = subprocess.Popen(SLEEPER, stdin=subprocess.PIPE, env=forged)
            other_tag = {**os.environ, TAG_VARIABLE: server_tag("srv", tmp_path / "elsewhere")}
            with killed_at_end(older):
                await environ_ready(older.pid)
                start = process_start_time(older.pid)
                assert start is not None
                while boot_ticks() <= start + 1:  # the server must start at a later tick
                    await trio.sleep(0.01)
                sup, escaper = await started(fleet, escaping_spec(tmp_path, "setsid"), console)
                other_user = subprocess.Popen(
                    SLEEPER, stdin=subprocess.PIPE, env=forged, user="nobody"
                )
                wrong_tag = subprocess.Popen(SLEEPER, stdin=subprocess.PIPE, env=other_tag)
                with killed_at_end(other_user, wrong_tag):
                    for proc in (other_user, wrong_tag):
                        await environ_ready(proc.pid)
                    assert await sup.request("stop") is S.STOPPED
                    assert not pid_alive(escaper)
                    assert all(pid_alive(p.pid) for p in (older, other_user, wrong_tag))


async def test_escapers_of_an_adopted_server_are_found_by_the_tag(tmp_path: Path) -> None:
    """The daemon restarted: the server and its escaper were left with init, not with
    the daemon; the stop after re-adoption still finds the escaper."""
    logs = tmp_path / "logs" / "srv"
    logs.mkdir(parents=True)
    spec = escaping_spec(tmp_path, "setsid")
    launcher = (
        "import os, subprocess, sys\n"
        "out = open(sys.argv[1], 'wb')\n"
        "env = dict(os.environ, **{sys.argv[2]: sys.argv[3]})\n"
        "p = subprocess.Popen(sys.argv[4:], stdout=out, start_new_session=True, env=env)\n"
        "print(p.pid)\n"
    )
    output = tmp_path / "server.out"
    tag = server_tag("srv", logs)
    with trio.fail_after(20):
        done = await trio.run_process(
            [sys.executable, "-c", launcher, str(output), TAG_VARIABLE, tag, *spec.argv],
            capture_stdout=True,
        )
        leader = int(done.stdout)
        try:
            while "ready" not in output.read_text():
                await trio.sleep(0.02)
            escaper = escaper_in(output.read_text())
            assert parent_of(escaper) != os.getpid()
            start_time = process_start_time(leader)
            assert start_time is not None
            async with running_fleet() as (fleet, consoles):
                console = ConsoleFile(logs, retention_bytes=1 << 20)
                consoles.append(console)
                sup = await fleet.add("srv", spec, console)
                identity = ProcessIdentity(pid=leader, start_time=start_time, boot_id=boot_id())
                assert await sup.adopt(identity, time.time())
                assert sup.state is S.RUNNING
                assert await sup.request("stop") is S.STOPPED
                assert not pid_alive(leader)
                assert not pid_alive(escaper)
        finally:
            with suppress(ProcessLookupError):
                os.killpg(leader, signal.SIGKILL)


async def test_find_escapers_needs_the_tag_the_user_and_a_later_start(tmp_path: Path) -> None:
    tag = server_tag("srv", tmp_path)
    tagged = {**os.environ, TAG_VARIABLE: tag}
    with trio.fail_after(10):
        proc = subprocess.Popen(SLEEPER, stdin=subprocess.PIPE, env=tagged)
        with killed_at_end(proc):
            await environ_ready(proc.pid)
            start = process_start_time(proc.pid)
            assert start is not None
            uid = os.getuid()
            found = find_escapers(Lineage(tag=tag, uid=uid, leader=1, start=start))
            assert [e.pid for e in found] == [proc.pid]
            assert find_escapers(Lineage(tag=tag, uid=uid, leader=1, start=start + 1)) == []
            assert find_escapers(Lineage(tag=tag, uid=uid + 1, leader=1, start=start)) == []
            assert find_escapers(Lineage(tag=tag + "x", uid=uid, leader=1, start=start)) == []
            in_group = Lineage(tag=tag, uid=uid, leader=os.getpgid(proc.pid), start=start)
            assert find_escapers(in_group) == []


# ---------------------------------------------------------------- the reaper's rules


async def test_leader_exit_codes_survive_a_busy_reaper(tmp_path: Path) -> None:
    """Many short-lived servers, each leaving an orphan, while the reaper looks every
    millisecond: every leader's code still reaches its handle."""
    spec = LaunchSpec(
        argv=["/bin/sh", "-c", "sh -c 'exit 0' & exit 7"],
        cwd=str(tmp_path),
        restart="never",
        stop_timeout=1,
    )
    codes: list[int | None] = []

    async def cycle(sup: Supervisor) -> None:
        for _ in range(15):
            await sup.request("start")
            await sup.wait_state(S.CRASHED)
            codes.append(sup.status().exit_code)

    zombies_before = zombie_children()
    with trio.fail_after(60):
        async with running_fleet(reap_interval=0.001) as (fleet, consoles):
            sups = [
                await fleet.add(f"s{i}", spec, new_console(tmp_path, consoles, f"s{i}"))
                for i in range(4)
            ]
            async with trio.open_nursery() as nursery:
                for sup in sups:
                    nursery.start_soon(cycle, sup)
            while zombie_children() - zombies_before:  # the orphans were reaped too
                await trio.sleep(0.02)
    assert codes == [7] * 60


async def test_subreaper_mark_while_the_reaper_runs() -> None:
    before = is_subreaper()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(REAPER.run)
            assert is_subreaper()
            nursery.cancel_scope.cancel()
    assert is_subreaper() is before


async def test_a_pass_that_cannot_read_proc_is_skipped_not_fatal(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Out of descriptors, the reaper cannot list /proc: it says so once and tries again."""
    real_reap_now = REAPER.reap_now
    failures = 0

    def reap_now() -> int:
        nonlocal failures
        if failures < 3:
            failures += 1
            raise OSError(24, "Too many open files")
        return real_reap_now()

    monkeypatch.setattr(REAPER, "reap_now", reap_now)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(REAPER.run)
            while failures < 3:
                REAPER.wake()
                await trio.sleep(0.01)
            reaped = REAPER.reaped
            # A grandchild in a session of its own, orphaned to this process, then gone.
            shell = subprocess.Popen(["sh", "-c", "sleep 0.1 & exit 0"], start_new_session=True)
            await trio.to_thread.run_sync(shell.wait)
            while REAPER.reaped == reaped:  # passes go on after the failures
                REAPER.wake()
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    warned = [r for r in caplog.records if "cannot look for orphaned processes" in r.message]
    assert len(warned) <= 1  # once per process, whichever test saw it first


async def test_the_daemons_own_children_are_left_to_their_owner() -> None:
    with trio.fail_after(10):
        proc = subprocess.Popen(["/bin/sh", "-c", "exit 3"])  # the daemon's session
        await wait_zombie(proc.pid)
        REAPER.reap_now()
        assert proc.wait() == 3


async def test_registered_server_processes_are_left_to_their_handle() -> None:
    with trio.fail_after(10):
        handle = spawn_handle(["/bin/sh", "-c", "exit 5"])  # a session of its own
        REAPER.add_leader(handle.pid)
        try:
            await wait_zombie(handle.pid)
            REAPER.reap_now()
            assert await handle.wait() == 5
        finally:
            REAPER.discard_leader(handle.pid)
            handle.close()


async def test_session_leaders_wait_while_a_spawn_is_under_way() -> None:
    with trio.fail_after(10):
        proc = subprocess.Popen(["/bin/sh", "-c", "exit 0"], start_new_session=True)
        await wait_zombie(proc.pid)
        with REAPER.spawning():
            REAPER.reap_now()
            assert proc.pid in zombie_children()
        REAPER.reap_now()  # an orphan now: nobody registered it
        assert proc.pid not in zombie_children()
        proc.wait()


async def test_inherited_session_leaders_wait_for_the_release() -> None:
    """Found running when the reaper started (a server left by the image before a
    reload): reaped only once re-adoption is over."""
    with trio.fail_after(10):
        proc = subprocess.Popen(SLEEPER, stdin=subprocess.PIPE, start_new_session=True)
        with killed_at_end(proc):
            async with trio.open_nursery() as nursery:
                await nursery.start(reaper_on_request)
                assert proc.stdin is not None
                proc.stdin.close()
                await wait_zombie(proc.pid)
                REAPER.reap_now()
                assert proc.pid in zombie_children()
                REAPER.release_inherited()
                REAPER.reap_now()
                assert proc.pid not in zombie_children()
                nursery.cancel_scope.cancel()


async def reaper_on_request(*, task_status: trio.TaskStatus[object]) -> None:
    """The reaper, looking only when told to."""
    await REAPER.run(interval=3600, task_status=task_status)


def test_the_tag_is_not_read_as_a_setting() -> None:
    """A leosuite started inside a server sees the tag in its environment."""
    assert TAG_VARIABLE in RESERVED_ENV
    load_settings(None, environ={TAG_VARIABLE: server_tag("srv", "/x")})


async def test_a_failed_pass_over_proc_leaves_no_searcher_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A search asked for while a failing pass runs gets nothing found, not a wait
    for ever: nobody else would run its pass."""
    from leosuite.supervision import escapers

    release = threading.Event()

    def broken(lineages: list[Lineage], servers: frozenset[int]) -> list[list[object]]:
        release.wait(10)
        raise OSError("no /proc")

    monkeypatch.setattr(escapers, "_pin_many", broken)
    search = escapers._SharedSearch()
    lineage = Lineage(tag="t", uid=0, leader=1, start=0)
    got: list[object] = []

    async def first() -> None:
        with pytest.raises(OSError, match="no /proc"):
            await search.pin(lineage)

    async def queued() -> None:
        got.append(await search.pin(lineage))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(first)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(queued)  # queued behind the pass that fails
            await trio.testing.wait_all_tasks_blocked()
            release.set()
    assert got == [[]]

"""Process handles: a server's exit code or killing signal through its pidfd; taking a
process over again by its identity after the daemon was killed or re-executed itself,
and refusing a pid that names another process, a zombie or another boot. Real
processes throughout."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
from contextlib import suppress
from pathlib import Path

import msgspec
import psutil  # type: ignore[import-untyped]
import pytest
import trio

import leosuite
from leosuite.supervision.handle import (
    ProcessHandle,
    ProcessIdentity,
    boot_id,
    process_start_time,
)
from tests.fixtures import fixture_argv
from tests.helpers.child_processes import (
    killed_at_end,
    output_pipe,
    parent_of,
    spawn_handle,
)

REPO = Path(leosuite.__file__).resolve().parents[1]
PYTHON_ENV = {**os.environ, "PYTHONPATH": str(REPO)}


async def test_exit_code_is_reaped_once_and_kept() -> None:
    with trio.fail_after(10), killed_at_end(spawn_handle(["sh", "-c", "exit 3"])) as handle:
        assert not handle.exited
        assert handle.returncode is None
        assert await handle.wait() == 3
        assert await handle.wait() == 3
        assert handle.exited
        assert handle.code_known
        assert handle.returncode == 3
        # Reaped: the pid is free again, so neither the group nor the leader is signalled.
        assert not os.path.exists(f"/proc/{handle.pid}")
        assert handle.signal_group(signal.SIGKILL) is False
        assert handle.signal_leader(signal.SIGKILL) is False


async def test_identity_names_the_process() -> None:
    with trio.fail_after(10), killed_at_end(spawn_handle(["sleep", "1000"])) as handle:
        identity = handle.identity
        assert identity.pid == handle.pid
        assert identity.start_time == process_start_time(handle.pid)
        assert identity.boot_id == boot_id()
        assert len(boot_id()) == 36
        assert os.getpgid(handle.pid) == handle.pid  # a session (and group) leader
        decoded = msgspec.json.decode(msgspec.json.encode(identity), type=ProcessIdentity)
        assert decoded == identity


async def test_a_signal_death_is_negative_like_subprocess() -> None:
    with trio.fail_after(10):
        with killed_at_end(spawn_handle(["sleep", "1000"])) as handle:
            assert handle.signal_group(signal.SIGTERM)
            assert await handle.wait() == -signal.SIGTERM
            assert handle.code_known
        with killed_at_end(spawn_handle(["sleep", "1000"])) as handle:
            assert handle.signal_leader(signal.SIGKILL)
            assert await handle.wait() == -signal.SIGKILL


async def test_a_process_that_ignores_sigterm_only_dies_of_sigkill() -> None:
    with trio.fail_after(10), output_pipe() as (out, write_end):
        handle = spawn_handle(fixture_argv("unkillable"), stdout=write_end)
        with killed_at_end(handle):
            os.close(write_end)
            assert await out.line() == b"ready"
            assert handle.signal_group(signal.SIGTERM)
            assert handle.signal_group(signal.SIGKILL)
            # Had SIGTERM ended it, the code would be -SIGTERM.
            assert await handle.wait() == -signal.SIGKILL


async def test_wait_can_be_cancelled_resumed_and_shared() -> None:
    with trio.fail_after(10), killed_at_end(spawn_handle(["sleep", "1000"])) as handle:
        with trio.CancelScope() as scope:
            scope.cancel()
            await handle.wait()
        assert scope.cancelled_caught
        assert not handle.exited

        codes: list[int | None] = []

        async def waiter() -> None:
            codes.append(await handle.wait())

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            assert handle.signal_group(signal.SIGKILL)
        assert codes == [-signal.SIGKILL] * 3


async def test_close_wakes_a_waiter_and_leaves_the_process_running() -> None:
    with trio.fail_after(10), killed_at_end(spawn_handle(["sleep", "1000"])) as handle:
        identity = handle.identity
        async with trio.open_nursery() as nursery:

            async def waiter() -> None:
                with pytest.raises(trio.ClosedResourceError):
                    await handle.wait()

            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            handle.close()
            handle.close()
        assert handle.signal_group(0) is False  # closed: it cannot tell any more
        again = ProcessHandle.adopt(identity)
        assert again is not None
        with killed_at_end(again):
            assert again.signal_group(signal.SIGKILL)
            assert await again.wait() == -signal.SIGKILL


async def test_a_dropped_popen_never_steals_the_exit_status() -> None:
    """subprocess reaps the children of Popen objects dropped while they ran whenever a
    new Popen is created; the handle must keep the status for itself."""
    with trio.fail_after(10):
        handle = spawn_handle(["sh", "-c", "exit 5"])  # the Popen is dropped at once
        with killed_at_end(handle):
            gc.collect()
            probe = os.pidfd_open(handle.pid)
            try:
                await trio.lowlevel.wait_readable(probe)  # exited, not reaped yet
            finally:
                os.close(probe)
            gc.collect()
            for _ in range(3):
                subprocess.run(["true"], check=True)
            assert await handle.wait() == 5


async def test_a_handle_closed_while_running_is_taken_over_with_its_code() -> None:
    """A child let go (as before a reload) is still the daemon's child: taking it over
    again gets its real exit code, even after Popen objects came and went."""
    with trio.fail_after(10), output_pipe() as (out, write_end):
        read_fd, go = os.pipe()
        try:
            handle = spawn_handle(
                ["sh", "-c", "echo started; read line; exit 7"], stdin=read_fd, stdout=write_end
            )
            os.close(write_end)
            assert await out.line() == b"started"
            identity = handle.identity
            handle.close()
            del handle
            gc.collect()
            adopted = ProcessHandle.adopt(identity)
            assert adopted is not None
            with killed_at_end(adopted):
                os.write(go, b"go\n")
                subprocess.run(["true"], check=True)
                assert await adopted.wait() == 7
                assert adopted.code_known
        finally:
            os.close(read_fd)
            os.close(go)


ORPHANING_PARENT = """
import subprocess, time
child = subprocess.Popen(["sleep", "1000"], start_new_session=True)
print(child.pid, flush=True)
time.sleep(1000)
"""


async def test_adopting_an_orphan_after_its_parent_was_killed() -> None:
    """The daemon was kill -9'ed: its server was handed to init, so the new daemon
    sees the exit but can never know the code."""
    with trio.fail_after(20), output_pipe() as (out, write_end):
        parent = await trio.lowlevel.open_process(
            [sys.executable, "-c", ORPHANING_PARENT], stdout=write_end
        )
        os.close(write_end)
        try:
            pid = int(await out.line())
        finally:
            parent.kill()
            await parent.wait()
        try:
            assert parent_of(pid) != os.getpid()
            start_time = process_start_time(pid)
            assert start_time is not None
            identity = ProcessIdentity(pid=pid, start_time=start_time, boot_id=boot_id())
            handle = ProcessHandle.adopt(identity)
            assert handle is not None
            with killed_at_end(handle):
                assert handle.identity == identity
                assert handle.signal_group(signal.SIGTERM)
                assert await handle.wait() is None
                assert handle.exited
                assert not handle.code_known
                assert handle.returncode is None
                assert handle.signal_group(signal.SIGTERM) is False
        finally:
            with suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


async def test_adopt_refuses_another_process_or_boot() -> None:
    with trio.fail_after(10), killed_at_end(spawn_handle(["sleep", "1000"])) as handle:
        identity = handle.identity
        later = msgspec.structs.replace(identity, start_time=identity.start_time + 1)
        assert ProcessHandle.adopt(later) is None
        other_boot = msgspec.structs.replace(identity, boot_id="0" * 8 + identity.boot_id[8:])
        assert ProcessHandle.adopt(other_boot) is None
        same = ProcessHandle.adopt(identity)
        assert same is not None
        same.close()
        assert handle.signal_group(signal.SIGKILL)
        await handle.wait()
        # Reaped: the pid names no process (or, reused, another one).
        assert ProcessHandle.adopt(identity) is None


async def test_adopt_takes_its_own_zombie_child_and_reaps_its_code() -> None:
    """A server that exited while the daemon re-executed itself is still its child: the
    new image takes it over and reaps its real exit code."""
    with trio.fail_after(10), killed_at_end(spawn_handle(["sh", "-c", "exit 4"])) as handle:
        probe = os.pidfd_open(handle.pid)
        try:
            await trio.lowlevel.wait_readable(probe)
        finally:
            os.close(probe)
        with open(f"/proc/{handle.pid}/stat", "rb") as stat:
            assert stat.read().rsplit(b")", 1)[1].split()[0] == b"Z"
        assert handle.signal_group(signal.SIGKILL) is False  # exited, though not reaped
        again = ProcessHandle.adopt(handle.identity)
        assert again is not None
        with again:
            assert await again.wait() == 4
            assert again.code_known


async def test_adopt_refuses_a_zombie_of_another_parent() -> None:
    # sh starts a child and becomes a sleep that never reaps it: a zombie of sleep. The
    # child exits only once told to (through a pipe of its own), after the exec: sh may
    # reap a child that exits before it, and a slow machine then shows no zombie.
    # (The pipe is sh's stdin, kept as fd 3: a background job's stdin is /dev/null.)
    told, tell = os.pipe()
    script = "exec 3<&0; sh -c 'read go <&3; exit 3' & echo $!; exec sleep 30 3<&- </dev/null"
    parent = subprocess.Popen(["sh", "-c", script], stdin=told, stdout=subprocess.PIPE)
    os.close(told)
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        with trio.fail_after(10):
            while Path(f"/proc/{parent.pid}/comm").read_text().strip() != "sleep":
                await trio.sleep(0.01)
            os.write(tell, b"go\n")
            while (fields := _fields(pid)) is not None and fields[0] != b"Z":
                await trio.sleep(0.01)
        assert fields is not None
        assert int(fields[1]) == parent.pid
        start_time = process_start_time(pid)
        assert start_time is not None
        identity = ProcessIdentity(pid=pid, start_time=start_time, boot_id=boot_id())
        assert ProcessHandle.adopt(identity) is None
    finally:
        os.close(tell)
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def _fields(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()
    except FileNotFoundError:
        return None


def test_start_time_of_a_process_with_a_tricky_name(tmp_path: Path) -> None:
    """The command name may hold spaces and ')': the fields are read after the last one."""
    program = tmp_path / "a) b ) c"
    os.symlink("/bin/sleep", program)
    popen = subprocess.Popen([str(program), "1000"])
    try:
        assert psutil.Process(popen.pid).name() == "a) b ) c"
        start_time = process_start_time(popen.pid)
        assert start_time is not None
        started = psutil.boot_time() + start_time / os.sysconf("SC_CLK_TCK")
        assert started == pytest.approx(psutil.Process(popen.pid).create_time(), abs=0.05)
    finally:
        popen.kill()
        popen.wait()
    assert process_start_time(popen.pid) is None


RELOADED = """
import os, sys
import msgspec, trio
from leosuite.supervision.handle import ProcessHandle, ProcessIdentity
identity = msgspec.json.decode(sys.argv[1], type=ProcessIdentity)
handle = ProcessHandle.adopt(identity)
print("adopted", os.getpid(), handle is not None, flush=True)
assert handle is not None
code = trio.run(handle.wait)
print("code", code, handle.code_known, flush=True)
"""

LAUNCHER = """
import os, subprocess, sys
import msgspec
from leosuite.supervision.handle import ProcessHandle
popen = subprocess.Popen(
    ["sh", "-c", "read line; exit 7"], start_new_session=True, stdout=subprocess.DEVNULL
)
handle = ProcessHandle.for_child(popen)
print("spawned", os.getpid(), flush=True)
identity = msgspec.json.encode(handle.identity).decode()
os.execv(sys.executable, [sys.executable, sys.argv[1], identity])
"""


async def test_after_a_reexec_the_same_pid_adopts_and_gets_the_real_code(
    tmp_path: Path,
) -> None:
    """A reload re-executes the daemon in the same process: its servers are still its
    children, so the new image gets their exit codes."""
    reloaded = tmp_path / "reloaded.py"
    reloaded.write_text(RELOADED)
    launcher = tmp_path / "launcher.py"
    launcher.write_text(LAUNCHER)
    with trio.fail_after(20), output_pipe() as (out, write_end):
        read_fd, go = os.pipe()
        try:
            daemon = await trio.lowlevel.open_process(
                [sys.executable, str(launcher), str(reloaded)],
                stdin=read_fd,
                stdout=write_end,
                env=PYTHON_ENV,
            )
            os.close(write_end)
            try:
                assert await out.line() == f"spawned {daemon.pid}".encode()
                assert await out.line() == f"adopted {daemon.pid} True".encode()
                os.write(go, b"go\n")
                assert await out.line() == b"code 7 True"
                assert await daemon.wait() == 0
            finally:
                if daemon.returncode is None:
                    daemon.kill()
                    await daemon.wait()
        finally:
            os.close(read_fd)
            os.close(go)


SIGNALLER = """
import os, signal, sys
import msgspec
from leosuite.errors import ProcessError
from leosuite.supervision.handle import ProcessHandle, ProcessIdentity
handle = ProcessHandle.adopt(msgspec.json.decode(sys.argv[1], type=ProcessIdentity), user="root")
assert handle is not None
os.setgid(65534)
os.setuid(65534)
for send in (handle.signal_group, handle.signal_leader):
    try:
        send(0)
    except ProcessError as exc:
        print(exc.message, flush=True)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
async def test_a_signal_the_daemon_may_not_send_names_cap_kill() -> None:
    with trio.fail_after(10), killed_at_end(spawn_handle(["sleep", "1000"])) as handle:
        identity = msgspec.json.encode(handle.identity).decode()
        result = await trio.run_process(
            [sys.executable, "-c", SIGNALLER, identity], capture_stdout=True, env=PYTHON_ENV
        )
        pid = handle.pid
        assert result.stdout.decode().splitlines() == [
            f"cannot signal process group {pid} of user root: the daemon needs CAP_KILL",
            f"cannot signal process {pid} of user root: the daemon needs CAP_KILL",
        ]
        assert handle.signal_group(0)  # still running

"""``leosuite serve`` as a real child process under an operator's bad day: a server that
ignores SIGTERM at shutdown, a second SIGTERM during a graceful stop, a store file
truncated to 0 bytes."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.daemon import base_env
from tests.helpers.daemon_process import PASSWORD, Served, api_at, serve_argv, serving
from tests.helpers.http import Api
from tests.helpers.servers import command_settings, pid_alive, wait_gone


async def start_server(api: Api, name: str, program: str, pids: list[int], **extra: Any) -> int:
    """Create and start a server running a tests/fixtures program; record its pid in
    ``pids`` once it is running, and return it."""
    await api.create(name, "command", command_settings(program, **extra))
    await api.ok("server_start", {"server": name})
    await api.wait_log(name, b"ready\n")
    pid: int = (await api.wait_status(name, "running"))["pid"]
    pids.append(pid)
    assert pid_alive(pid)
    return pid


async def wait_readers(served: Served, api: Api, server: str, count: int) -> None:
    """Poll ``/metrics`` on the admin listener until ``count`` tasks wait on the console
    of ``server`` (a long poll counts once the daemon holds it)."""
    url = (await served.wait_generation(0))["admin"]
    headers = {"Authorization": f"Bearer {api.token}"}
    async with httpx.AsyncClient(base_url=url, timeout=10) as admin:
        while True:
            response = await admin.get("/metrics", headers=headers)
            assert response.status_code == 200, response.text
            readers = [
                sample.value
                for family in text_string_to_metric_families(response.text)
                for sample in family.samples
                if sample.name == "leosuite_server_console_readers"
                and sample.labels.get("server") == server
            ]
            if readers == [count]:
                return
            await trio.sleep(0.05)


@contextmanager
def reaping() -> Iterator[list[int]]:
    """Pids of servers that a failing test must not leave behind: SIGKILLed at the end."""
    pids: list[int] = []
    try:
        yield pids
    finally:
        for pid in pids:
            with suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


async def test_shutdown_kills_what_is_left_at_the_deadline(tmp_path: Path) -> None:
    # Before: each server's cleanup sent SIGTERM again and waited its own stop_timeout
    # (30 s here) before SIGKILL; daemon.shutdown_timeout bounds the whole stop.
    with trio.fail_after(60), reaping() as pids:
        async with serving(tmp_path, LEOSUITE_DAEMON_SHUTDOWN_TIMEOUT="1") as served:
            async with api_at((await served.wait_generation(0))["http"]) as api:
                for i in range(2):
                    await start_server(api, f"stubborn{i}", "unkillable", pids, stop_timeout=30)
            began = trio.current_time()
            served.proc.send_signal(signal.SIGTERM)
            code = await served.proc.wait()
            took = trio.current_time() - began
            assert code == 0, served.stderr
            assert took < 10, f"shutdown took {took:.1f} s"
            assert not any(pid_alive(pid) for pid in pids)
    assert "did not stop within daemon.shutdown_timeout" in served.stderr
    assert "Traceback" not in served.stderr


async def test_second_sigterm_kills_every_server_and_exits(tmp_path: Path) -> None:
    # Before: the second signal exited at once and left the server running under init.
    with trio.fail_after(60), reaping() as pids:
        async with serving(tmp_path, LEOSUITE_DAEMON_SHUTDOWN_TIMEOUT="120") as served:
            async with api_at((await served.wait_generation(0))["http"]) as api:
                pid = await start_server(api, "stubborn", "unkillable", pids, stop_timeout=60)
                await start_server(api, "plain", "echo", pids)
            served.proc.send_signal(signal.SIGTERM)
            await served.wait_stderr("shutting down")
            await trio.sleep(0.3)  # the graceful stop of "stubborn" is under way
            assert pid_alive(pid)
            began = trio.current_time()
            served.proc.send_signal(signal.SIGTERM)
            code = await served.proc.wait()
            took = trio.current_time() - began
            await wait_gone(pids)  # SIGKILLed before the exit: gone, not left to init
    assert code == 1
    assert took < 10, f"the hurried exit took {took:.1f} s"
    assert "second signal (SIGTERM)" in served.stderr
    assert "Traceback" not in served.stderr


async def run_cli(*argv: str) -> tuple[int, str]:
    """Run ``leosuite *argv`` to its end (a refused start ends at once)."""
    with trio.fail_after(20):
        result = await trio.run_process(
            [sys.executable, "-m", "leosuite", *argv],
            env=base_env(LEOSUITE_ADMIN_PASSWORD=PASSWORD),
            check=False,
            capture_stdout=True,
            capture_stderr=True,
        )
    return result.returncode, result.stderr.decode()


@pytest.mark.sqlite_only  # the store's file truncated
async def test_truncated_store_refuses_to_start_until_init(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with trio.fail_after(60):
        async with serving(tmp_path) as served:
            async with api_at((await served.wait_generation(0))["http"]) as api:
                await api.create("kept", "command", command_settings("echo"))
            served.proc.send_signal(signal.SIGTERM)
            assert await served.proc.wait() == 0
        store = data / "leosuite.db"
        assert store.stat().st_size > 0
        store.write_bytes(b"")  # the operator's bad day: truncated to 0 bytes

        for argv in (serve_argv(data)[3:], ["user", "list", "--data-dir", str(data)]):
            code, err = await run_cli(*argv)
            assert code == 1, err
            assert "Traceback" not in err
            lines = err.strip().splitlines()
            assert len(lines) == 1, err
            assert str(store) in lines[0]
            assert "empty" in lines[0]
            assert "leosuite serve --init" in lines[0]
            assert store.stat().st_size == 0  # left as it was

        # --init creates a fresh store on purpose
        async with serving(tmp_path, "--init") as served:
            async with api_at((await served.wait_generation(0))["http"]) as api:
                assert (await api.ok("server_list"))["servers"] == []
            served.proc.send_signal(signal.SIGTERM)
            assert await served.proc.wait() == 0

        # ... and only where there is none or it is empty
        code, err = await run_cli(*serve_argv(data, "--init")[3:])
    assert code == 1, err
    assert "--init" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.sqlite_only  # the store's empty file
async def test_empty_store_in_a_fresh_data_dir_starts(tmp_path: Path) -> None:
    # A crash right after the store file was created leaves it empty, with nothing else.
    data = tmp_path / "data"
    data.mkdir()
    (data / "leosuite.db").write_bytes(b"")
    with trio.fail_after(60):
        async with serving(tmp_path) as served:
            await served.wait_generation(0)
            served.proc.send_signal(signal.SIGTERM)
            assert await served.proc.wait() == 0
    assert (data / "leosuite.db").stat().st_size > 0


async def test_sigterm_ends_long_polls_and_does_not_wait_for_them(tmp_path: Path) -> None:
    """A client long-polling a console (on a kept-alive connection) gets its answer at
    once when the daemon stops, and the daemon exits without waiting out the poll."""
    with trio.fail_after(60):
        async with (
            serving(tmp_path) as served,
            api_at((await served.wait_generation(0))["http"]) as api,
        ):
            await api.create("quiet", "command", command_settings("echo"))
            await api.ok("server_status", {"server": "quiet"})  # the connection is open
            answers: list[int] = []

            async def poll() -> None:
                body = {"server": "quiet", "readIndex": 0, "wait": 25}
                answers.append((await api.post("server_log", body)).status_code)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(poll)
                await wait_readers(served, api, "quiet", 1)  # the poll waits in the daemon
                served.proc.send_signal(signal.SIGTERM)
                stopped = trio.current_time()
            assert await served.proc.wait() == 0, served.stderr
            took = trio.current_time() - stopped
            assert answers == [200]
            assert took < 20, f"a poll held to its end would take 25 s; this took {took:.1f} s"


async def test_a_long_poll_is_answered_while_servers_still_stop(tmp_path: Path) -> None:
    """The poll of a quiet console is answered when the stop begins, not when the last
    server has stopped (nor with an error once the consoles are closed)."""
    with trio.fail_after(30), reaping() as pids:
        async with serving(tmp_path) as served:
            async with api_at((await served.wait_generation(0))["http"]) as api:
                await start_server(api, "slow", "unkillable", pids, stop_timeout=3)
                await api.create("quiet", "command", command_settings("echo"))
                answered: list[tuple[int, bool]] = []

                async def poll() -> None:
                    body = {"server": "quiet", "readIndex": 0, "wait": 25}
                    status = (await api.post("server_log", body)).status_code
                    answered.append((status, served.proc.returncode is None))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(poll)
                    await wait_readers(served, api, "quiet", 1)  # the poll waits in the daemon
                    served.proc.send_signal(signal.SIGTERM)
                # Answered while the daemon was still stopping "slow" (3 s to SIGKILL).
                assert answered == [(200, True)]
                assert await served.proc.wait() == 0, served.stderr
            assert not any(pid_alive(pid) for pid in pids)

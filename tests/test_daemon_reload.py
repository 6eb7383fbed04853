"""``leosuite reload`` (SIGHUP) against a real daemon process: the same pid serves
again on the same sockets, no connection attempt is refused meanwhile, a SIGHUP
during the new image's start-up is one more reload, the data directory stays locked
throughout, and the servers keep running (also on SIGTERM with ``on_exit = leave``)."""

from __future__ import annotations

import errno
import json
import signal
import socket
import sys
from contextlib import suppress
from pathlib import Path
from typing import Any

import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.helpers.daemon import base_env
from tests.helpers.daemon_process import (
    PASSWORD,
    Served,
    api_at,
    audit_messages,
    descriptors,
    hostport,
    pid_alive,
    python_copy,
    reaping,
    run_cli,
    serve_argv,
    serving,
    signal_masks,
    socket_inodes,
)
from tests.helpers.http import Api
from tests.helpers.ws import WsClient, client_socket_leak_tolerated


async def reload_with_websocket_open(served: Served, url: str) -> tuple[dict[str, Any], int]:
    """Reload while a logged-in WebSocket API connection is open: the new endpoints,
    and the code the daemon closed that connection with."""
    async with open_websocket_url(url + "/") as ws:
        await WsClient(ws).login(password=PASSWORD)
        again = await served.reload()
        with suppress(ConnectionClosed):
            while True:
                await ws.get_message()
    assert ws.closed is not None
    return again, ws.closed.code


async def start_sleeper(api: Api, name: str, pids: list[int]) -> int:
    await api.create(name, "command", {"command": "sleep 600", "stop_timeout": 1})
    await api.ok("server_start", {"server": name})
    pid: int = (await api.wait_status(name, "running"))["pid"]
    pids.append(pid)
    return pid


async def test_reload_keeps_the_pid_the_sockets_and_the_sessions(tmp_path: Path) -> None:
    with trio.fail_after(90):
        async with serving(tmp_path) as served:
            first = await served.wait_generation(0)
            assert first["generation"] == 0
            async with api_at(first["http"]) as api:
                pid = served.proc.pid
                # The open WebSocket is closed as a restart, to be reconnected.
                with client_socket_leak_tolerated():
                    again, code = await reload_with_websocket_open(served, first["ws"])
                assert code == 1012
                # Same pid, same addresses; the token from before still works.
                assert again == {**first, "generation": 1}
                assert (await api.ok("server_list")) is not None
                async with open_websocket_url(again["ws"] + "/") as ws:
                    await WsClient(ws).login(password=PASSWORD)
                held = descriptors(pid)
                assert held[0] == 6  # each listening socket, and the copy its server uses
                for generation in (2, 3):
                    assert (await served.reload())["generation"] == generation
                # No descriptor leaks into the next image.
                assert descriptors(pid) == held
                assert (await api.ok("server_list")) is not None
            assert await served.terminate() == 0
    assert "Traceback" not in served.stderr
    messages = audit_messages(served.data_dir)
    assert messages[0] == f"started (pid {pid})"
    assert messages[1:7] == [
        "reloading",
        f"reloaded (pid {pid}, generation 1)",
        "reloading",
        f"reloaded (pid {pid}, generation 2)",
        "reloading",
        f"reloaded (pid {pid}, generation 3)",
    ]
    assert messages[-1] == "stopping"
    assert not (served.data_dir / "run" / "endpoints.json").exists()


class Hammer:
    """Clients that keep connecting to every listener: HTTP GETs (retried when a
    connection is cut) and bare connects, paced so as not to fill the accept queue."""

    def __init__(self, endpoints: dict[str, Any]) -> None:
        self.http = hostport(endpoints["http"])
        self.others = [hostport(endpoints["admin"]), hostport(endpoints["ws"])]
        self.refused = 0
        self.connects: list[float] = []
        self.answered = 0
        self.cut = 0

    async def _connect(self, address: tuple[str, int]) -> trio.socket.SocketType:
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.connects.append(trio.current_time())
        try:
            await sock.connect(address)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.ECONNREFUSED:
                self.refused += 1
            raise
        return sock

    async def get_loop(self) -> None:
        request = b"GET /api/auth/config HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        while True:
            try:
                sock = await self._connect(self.http)
            except OSError:
                await trio.sleep(0.02)
                continue
            with sock:
                try:
                    await sock.send(request)
                    answer = await self._read_answer(sock)
                except OSError:
                    answer = None
            if answer is None:
                self.cut += 1  # accepted, then cut by the reload: retried
            else:
                assert answer.startswith(b"HTTP/1.1 200"), answer
                self.answered += 1

    @staticmethod
    async def _read_answer(sock: trio.socket.SocketType) -> bytes | None:
        """The whole answer (by its Content-Length), or None when cut short."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await sock.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            chunk = await sock.recv(65536)
            if not chunk:
                return None
            body += chunk
        return data

    async def connect_loop(self, address: tuple[str, int]) -> None:
        while True:
            with suppress(OSError):
                sock = await self._connect(address)
                sock.close()
            await trio.sleep(0.02)


async def test_no_connection_attempt_is_refused_during_reloads(tmp_path: Path) -> None:
    reloads = 5
    with trio.fail_after(150):
        no_rate_limit = {
            "LEOSUITE_HTTP_REQUEST_RATE": "100000",
            "LEOSUITE_HTTP_REQUEST_BURST": "100000",
        }
        async with serving(tmp_path, **no_rate_limit) as served:
            endpoints = await served.wait_generation(0)
            hammer = Hammer(endpoints)
            windows: list[tuple[float, float]] = []
            async with trio.open_nursery() as nursery:
                for _ in range(2):
                    nursery.start_soon(hammer.get_loop)
                for address in (hammer.http, *hammer.others):
                    nursery.start_soon(hammer.connect_loop, address)
                for _ in range(reloads):
                    answered = hammer.answered
                    began = trio.current_time()
                    await served.reload()
                    windows.append((began, trio.current_time()))
                    while hammer.answered <= answered + 2:  # serving again, to clients too
                        await trio.sleep(0.02)
                nursery.cancel_scope.cancel()
            assert hammer.refused == 0
            # Connection attempts were made while each reload was under way.
            for began, ended in windows:
                assert any(began <= at <= ended for at in hammer.connects)
            assert served.proc.pid == endpoints["pid"]
            assert await served.terminate() == 0
    assert "Traceback" not in served.stderr


async def test_a_sighup_while_the_new_image_starts_is_one_more_reload(tmp_path: Path) -> None:
    with trio.fail_after(90):
        async with serving(tmp_path) as served:
            endpoints = await served.wait_generation(0)
            # A second SIGHUP as the reload begins never kills the daemon. It is sent once
            # the first was taken: two sent before the receiver runs are one, as any two
            # signals of a kind still pending are.
            served.proc.send_signal(signal.SIGHUP)
            while "received SIGHUP: reloading" not in served.stderr:
                assert served.proc.returncode is None, served.stderr
                await trio.sleep(0.005)
            served.proc.send_signal(signal.SIGHUP)
            await served.wait_generation(1)
            while (served.endpoints() or {}).get("generation", 0) < 2 and (
                "SIGHUP while stopping or reloading: ignored" not in served.stderr
            ):
                assert served.proc.returncode is None, served.stderr
                await trio.sleep(0.02)
            # One sent after the exec, while the new image imports and starts: SIGHUP
            # is blocked and not yet caught (its default action would end the process).
            hup = 1 << (signal.SIGHUP - 1)
            for _ in range(10):  # under load the window can pass between two looks: again
                generation = (await served.wait_generation(1))["generation"]
                served.proc.send_signal(signal.SIGHUP)
                while True:
                    assert served.proc.returncode is None, served.stderr
                    blocked, caught = signal_masks(served.proc.pid)
                    if not caught & hup:
                        break
                    if (served.endpoints() or {}).get("generation", 0) > generation:
                        break  # the new image already catches it: this round missed
                    await trio.sleep(0.001)
                if not caught & hup:
                    break
            assert blocked & hup
            assert not caught & hup
            served.proc.send_signal(signal.SIGHUP)
            last = await served.wait_generation(generation + 2)
            assert last["pid"] == served.proc.pid == endpoints["pid"]
            async with api_at(last["http"]) as api:
                assert (await api.ok("server_list")) is not None
            assert await served.terminate() == 0
    assert "Traceback" not in served.stderr


async def test_a_sigterm_during_a_reload_stops_once_reloaded(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with serving(tmp_path) as served:
            await served.wait_generation(0)
            served.proc.send_signal(signal.SIGHUP)
            await trio.sleep(0.03)
            served.proc.send_signal(signal.SIGTERM)
            assert await served.proc.wait() == 0
    pid = served.proc.pid
    assert audit_messages(served.data_dir) == [
        f"started (pid {pid})",
        "reloading",
        f"reloaded (pid {pid}, generation 1)",
        "stopping",
    ]
    assert "Traceback" not in served.stderr


async def test_systemd_hears_reloading_then_ready(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    messages: list[str] = []
    with trio.fail_after(60), trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        await sock.bind(str(path))

        async def receive() -> None:
            while True:
                messages.extend((await sock.recv(4096)).decode().split("\n"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            async with serving(tmp_path, NOTIFY_SOCKET=str(path)) as served:
                await served.wait_generation(0)
                await served.reload()
                while messages.count("READY=1") < 2:
                    await trio.sleep(0.01)
                assert await served.terminate() == 0
            nursery.cancel_scope.cancel()
    reloading = messages.index("RELOADING=1")
    assert messages.index("READY=1") < reloading < len(messages) - messages[::-1].index("READY=1")
    usec = messages[reloading + 1]
    assert usec.startswith("MONOTONIC_USEC=")
    assert int(usec.removeprefix("MONOTONIC_USEC=")) > 0


async def test_a_failed_exec_serves_on_in_the_same_process(tmp_path: Path) -> None:
    python = python_copy(tmp_path / "venv")
    with trio.fail_after(60):
        async with serving(tmp_path, python=str(python)) as served:
            first = await served.wait_generation(0)
            python.unlink()  # an upgrade gone wrong: the program is gone
            again = await served.reload()
            assert again == {**first, "generation": 1}
            assert "cannot re-execute" in served.stderr
            async with api_at(again["http"]) as api:
                assert (await api.ok("server_list")) is not None
            assert await served.terminate() == 0
    assert "reloaded (pid" in audit_messages(served.data_dir)[2]


async def test_reload_command(tmp_path: Path) -> None:
    with trio.fail_after(90):
        code, out, err = await run_cli("reload", "--data-dir", str(tmp_path / "none"))
        assert code == 1
        assert err.strip().splitlines() == [
            f"leosuite: no leosuite daemon is running for the data directory {tmp_path / 'none'}"
        ]
        async with serving(tmp_path) as served:
            await served.wait_generation(0)
            code, out, err = await run_cli("reload", "--data-dir", str(served.data_dir))
            assert (code, err) == (0, "")
            assert f"leosuite (pid {served.proc.pid}) reloaded" in out
            assert (served.endpoints() or {})["generation"] == 1
            code, out, err = await run_cli("reload", "--data-dir", str(served.data_dir), "--json")
            assert (code, err) == (0, "")
            answer = json.loads(out)
            assert answer["pid"] == served.proc.pid
            assert answer["generation"] == 2
            assert await served.terminate() == 0
        # The daemon is gone: the same data directory now has no daemon.
        code, out, err = await run_cli("reload", "--data-dir", str(served.data_dir))
        assert code == 1
        assert "no leosuite daemon is running" in err


async def test_the_data_directory_stays_locked_across_reloads(tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with serving(tmp_path) as served:
            await served.wait_generation(0)
            for generation in (1, 2, 3):
                # The second daemon starts while the first one re-executes itself.
                served.proc.send_signal(signal.SIGHUP)
                code, _out, err = await run_cli(*serve_argv(served.data_dir)[3:])
                assert code == 1, err
                assert "in use by another leosuite" in err
                assert f"(pid {served.proc.pid})" in err
                await served.wait_generation(generation)
            assert await served.terminate() == 0


async def test_on_exit_must_be_stop_or_leave(tmp_path: Path) -> None:
    with trio.fail_after(30):
        result = await trio.run_process(
            [sys.executable, "-m", "leosuite", "config", "show", "--data-dir", str(tmp_path)],
            env=base_env(LEOSUITE_DAEMON_ON_EXIT="abandon"),
            check=False,
            capture_stdout=True,
            capture_stderr=True,
        )
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "daemon.on_exit" in err
    assert "'abandon'" in err
    assert "Traceback" not in err


# -- these depend on the servers outliving the daemon ---------------------------------


async def test_reload_leaves_a_running_server_untouched(tmp_path: Path) -> None:
    with trio.fail_after(90), reaping() as pids:
        async with serving(tmp_path) as served:
            endpoints = await served.wait_generation(0)
            async with api_at(endpoints["http"]) as api:
                pid = await start_sleeper(api, "sleeper", pids)
                listening = socket_inodes(served.proc.pid)
                await served.reload()
                status = await api.status("sleeper")
                assert status["status"] == "running"
                assert status["pid"] == pid
                assert pid_alive(pid)
                # The server never held a listening socket of the daemon.
                assert not socket_inodes(pid) & listening
                await api.ok("server_stop", {"server": "sleeper"})
                await api.wait_status("sleeper", "stopped")
            assert await served.terminate() == 0


async def test_on_exit_leave_keeps_servers_running_after_sigterm(tmp_path: Path) -> None:
    with trio.fail_after(90), reaping() as pids:
        async with serving(tmp_path, LEOSUITE_DAEMON_ON_EXIT="leave") as served:
            endpoints = await served.wait_generation(0)
            async with api_at(endpoints["http"]) as api:
                pid = await start_sleeper(api, "sleeper", pids)
            assert await served.terminate() == 0
            assert pid_alive(pid)
    assert audit_messages(served.data_dir)[-1] == "stopping; servers left running"

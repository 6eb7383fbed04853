"""A full disk, for real: the daemon's data directory on a small tmpfs that a filler file
fills up. A store write answers "disk full: ..." on every surface (HTTP 507, WebSocket
DATABASE_ERROR, admin 507, a chat error message), never a correlation id nor a path; a
power action or command that happened answers success and its audit entry goes to the
daemon log, marked; every server's status says ``disk``; all works again once space is
freed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from leosuite.audit import AuditEvent
from leosuite.errors import DiskFull
from leosuite.store.db import Database
from tests.helpers.admin_accounts import admin_client
from tests.helpers.chat import chat
from tests.helpers.daemon import RunningDaemon, login, make_settings, running_daemon
from tests.helpers.disk import filled, small_filesystem
from tests.helpers.servers import command_settings, pid_alive
from tests.helpers.ws import ws_client


@asynccontextmanager
async def daemon_on_small_disk(tmp_path: Path) -> AsyncIterator[tuple[RunningDaemon, Path]]:
    """A daemon whose data directory is on a 4 MiB tmpfs, with its free-space watch
    looking often; yields it and the data directory."""
    with small_filesystem(tmp_path / "fs") as fs:
        settings = make_settings(
            fs / "data",
            daemon={
                "disk_check_interval": 0.05,
                "disk_warn_free_bytes": 0,
                "disk_warn_free_percent": 0,
            },
            community={"registration": True},
        )
        async with running_daemon(settings) as daemon:  # its own watch looks every 50 ms
            yield daemon, settings.data_dir


async def daemon_event(events: trio.MemoryReceiveChannel[AuditEvent], start: str) -> None:
    """Wait for the watch's audit entry that starts with ``start``."""
    async for event in events:
        if event.topic == "daemon" and event.message.startswith(start):
            return


def disk_full_text(text: str) -> None:
    """``text`` says "disk full: ..." and names neither a path nor a correlation id."""
    assert text.startswith("disk full: "), text
    assert "data directory's filesystem" in text
    assert "correlation" not in text
    assert "/" not in text  # no path


@pytest.mark.sqlite_only  # the store's file on a full disk
async def test_store_write_answers_disk_full_on_every_surface(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with daemon_on_small_disk(tmp_path) as (daemon, data_dir):
            events = daemon.ctx.audit.subscribe()
            async with (
                daemon.http() as http,
                ws_client(daemon, login=True) as ws,
                admin_client(daemon) as admin,
                chat(daemon, "dora") as dora,
            ):
                headers = {"Authorization": f"Bearer {await login(http)}"}

                async def api(endpoint: str, body: dict[str, Any]) -> httpx.Response:
                    return await http.post(f"/api/{endpoint}", json=body, headers=headers)

                body = {"server": "s1", "type": "command", "settings": command_settings("echo")}
                assert (await api("server_create", body)).is_success
                change = {"server": "s1", "set": {"stop_timeout": 2}}
                status = await api("server_status", {"server": "s1"})
                assert status.json()["disk"] == "ok"

                with filled(data_dir.parent):
                    answer = await api("server_settings", change)
                    assert answer.status_code == 507, answer.text
                    assert answer.json()["error_type"] == "disk_full"
                    disk_full_text(answer.json()["error_message"])

                    reply = await ws.call("server.settings", change)
                    assert reply["status_code"] == 9, reply  # DATABASE_ERROR: the store's
                    disk_full_text(reply["status_string"])

                    done = await admin.put("/server", json={"serverTitle": "full"})
                    assert done.status_code == 507, done.text
                    assert done.json()["status"] == "error"
                    disk_full_text(done.json()["message"])

                    await dora.send(1, password="long-password-1")  # registers an account
                    disk_full_text(await dora.error())

                    await daemon_event(events, "disk full on the data directory's")
                    status = await api("server_status", {"server": "s1"})
                    assert status.json()["disk"] == "full"
                    assert (await ws.ok("server.status", {"server": "s1"}))["disk"] == "full"
                    every = await api("server_status", {})
                    assert every.json()["servers"]["s1"]["disk"] == "full"

                await daemon_event(events, "disk space back on the data directory's")
                assert (await api("server_settings", change)).is_success
                assert (await api("server_status", {"server": "s1"})).json()["disk"] == "ok"
                assert (await admin.put("/server", json={"serverTitle": "room"})).is_success


@pytest.mark.sqlite_only  # the store's file on a full disk
async def test_power_actions_and_commands_on_a_full_disk_happen_and_answer_success(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(60):
        async with daemon_on_small_disk(tmp_path) as (daemon, data_dir), daemon.http() as http:
            headers = {"Authorization": f"Bearer {await login(http)}"}

            async def api(endpoint: str, body: dict[str, Any]) -> httpx.Response:
                return await http.post(f"/api/{endpoint}", json=body, headers=headers)

            body = {"server": "s1", "type": "command", "settings": command_settings("echo")}
            assert (await api("server_create", body)).is_success
            assert (await api("server_start", {"server": "s1"})).json()["status"] == "running"
            pid = (await api("server_status", {"server": "s1"})).json()["pid"]
            assert pid_alive(pid)

            with filled(data_dir.parent):
                sent = await api("server_cmd", {"server": "s1", "command": "hello"})
                assert sent.status_code == 204, sent.text
                stopped = await api("server_stop", {"server": "s1"})
                assert stopped.status_code == 200, stopped.text
                assert stopped.json() == {"server": "s1", "status": "stopped"}
                assert not pid_alive(pid)

            marked = {
                r.getMessage(): r.levelno
                for r in caplog.records
                if r.name == "leosuite.audit"
                and r.getMessage().startswith("audit (not stored: disk full): server")
            }
            assert any(m.endswith("command: hello") for m in marked), caplog.text
            assert any(m.endswith("stop (now stopped)") for m in marked), caplog.text
            assert min(marked.values()) >= logging.WARNING  # info entries, marked louder
            # Space back: the next action is stored again.
            assert (await api("server_start", {"server": "s1"})).is_success
            assert (await api("server_stop", {"server": "s1"})).is_success


INSERT = "INSERT INTO t VALUES (?)"


async def test_the_store_raises_disk_full(tmp_path: Path) -> None:
    with trio.fail_after(30), small_filesystem(tmp_path / "fs") as fs:
        db = await trio.to_thread.run_sync(Database.open, fs / "leosuite.db")
        try:
            await db.call(lambda conn: conn.execute("CREATE TABLE t (v BLOB)"))
            with filled(fs):
                with pytest.raises(DiskFull) as caught:
                    await db.call(lambda conn: conn.execute(INSERT, (b"x" * 65536,)))
                assert caught.value.in_store
                assert caught.value.http_status == 507
                assert str(fs) not in caught.value.message
            await db.call(lambda conn: conn.execute(INSERT, (b"x",)))
        finally:
            db.close()

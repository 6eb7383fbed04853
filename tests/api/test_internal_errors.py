"""An internal error (a bug, an I/O or store failure) answers the same way on every
surface: "internal error (correlation id X)" and nothing of its detail, while the log
holds the detail and the traceback once, under that id. The fault is a real console
log failure, whose message carries an absolute path, raised inside the in-process
daemon where a manager or core method runs; the answers come over the real listeners."""

from __future__ import annotations

import base64
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import trio

from leosuite.errors import InternalError, StoreError
from leosuite.supervision.console_file import ConsoleFile
from tests.helpers.chat import chat, core_of
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, login
from tests.helpers.ws import ws_client

CORRELATION = re.compile(r"internal error \(correlation id ([0-9a-f]{12})\)")


def console_log_failure(tmp_path: Path) -> tuple[InternalError, str]:
    """The error a console log raises when its directory cannot be made, and the
    absolute path its message names."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(InternalError) as caught:
        ConsoleFile(blocker / "logs" / "s1", retention_bytes=1 << 20)
    assert str(blocker) in caught.value.message
    return caught.value, str(blocker)


def failing(exc: BaseException) -> Any:
    async def fail(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return fail


def logged_once(caplog: pytest.LogCaptureFixture, answer: str, path: str) -> None:
    """``answer`` names a correlation id and no path; the log has that id in exactly one
    record, with the traceback and the detail."""
    assert path not in answer
    match = CORRELATION.search(answer)
    assert match is not None, answer
    records = [r for r in caplog.records if match[1] in r.getMessage()]
    assert len(records) == 1, caplog.text
    [record] = records
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert path in str(record.exc_info[1])


async def test_websocket_call(
    daemon: RunningDaemon,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    error, path = console_log_failure(tmp_path)
    with trio.fail_after(20):
        async with ws_client(daemon, login=True) as client:
            await client.ok("server.create", {"server": "s1", "type": "demo-game"})
            monkeypatch.setattr(daemon.ctx.servers, "read_log", failing(error))
            answer = await client.call("server.log", {"server": "s1", "readIndex": 0})
            assert answer["status_code"] == 10, answer  # UNKNOWN
            assert answer["content"] is None
            logged_once(caplog, answer["status_string"], path)
            # A bare OSError naming a path is answered the same way.
            oserror = OSError(13, "Permission denied", path)
            monkeypatch.setattr(daemon.ctx.servers, "read_log", failing(oserror))
            answer = await client.call("server.log", {"server": "s1", "readIndex": 0})
            assert answer["status_code"] == 10, answer
            logged_once(caplog, answer["status_string"], path)
            # A store failure keeps its own status, with the same correlation id.
            store = StoreError(f"database operation on {path} failed: disk I/O error")
            monkeypatch.setattr(daemon.ctx.servers, "read_log", failing(store))
            answer = await client.call("server.log", {"server": "s1", "readIndex": 0})
            assert answer["status_code"] == 9, answer  # DATABASE_ERROR
            assert answer["status_string"].startswith("database error (correlation id ")
            match = re.search(r"correlation id ([0-9a-f]{12})", answer["status_string"])
            assert match is not None
            assert [r for r in caplog.records if match[1] in r.getMessage()]
            assert path not in answer["status_string"]


async def test_http_call(
    daemon: RunningDaemon,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    error, path = console_log_failure(tmp_path)
    with trio.fail_after(20):
        async with daemon.http() as http:
            headers = {"Authorization": f"Bearer {await login(http)}"}
            body = {"server": "s1", "type": "demo-game"}
            assert (await http.post("/api/server_create", json=body, headers=headers)).is_success
            monkeypatch.setattr(daemon.ctx.servers, "read_log", failing(error))
            body = {"server": "s1", "readIndex": 0}
            response = await http.post("/api/server_log", json=body, headers=headers)
    assert response.status_code == 500
    assert response.json()["error_type"] == "internal"
    logged_once(caplog, response.text, path)


async def test_admin_call(
    daemon: RunningDaemon,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    error, path = console_log_failure(tmp_path)
    basic = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    for fault in (error, OSError(13, "Permission denied", path)):

        def fail(fault: BaseException = fault) -> Any:
            raise fault

        monkeypatch.setattr(daemon.ctx.bans, "bans", fail)
        with trio.fail_after(20):
            async with daemon.admin() as admin:
                response = await admin.get("/banlist", headers={"Authorization": f"Basic {basic}"})
        assert response.status_code == 500
        assert response.json()["status"] == "error"
        logged_once(caplog, response.json()["message"], path)


async def test_chat_message(
    daemon: RunningDaemon,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    error, path = console_log_failure(tmp_path)
    with trio.fail_after(20):
        async with chat(daemon, "alice") as alice:
            await alice.join("#lobby")

            def fail(*args: Any, **kwargs: Any) -> Any:
                raise error

            monkeypatch.setattr(core_of(daemon), "say", fail)
            await alice.send(0, dest="#lobby", message="hello")
            message = await alice.error()
            logged_once(caplog, message, path)
            # The connection stays usable.
            monkeypatch.undo()
            await alice.send(0, dest="#lobby", message="again")
            await alice.expect(0, message="again")

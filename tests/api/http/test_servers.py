"""The ``/api/server_*`` endpoints over real HTTP against an in-process daemon, with
real child processes: every endpoint of the server API, the quick start, permissions,
audit."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import trio

from leosuite.store import audit as audit_table
from tests.fixtures import fixture_argv
from tests.helpers.accounts import add_account
from tests.helpers.daemon import RunningDaemon
from tests.helpers.http import Api, api_client, assert_error, decode_data
from tests.helpers.servers import FAST_DEMO, command_settings, pid_alive

STATUS_FIELDS = {
    "readIndex",
    "status",
    "description",
    "type",
    "pid",
    "uptime",
    "exit_code",
    "restarts",
    "cpu",
    "memory",
}


async def audit_entries(daemon: RunningDaemon, server: str) -> list[audit_table.AuditEntry]:
    entries: list[audit_table.AuditEntry] = await daemon.ctx.db.call(
        lambda conn: audit_table.page(conn, session=server, newest_first=False, limit=1000)
    )
    return entries


# ---------------------------------------------------------------- the quick start


async def test_quick_start_demo_game(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            options = await api.ok("server_create_options", {"type": "demo-game"})
            names = {v["name"] for v in options["variables"]}
            assert {"port", "ready_delay", "player_interval", "flood", "ignore_sigterm"} <= names
            assert {"autostart", "restart", "stop_timeout", "max_restarts"} <= names

            await api.create("demo", "demo-game", FAST_DEMO)
            status = await api.status("demo")
            assert set(status) >= STATUS_FIELDS
            assert status["status"] == "stopped"
            assert status["readIndex"] == 0
            assert status["type"] == "demo-game"
            assert status["description"]

            started = await api.ok("server_start", {"server": "demo"})
            assert started["server"] == "demo"
            assert started["status"] in ("starting", "running")
            await api.wait_log("demo", b"Server ready")
            status = await api.wait_status("demo", "running")
            assert isinstance(status["pid"], int)
            assert pid_alive(status["pid"])
            assert status["uptime"] is not None
            assert status["uptime"] >= 0
            pid = status["pid"]

            mark = status["readIndex"]
            assert await api.ok("server_cmd", {"server": "demo", "command": "say hello"}) is None
            await api.wait_log("demo", b"[Server] hello", start=mark)

            stopped = await api.ok("server_stop", {"server": "demo"})
            assert stopped == {"server": "demo", "status": "stopped"}
            status = await api.status("demo")
            assert status["status"] == "stopped"
            assert status["exit_code"] == 0
            assert not pid_alive(pid)
            console, end = await api.read_log("demo")
            assert end == status["readIndex"] == len(console)
            text = console.decode()
            for marker in ("[leosuite] starting:", "[leosuite] started pid", "[leosuite] stopping"):
                assert marker in text, text
            assert "exit" in text.split("[leosuite] stopping")[1]
            assert "Saved the game" in text


# ---------------------------------------------------------------- create options, create, list


async def test_create_options_depend_on_the_account(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        await add_account(daemon, "host1", "HOST")
        await add_account(daemon, "plain1")
        async with api_client(daemon) as admin:
            types = {t["type"] for t in (await admin.ok("server_create_options"))["types"]}
            assert {"command", "demo-game", "minecraft"} <= types
            variables = (await admin.ok("server_create_options", {"type": "command"}))["variables"]
            command = next(v for v in variables if v["name"] == "command")
            assert command["required"] is True
            assert command["type"] == "string"
            await admin.error("server_create_options", {"type": "no-such-type"}, 400)
        async with api_client(daemon, "host1") as host:
            types = {t["type"] for t in (await host.ok("server_create_options"))["types"]}
            assert "demo-game" in types
            assert "command" not in types
            await host.ok("server_create_options", {"type": "demo-game"})
            await host.error("server_create_options", {"type": "command"}, 403)
        async with api_client(daemon, "plain1") as plain:
            assert (await plain.ok("server_create_options"))["types"] == []
            await plain.error("server_create_options", {"type": "demo-game"}, 403)
        async with daemon.http() as anonymous:
            assert_error(await anonymous.post("/api/server_create_options", json={}), 403)
            assert_error(await anonymous.post("/api/server_list", json={}), 403)


async def test_create_list_status_and_conflict(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            assert (await api.ok("server_list"))["servers"] == []
            assert await api.ok("server_status") == {"servers": {}}
            await api.create("b-demo", "demo-game", FAST_DEMO)
            await api.create("a_cmd", "command", command_settings("echo"))
            before = await api.ok("server_settings", {"server": "b-demo"})
            await api.error(
                "server_create",
                {"server": "b-demo", "type": "demo-game", "settings": {"port": 1234}},
                409,
            )
            await api.error(
                "server_create", {"server": "b-demo", "type": "command", "settings": {}}, 400
            )
            assert await api.ok("server_settings", {"server": "b-demo"}) == before
            assert (await api.ok("server_list"))["servers"] == ["a_cmd", "b-demo"]
            everything = (await api.ok("server_status"))["servers"]
            assert set(everything) == {"a_cmd", "b-demo"}
            for name, status in everything.items():
                assert set(status) >= STATUS_FIELDS
                assert status["status"] == "stopped"
                assert status == await api.status(name)
            assert everything["a_cmd"]["type"] == "command"
            await api.error("server_status", {"server": "nope"}, 404)
            for path in ("server_start", "server_stop", "server_settings", "server_destroy"):
                await api.error(path, {"server": "nope"}, 404)
            await api.error("server_log", {"server": "nope", "readIndex": 0}, 404)
            await api.error("server_cmd", {"server": "nope", "command": "x"}, 404)


async def test_settings_view_set_and_readonly(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            await api.create("mc", "minecraft", {"jar": "server.jar"})
            view = await api.ok("server_settings", {"server": "mc"})
            # The seed's keys, and what a form shows of each setting.
            shown = {"label", "advanced", "description"}
            assert all(
                set(v) == {"name", "required", "type", "readonly", "value"} | shown for v in view
            )
            by_name = {v["name"]: v for v in view}
            assert {k: v for k, v in by_name["jar"].items() if k not in shown} == {
                "name": "jar",
                "required": True,
                "type": "path",
                "readonly": True,
                "value": "server.jar",
            }
            assert by_name["jar"]["label"] == "Server jar"
            assert by_name["memory"]["value"] == 2048

            changed = await api.ok("server_settings", {"server": "mc", "set": {"memory": 1024}})
            assert {v["name"]: v["value"] for v in changed}["memory"] == 1024
            assert await api.ok("server_settings", {"server": "mc"}) == changed

            for bad in ({"jar": "other.jar"}, {"memory": "lots"}, {"nope": 1}, {"memory": 1}):
                await api.error("server_settings", {"server": "mc", "set": bad}, 400)
            assert await api.ok("server_settings", {"server": "mc"}) == changed
            # giving a readonly variable its current value again is fine
            await api.ok("server_settings", {"server": "mc", "set": {"jar": "server.jar"}})


# ---------------------------------------------------------------- power actions


async def test_restart_kill_and_force_kill(daemon: RunningDaemon) -> None:
    with trio.fail_after(40):
        async with api_client(daemon) as api:
            await api.create("echo", "command", command_settings("echo"))
            await api.ok("server_start", {"server": "echo"})
            first = (await api.wait_status("echo", "running"))["pid"]
            await api.ok("server_cmd", {"server": "echo", "command": "hi there"})
            await api.wait_log("echo", b"echo: hi there")

            restarted = await api.ok("server_restart", {"server": "echo"})
            assert restarted["status"] in ("starting", "running")
            second = (await api.wait_status("echo", "running"))["pid"]
            assert second != first
            assert not pid_alive(first)
            assert pid_alive(second)

            killed = await api.ok("server_kill", {"server": "echo"})
            assert killed["status"] == "stopped"
            status = await api.status("echo")
            assert status["status"] == "stopped"
            assert status["exit_code"] != 0
            assert not pid_alive(second)
            await api.error("server_kill", {"server": "echo"}, 409)

            # force kill is always allowed: on a stopped server it does nothing
            assert (await api.ok("server_force_kill", {"server": "echo"}))["status"] == "stopped"

            await api.ok("server_start", {"server": "echo"})
            third = (await api.wait_status("echo", "running"))["pid"]
            forced = await api.ok("server_force_kill", {"server": "echo"})
            assert forced["status"] == "stopped"
            assert not pid_alive(third)
            text = (await api.read_log("echo"))[0].decode()
            assert "SIGKILL" in text
            assert "SIGTERM" in text
            assert (await api.status("echo"))["restarts"] == 0


async def test_force_kill_preempts_a_graceful_stop(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            # ignores SIGTERM and has no stop command: a graceful stop takes 2 x 5 s
            await api.create("stuck", "command", command_settings("unkillable", stop_timeout=5))
            await api.ok("server_start", {"server": "stuck"})
            pid = (await api.wait_status("stuck", "running"))["pid"]
            await api.wait_log("stuck", b"ready\n")  # SIGTERM is ignored from here on
            async with trio.open_nursery() as nursery:
                results: list[dict[str, Any]] = []

                async def stop() -> None:
                    results.append(await api.ok("server_stop", {"server": "stuck"}))

                nursery.start_soon(stop)
                await api.wait_status("stuck", "stopping")
                started = trio.current_time()
                forced = await api.ok("server_force_kill", {"server": "stuck"})
                assert forced["status"] == "stopped"
                assert trio.current_time() - started < 3
            assert results == [{"server": "stuck", "status": "stopped"}]
            assert not pid_alive(pid)


# ---------------------------------------------------------------- destroy


async def test_destroy_stops_first_and_deletes_files_on_request(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        data_dir = daemon.daemon.data_dir
        async with api_client(daemon) as api:
            await api.create("keep", "command", command_settings("echo"))
            await api.create("gone", "demo-game", FAST_DEMO)
            for name in ("keep", "gone"):
                await api.ok("server_start", {"server": name})
            keep_pid = (await api.wait_status("keep", "running"))["pid"]
            gone_pid = (await api.wait_status("gone", "running"))["pid"]
            for name in ("keep", "gone"):
                assert (data_dir / "servers" / name).is_dir()
                assert (data_dir / "logs" / name).is_dir()

            response = await api.post("server_destroy", {"server": "keep"})
            assert response.status_code == 204
            assert response.content == b""
            assert not pid_alive(keep_pid)
            # its files are kept, set aside where no server name reaches
            assert not (data_dir / "logs" / "keep").exists()
            (kept_logs,) = (data_dir / "logs").glob("keep.destroyed-*")
            assert (kept_logs / "console.log").is_file()

            response = await api.post("server_destroy", {"server": "gone", "delete_files": True})
            assert response.status_code == 204
            assert not pid_alive(gone_pid)
            assert not (data_dir / "servers" / "gone").exists()
            assert not (data_dir / "logs" / "gone").exists()

            assert (await api.ok("server_list"))["servers"] == []
            await api.error("server_status", {"server": "keep"}, 404)
            await api.error("server_destroy", {"server": "keep"}, 404)
            # the name is free again, and its console starts from 0
            await api.create("gone", "demo-game", FAST_DEMO)
            assert (await api.status("gone"))["readIndex"] == 0

            # a new server under a destroyed one's name (files kept) is a new server:
            # its console starts at 0 and shows nothing of the old one's
            await api.create("keep", "demo-game", FAST_DEMO)
            assert (await api.status("keep"))["readIndex"] == 0
            assert await api.read_log("keep") == (b"", 0)
            assert (data_dir / "servers" / "keep").is_dir()
            aside = [p for p in (data_dir / "logs").iterdir() if p.name.startswith("keep.")]
            assert len(aside) == 1
            assert (aside[0] / "console.log").stat().st_size > 0


# ---------------------------------------------------------------- permissions and audit


async def test_permissions_and_audit(daemon: RunningDaemon) -> None:
    with trio.fail_after(40):
        host_id = await add_account(daemon, "host1", "HOST")
        await add_account(daemon, "host2", "HOST")
        await add_account(daemon, "plain1")
        async with (
            api_client(daemon) as admin,
            api_client(daemon, "host1") as host,
            api_client(daemon, "host2") as other,
            api_client(daemon, "plain1") as plain,
        ):
            await admin.create("admins", "command", command_settings("echo"))
            create_cmd = {"server": "h", "type": "command", "settings": command_settings("echo")}
            await host.error("server_create", create_cmd, 403)
            create_demo = {"server": "h", "type": "demo-game", "settings": FAST_DEMO}
            await plain.error("server_create", create_demo, 403)
            assert (await admin.ok("server_list"))["servers"] == ["admins"]

            await host.create("h", "demo-game", FAST_DEMO)
            assert (await host.ok("server_list"))["servers"] == ["h"]
            assert set((await host.ok("server_status"))["servers"]) == {"h"}
            await host.ok("server_start", {"server": "h"})
            await host.wait_status("h", "running")
            await host.ok("server_cmd", {"server": "h", "command": "say from host"})
            await host.wait_log("h", b"[Server] from host")

            for api in (other, plain):
                assert (await api.ok("server_list"))["servers"] == []
                assert await api.ok("server_status") == {"servers": {}}
                for path in ("server_status", "server_stop", "server_settings", "server_destroy"):
                    await api.error(path, {"server": "h"}, 404)
                await api.error("server_cmd", {"server": "h", "command": "say x"}, 404)
                await api.error("server_log", {"server": "h", "readIndex": 0}, 404)
                await api.error("server_status", {"server": "admins"}, 404)
            assert (await host.status("h"))["status"] == "running"
            await host.error("server_start", {"server": "admins"}, 404)

            assert (await admin.ok("server_list"))["servers"] == ["admins", "h"]
            assert (await admin.status("h"))["status"] == "running"
            await admin.ok("server_cmd", {"server": "h", "command": "say from admin"})
            await host.ok("server_stop", {"server": "h"})
            assert (await host.status("h"))["status"] == "stopped"
            assert (await host.post("server_destroy", {"server": "h"})).status_code == 204
            assert (await admin.ok("server_list"))["servers"] == ["admins"]

        entries = await audit_entries(daemon, "h")
        messages = [e.message for e in entries]
        wanted = ["created server h", "start", "command: say from host", "stop", "destroyed"]
        position = 0
        for want in wanted:
            position = next((i for i in range(position, len(messages)) if want in messages[i]), -1)
            assert position >= 0, (want, messages)
        triples = {e.user_triple for e in entries}
        assert triples == {f"{host_id};127.0.0.1;host1", "1;127.0.0.1;admin"}, triples
        assert any("say from admin" in e.message for e in entries if e.user_name == "admin")
        assert all(e.topic == "server" for e in entries)
        # the refused and unseen attempts on "admins" changed nothing and logged no action
        assert [e.message for e in await audit_entries(daemon, "admins")] == [
            "created server admins of type command"
        ]


# ---------------------------------------------------------------- server_log


async def test_log_indexes_max_and_long_poll(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            await api.create("echo", "command", command_settings("echo"))
            empty = await api.ok("server_log", {"server": "echo", "readIndex": 0})
            assert empty == {
                "oldReadIndex": 0,
                "nextReadIndex": 0,
                "readIndex": 0,
                "data": "",
                "encoding": "utf-8",
            }
            await api.ok("server_start", {"server": "echo"})
            await api.wait_log("echo", b"ready\n")
            whole, end = await api.read_log("echo")

            answer = await api.ok("server_log", {"server": "echo", "readIndex": 3, "max": 5})
            assert answer["oldReadIndex"] == 3
            assert answer["nextReadIndex"] == 8
            assert answer["readIndex"] == end
            assert decode_data(answer) == whole[3:8]
            zero = await api.ok("server_log", {"server": "echo", "readIndex": 0, "max": 0})
            assert zero["nextReadIndex"] == 0
            assert zero["data"] == ""
            await api.error("server_log", {"server": "echo", "readIndex": 0, "max": -1}, 400)
            await api.error("server_log", {"server": "echo", "readIndex": 0, "wait": -1}, 400)
            await api.error("server_log", {"server": "echo", "readIndex": "0"}, 400)
            await api.error("server_log", {"server": "echo"}, 400)

            # a long poll at the end answers as soon as new bytes arrive
            async with trio.open_nursery() as nursery:
                answers: list[dict[str, Any]] = []
                done = trio.Event()

                async def poll() -> None:
                    body = {"server": "echo", "readIndex": end, "wait": 20}
                    answers.append(await api.ok("server_log", body))
                    done.set()

                nursery.start_soon(poll)
                await trio.sleep(0.3)
                assert not answers  # still waiting: nothing new yet
                await api.ok("server_cmd", {"server": "echo", "command": "wake up"})
                with trio.fail_after(3):
                    await done.wait()
            assert answers[0]["oldReadIndex"] == end
            assert answers[0]["nextReadIndex"] > end
            assert decode_data(answers[0]).startswith(b"echo: wake up")

            # a wait with data already there answers at once
            with trio.fail_after(2):
                quick = await api.ok("server_log", {"server": "echo", "readIndex": 0, "wait": 20})
            assert decode_data(quick).startswith(whole)
            await api.ok("server_stop", {"server": "echo"})


async def test_status_of_running_server_has_stats(daemon: RunningDaemon) -> None:
    """A server that begins running has figures one stats interval (2 s) later."""
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            await api.create("echo", "command", command_settings("echo"))
            await api.ok("server_start", {"server": "echo"})
            await api.wait_status("echo", "running")
            while (status := await api.status("echo"))["memory"] is None:
                await trio.sleep(0.1)
            assert status["memory"] > 0
            assert status["cpu"] is not None
            assert status["pid"] == psutil.Process(status["pid"]).pid
            await api.ok("server_stop", {"server": "echo"})
            stopped = await api.status("echo")
            assert stopped["pid"] is None
            assert stopped["memory"] is None
            assert stopped["uptime"] is None


async def test_start_failure_is_crashed_with_reason(daemon: RunningDaemon, tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with api_client(daemon) as api:
            missing = tmp_path / "no-such-binary"
            settings = {"command": shlex.quote(str(missing)), "restart": "never"}
            await api.create("broken", "command", settings)
            answer = await api.ok("server_start", {"server": "broken"})
            assert answer["status"] == "crashed"
            status = await api.status("broken")
            assert status["status"] == "crashed"
            assert status["pid"] is None
            assert status["last_error"]
            text = (await api.read_log("broken"))[0].decode()
            assert "failed to start" in text
            assert not os.path.exists(missing)


async def test_typed_stop_command_is_a_stop_not_a_crash(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            await api.create("demo", "demo-game", {**FAST_DEMO, "restart": "always"})
            await api.ok("server_start", {"server": "demo"})
            await api.wait_status("demo", "running")
            await api.ok("server_cmd", {"server": "demo", "command": "stop"})
            status = await api.wait_status("demo", "stopped", "crashed", "backoff")
            assert status["status"] == "stopped"
            assert status["exit_code"] == 0
            await trio.sleep(1.5)  # restart "always" would have restarted a crash by now
            status = await api.status("demo")
            assert status["status"] == "stopped"
            assert status["restarts"] == 0


async def test_settings_apply_from_the_next_start_and_every_action_is_audited(
    daemon: RunningDaemon,
) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            await api.create("srv", "command", command_settings("echo"))
            await api.ok("server_start", {"server": "srv"})
            await api.wait_log("srv", b"ready\n")
            new = {"command": shlex.join(fixture_argv("invalid_utf8", "--sleep"))}
            await api.ok("server_settings", {"server": "srv", "set": new})
            await api.ok("server_cmd", {"server": "srv", "command": "old one"})
            await api.wait_log("srv", b"echo: old one")
            mark = (await api.status("srv"))["readIndex"]
            await api.ok("server_restart", {"server": "srv"})
            await api.wait_log("srv", b"ok\n", start=mark)
            await api.ok("server_kill", {"server": "srv"})
            await api.ok("server_start", {"server": "srv"})
            await api.ok("server_force_kill", {"server": "srv"})
        messages = [e.message for e in await audit_entries(daemon, "srv")]
        for want in (
            "created",
            "start",
            "settings changed: command",
            "command: old one",
            "restart",
            "kill",
            "force kill",
        ):
            assert any(m.startswith(want) or want in m for m in messages), (want, messages)
        assert len(messages) == 8, messages


async def test_multibyte_text_cut_by_max_is_lossless(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            await api.create("echo", "command", command_settings("echo"))
            await api.ok("server_start", {"server": "echo"})
            await api.wait_log("echo", b"ready\n")
            await api.ok("server_cmd", {"server": "echo", "command": "héllo wörld ☃ 𝄞!"})
            await api.wait_log("echo", "𝄞!\n".encode())
            whole, end = await api.read_log("echo")
            for step in (1, 2, 3, 5):
                index, pieces = 0, []
                while index < end:
                    body = {"server": "echo", "readIndex": index, "max": step}
                    answer = await api.ok("server_log", body)
                    assert answer["oldReadIndex"] == index
                    assert answer["nextReadIndex"] > index  # always progress
                    pieces.append(decode_data(answer))
                    index = answer["nextReadIndex"]
                assert b"".join(pieces) == whole, step


async def test_concurrent_create_and_destroy_of_one_name(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as one, api_client(daemon) as two:
            codes: list[int] = []

            async def call(api: Api, path: str, body: dict[str, Any]) -> None:
                response = await api.post(path, body)
                if response.status_code not in (200, 204):
                    assert_error(response, response.status_code)
                codes.append(response.status_code)

            body = {"server": "twin", "type": "command", "settings": command_settings("echo")}
            async with trio.open_nursery() as nursery:
                for api in (one, two, one, two):
                    nursery.start_soon(call, api, "server_create", body)
            assert sorted(codes) == [200, 409, 409, 409]
            await one.ok("server_start", {"server": "twin"})
            pid = (await one.wait_status("twin", "running"))["pid"]
            codes.clear()
            async with trio.open_nursery() as nursery:
                for api in (one, two):
                    nursery.start_soon(call, api, "server_destroy", {"server": "twin"})
            assert sorted(codes) == [204, 404]
            assert not pid_alive(pid)
            assert (await one.ok("server_list"))["servers"] == []

"""What the forms and the server list are built from, over both API surfaces: variables'
labels and ``advanced`` flags, validation errors that name the label (the variable's
name stays in ``field``), each server's owner in ``server_list`` for an ADMIN only, and
the console's first line showing the command as the type wrote it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
import trio

from leosuite.store import accounts
from leosuite.supervision.type_files import TypeLoadError, load_builtin_types, load_type_file
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import RunningDaemon
from tests.helpers.http import api_client
from tests.helpers.servers import FAST_DEMO
from tests.helpers.ws import ws_client


def test_every_builtin_variable_has_a_label_and_test_switches_are_advanced() -> None:
    for stype in load_builtin_types().values():
        for var in stype.variables:
            assert var.label, (stype.name, var.name)
            assert var.label != var.name, (stype.name, var.name)
    demo = {v.name: v for v in load_builtin_types()["demo-game"].variables}
    assert demo["flood"].advanced
    assert demo["ignore_sigterm"].advanced
    assert not demo["port"].advanced
    for name in ("flood", "ignore_sigterm"):
        text = demo[name].description.lower()
        assert "for tests" not in text
        assert "for benchmarks" not in text


# TOML strings: two lines, too long, a control character.
@pytest.mark.parametrize("label", ['"Two\\nlines"', '"' + "x" * 65 + '"', '"bell\\u0007"'])
def test_a_type_file_with_a_bad_label_is_refused(tmp_path: Path, label: str) -> None:
    path = tmp_path / "odd.toml"
    path.write_text(f'command = ["x"]\n[[variables]]\nname = "v"\ndefault = ""\nlabel = {label}\n')
    with pytest.raises(TypeLoadError) as info:
        load_type_file(path)
    assert info.value.key == "variables[0].label"


async def test_create_options_and_settings_carry_labels(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            options = await api.ok("server_create_options", {"type": "demo-game"})
            by_name = {v["name"]: v for v in options["variables"]}
            assert by_name["player_interval"]["label"] == "Player interval"
            assert by_name["player_interval"]["advanced"] is False
            assert by_name["flood"]["advanced"] is True
            assert by_name["ignore_sigterm"]["advanced"] is True
            assert by_name["max_restarts"]["advanced"] is True
            assert by_name["restart"]["label"] == "Restart"
            assert by_name["user"]["label"] == "System user"

            await api.create("lab", "demo-game", FAST_DEMO)
            view = await api.ok("server_settings", {"server": "lab"})
            settings = {s["name"]: s for s in view}
            assert settings["flood"]["label"] == "Flood the console"
            assert settings["flood"]["advanced"] is True
            assert settings["flood"]["description"]
            assert settings["port"]["value"] == 25565
            assert {"name", "required", "type", "readonly", "value"} <= set(settings["port"])


async def test_validation_errors_name_the_label_and_keep_the_field(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            bad = {**FAST_DEMO, "player_interval": 90000}
            body = {"server": "lab", "type": "demo-game", "settings": bad}
            error = await api.error("server_create", body, 400)
            assert error["error_message"] == "Player interval must be at most 86400"
            # A hostile value: a NUL in a string setting of a type an ADMIN may create.
            hostile = {"server": "c", "type": "command", "settings": {"command": "a\0b"}}
            error = await api.error("server_create", hostile, 400)
            assert error["error_message"].startswith("Command line must not contain")
            assert (await api.ok("server_list"))["servers"] == []

        async with ws_client(daemon, login=True) as ws:
            answer = await ws.call("server.create", body)
            assert answer["status_code"] == 12  # INVALID_ARGUMENT
            assert answer["status_string"] == "Player interval must be at most 86400"
            assert answer["content"] == {"field": "player_interval"}
            await ws.ok(
                "server.create", {"server": "lab", "type": "demo-game", "settings": FAST_DEMO}
            )
            answer = await ws.call("server.settings", {"server": "lab", "set": {"stop_timeout": 0}})
            assert answer["status_string"] == "Stop timeout must be at least 0.1"
            assert answer["content"] == {"field": "stop_timeout"}


async def test_server_list_names_owners_for_an_admin_only(daemon: RunningDaemon) -> None:
    with trio.fail_after(40):
        await add_account(daemon, "hana", "HOST")
        gone_id = await add_account(daemon, "gone", "HOST")
        await add_account(daemon, "plain")
        async with (
            api_client(daemon) as admin,
            api_client(daemon, "hana") as hana,
            api_client(daemon, "gone") as gone,
            api_client(daemon, "plain") as plain,
        ):
            await admin.create("mine", "demo-game", FAST_DEMO)
            await hana.create("hanas", "demo-game", FAST_DEMO)
            await gone.create("orphan", "demo-game", FAST_DEMO)
            await daemon.ctx.db.call(lambda conn: accounts.delete(conn, gone_id))

            listing = await admin.ok("server_list")
            assert listing["servers"] == ["hanas", "mine", "orphan"]
            assert listing["owners"] == {"hanas": "hana", "mine": "admin", "orphan": None}

            # Accounts without ADMIN get the names they see, and nobody's username.
            assert "owners" not in (answer := await hana.ok("server_list"))
            assert answer["servers"] == ["hanas"]
            assert "owners" not in (answer := await plain.ok("server_list"))
            assert answer["servers"] == []
            # A hostile body: an unknown field is refused in the documented shape.
            await hana.error("server_list", {"owner": "admin"}, 400)

        async with ws_client(daemon, login=True) as ws, ws_client(daemon) as other:
            listing = await ws.ok("server.list", {})
            assert listing["owners"] == {"hanas": "hana", "mine": "admin", "orphan": None}
            await other.login("hana", PASSWORD)
            answer = await other.ok("server.list", {})
            assert answer["servers"] == ["hanas"]
            assert "owners" not in answer


async def test_first_console_line_shows_the_command_as_the_type_wrote_it(
    daemon: RunningDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="leosuite.supervision.supervisor")
    with trio.fail_after(30):
        async with api_client(daemon) as api:
            await api.create("first", "demo-game", FAST_DEMO)
            await api.ok("server_start", {"server": "first"})
            data = await api.wait_log("first", b"Server ready")
    first = data.split(b"\n", 1)[0].decode()
    assert first.startswith("[leosuite] starting: python -m leosuite.templates.demo_game ")
    assert sys.executable not in data.decode("utf-8", "replace")
    assert str(daemon.ctx.settings.data_dir) not in first
    # The daemon's own log keeps the command whole, interpreter path included.
    whole = [r.getMessage() for r in caplog.records if "starting" in r.getMessage()]
    assert any(sys.executable in line and "server first" in line for line in whole), whole

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from leosuite.errors import ConfigError, InvalidInput
from leosuite.supervision.type_files import (
    TypeLoadError,
    load_builtin_types,
    load_type_file,
    load_types,
)
from leosuite.supervision.types import (
    ServerType,
    coerce_text,
    render_command,
    settings_view,
    validate_server_name,
    validate_settings,
    variables_view,
)

GOOD_TYPE = """
description = "a custom game"
command = ["./game", "--name", "{title}", "--port", "{port}"]
stop_command = "quit"
stop_signal = "SIGINT"
ready_pattern = 'ready$'

[env]
GAME_HOME = "{server_dir}/home"

[[variables]]
name = "title"
required = true
readonly = true

[[variables]]
name = "port"
type = "port"
default = 7777

[[variables]]
name = "mode"
type = "choice"
choices = ["pvp", "pve"]
default = "pve"

[[variables]]
name = "slots"
type = "int"
default = 8
min = 1
max = 64

[[variables]]
name = "hardcore"
type = "bool"
default = false
"""


@pytest.fixture
def builtins() -> dict[str, ServerType]:
    return load_builtin_types()


@pytest.fixture
def custom(tmp_path: Path) -> ServerType:
    path = tmp_path / "custom.toml"
    path.write_text(GOOD_TYPE)
    return load_type_file(path)


# ------------------------------------------------------------------ loading


def test_builtin_types_load(builtins: dict[str, ServerType]) -> None:
    assert {"command", "demo-game", "minecraft"} <= set(builtins)
    assert builtins["command"].admin_only
    assert not builtins["demo-game"].admin_only
    assert builtins["minecraft"].stop_command == "stop"
    assert builtins["demo-game"].stop_command == "stop"
    for name, stype in builtins.items():
        assert stype.name == name


def test_common_variables_on_every_type(builtins: dict[str, ServerType]) -> None:
    for stype in builtins.values():
        names = [v["name"] for v in variables_view(stype)]
        assert names[-7:] == [
            "autostart",
            "restart",
            "stop_timeout",
            "max_restarts",
            "memory_mb",
            "cpu_percent",
            "pids_max",
        ]
    view = {v["name"]: v for v in variables_view(builtins["demo-game"])}
    assert view["restart"]["choices"] == ["never", "on-failure", "always"]
    assert view["autostart"]["default"] is False
    assert view["max_restarts"]["default"] == 5


def test_load_types_reports_broken_file_and_loads_others(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(GOOD_TYPE)
    (tmp_path / "wrongtype.toml").write_text('command = ["x"]\nstop_timeout = "soon"\n')
    (tmp_path / "unknownkey.toml").write_text('command = ["x"]\ncolour = "red"\n')
    (tmp_path / "badvar.toml").write_text(
        'command = ["x"]\n[[variables]]\nname = "v"\ntype = "float128"\ndefault = 1\n'
    )
    (tmp_path / "badsyntax.toml").write_text("command = [\n")
    (tmp_path / "badregex.toml").write_text('command = ["x"]\nready_pattern = "(("\n')
    (tmp_path / "badsignal.toml").write_text('command = ["x"]\nstop_signal = "SIGNOPE"\n')
    (tmp_path / "badref.toml").write_text('command = ["x", "{nope}"]\n')
    (tmp_path / "minecraft.toml").write_text('command = ["evil"]\n')
    (tmp_path / "notes.txt").write_text("ignored")
    types, errors = load_types(tmp_path)
    assert "good" in types
    assert types["minecraft"].command[0] == "java"  # the built-in was not replaced
    by_file = {e.path.name: e for e in errors}
    assert set(by_file) == {
        "wrongtype.toml",
        "unknownkey.toml",
        "badvar.toml",
        "badsyntax.toml",
        "badregex.toml",
        "badsignal.toml",
        "badref.toml",
        "minecraft.toml",
    }
    assert by_file["wrongtype.toml"].key == "stop_timeout"
    assert by_file["unknownkey.toml"].key == "colour"
    assert by_file["badvar.toml"].key == "variables[0].type"
    assert by_file["badregex.toml"].key == "ready_pattern"
    assert by_file["badsignal.toml"].key == "stop_signal"
    assert by_file["badref.toml"].key == "command"
    assert "built-in" in by_file["minecraft.toml"].message
    for err in errors:
        assert isinstance(err, ConfigError)
        assert str(tmp_path) in str(err)


def test_load_types_missing_directory(tmp_path: Path) -> None:
    types, errors = load_types(tmp_path / "absent")
    assert errors == []
    assert set(types) == set(load_builtin_types())


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('command = []\n', "command"),
        ('command = ["x"]\n[[variables]]\nname = "Bad Name"\ndefault = ""\n', "variables[0].name"),
        ('command = ["x"]\n[[variables]]\nname = "restart"\ndefault = ""\n', "variables[0].name"),
        ('command = ["x"]\n[[variables]]\nname = "c"\ntype = "choice"\ndefault = "a"\n',
         "variables[0].choices"),
        ('command = ["x"]\n[[variables]]\nname = "c"\ntype = "choice"\nchoices = ["a"]\n'
         'default = "b"\n', "variables[0].default"),
        ('command = ["x"]\n[[variables]]\nname = "n"\ntype = "int"\ndefault = true\n',
         "variables[0].default"),
        ('command = ["x"]\n[[variables]]\nname = "n"\n', "variables[0].default"),
        ('command = ["x"]\n[[variables]]\nname = "n"\nrequired = true\ndefault = "a"\n',
         "variables[0].default"),
        ('command = ["x"]\nmax_restarts = -1\n', "max_restarts"),
        ('command = ["x"]\nname = "other"\n', "name"),
        ('command = ["x"]\n[env]\n"A=B" = "c"\n', "env"),
    ],
)  # fmt: skip
def test_type_file_errors_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(TypeLoadError) as info:
        load_type_file(path)
    assert info.value.key == key
    assert info.value.path == path


# ------------------------------------------------------------------ settings


def test_validate_settings_fills_defaults(custom: ServerType) -> None:
    settings = validate_settings(custom, {"title": "My world"})
    assert settings == {
        "title": "My world",
        "port": 7777,
        "mode": "pve",
        "slots": 8,
        "hardcore": False,
        "user": "",
        "autostart": False,
        "restart": "on-failure",
        "stop_timeout": 10.0,
        "max_restarts": 5,
        "memory_mb": 0,
        "cpu_percent": 0,
        "pids_max": 0,
    }


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"title": "t", "nope": 1}, "nope"),  # unknown variable
        ({}, "title"),  # missing required
        ({"title": ""}, "title"),  # required but empty
        ({"title": 5}, "title"),  # wrong type
        ({"title": "a\0b"}, "title"),  # NUL
        ({"title": "a\nb"}, "title"),  # newline
        ({"title": "x" * 4097}, "title"),  # too long
        ({"title": "t", "slots": True}, "slots"),  # bool is not an int
        ({"title": "t", "slots": "8"}, "slots"),
        ({"title": "t", "slots": 8.5}, "slots"),
        ({"title": "t", "slots": 65}, "slots"),  # over max
        ({"title": "t", "slots": 0}, "slots"),  # under min
        ({"title": "t", "port": 0}, "port"),
        ({"title": "t", "port": 65536}, "port"),
        ({"title": "t", "port": True}, "port"),
        ({"title": "t", "port": "80"}, "port"),
        ({"title": "t", "hardcore": 1}, "hardcore"),
        ({"title": "t", "hardcore": "true"}, "hardcore"),
        ({"title": "t", "mode": "creative"}, "mode"),  # choice not in list
        ({"title": "t", "restart": "sometimes"}, "restart"),
        ({"title": "t", "stop_timeout": float("nan")}, "stop_timeout"),
        ({"title": "t", "stop_timeout": 0}, "stop_timeout"),
        ({"title": "t", "max_restarts": -1}, "max_restarts"),
        ({"title": "t", "autostart": None}, "autostart"),
    ],
)
def test_validate_settings_bad_input(
    custom: ServerType, given: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_settings(custom, given)
    assert info.value.field == field


def test_readonly_refused_on_update(custom: ServerType) -> None:
    existing = validate_settings(custom, {"title": "first"})
    with pytest.raises(InvalidInput, match="readonly") as info:
        validate_settings(custom, {"title": "second"}, existing=existing, is_update=True)
    assert info.value.field == "title"
    # giving the current value again, or changing others, is fine
    updated = validate_settings(
        custom, {"title": "first", "slots": 16}, existing=existing, is_update=True
    )
    assert updated["slots"] == 16
    assert updated["title"] == "first"
    assert updated["port"] == 7777


def test_settings_view(custom: ServerType) -> None:
    settings = validate_settings(custom, {"title": "t", "port": 9000})
    view = settings_view(custom, settings)
    assert view[0] == {
        "name": "title",
        "required": True,
        "type": "string",
        "readonly": True,
        "value": "t",
        "label": "Title",
        "advanced": False,
        "description": "",
    }
    assert {v["name"]: v["value"] for v in view}["port"] == 9000
    seed = {"name", "required", "type", "readonly", "value"}
    assert all(set(v) == seed | {"label", "advanced", "description"} for v in view)


def test_coerce_text(custom: ServerType) -> None:
    assert coerce_text(custom, "port", "9000") == 9000
    assert coerce_text(custom, "hardcore", "yes") is True
    assert coerce_text(custom, "stop_timeout", "2.5") == 2.5
    with pytest.raises(InvalidInput):
        coerce_text(custom, "port", "http")
    with pytest.raises(InvalidInput):
        coerce_text(custom, "nope", "1")


# ------------------------------------------------------------------ rendering


def test_render_command_substitutes_without_splitting(custom: ServerType, tmp_path: Path) -> None:
    settings = validate_settings(custom, {"title": "My $HOME; rm -rf / {port}"})
    cmd = render_command(custom, settings, server_dir=tmp_path)
    assert cmd.argv == ("./game", "--name", "My $HOME; rm -rf / {port}", "--port", "7777")
    assert cmd.cwd == tmp_path
    assert cmd.env == {"GAME_HOME": f"{tmp_path}/home"}
    assert cmd.environment({"PATH": "/bin"}) == {"PATH": "/bin", "GAME_HOME": f"{tmp_path}/home"}
    assert cmd.stop_command == "quit"
    assert cmd.stop_signal == signal.SIGINT
    assert cmd.ready_pattern is not None
    assert cmd.ready_pattern.search(b"server ready")
    assert cmd.restart == "on-failure"
    assert cmd.stop_timeout == 10.0
    assert cmd.max_restarts == 5
    assert cmd.autostart is False


def test_render_common_settings(custom: ServerType, tmp_path: Path) -> None:
    settings = validate_settings(
        custom,
        {
            "title": "t",
            "restart": "always",
            "stop_timeout": 3,
            "max_restarts": 0,
            "autostart": True,
        },
    )
    cmd = render_command(custom, settings, server_dir=tmp_path)
    assert (cmd.restart, cmd.stop_timeout, cmd.max_restarts, cmd.autostart) == (
        "always",
        3.0,
        0,
        True,
    )


def test_render_demo_game_uses_python(builtins: dict[str, ServerType], tmp_path: Path) -> None:
    demo = builtins["demo-game"]
    settings = validate_settings(demo, {"ready_delay": 0.5, "flood": True})
    cmd = render_command(demo, settings, server_dir=tmp_path)
    assert cmd.argv[:3] == (sys.executable, "-m", "leosuite.templates.demo_game")
    assert "0.5" in cmd.argv
    assert "--flood=true" in cmd.argv
    assert cmd.ready_pattern is not None
    line = b'[12:00:00 INFO]: Done (0.503s)! Server ready on port 25565. For help, type "help"'
    assert cmd.ready_pattern.search(line)


def test_render_minecraft(builtins: dict[str, ServerType], tmp_path: Path) -> None:
    mc = builtins["minecraft"]
    with pytest.raises(InvalidInput) as info:
        validate_settings(mc, {})
    assert info.value.field == "jar"
    settings = validate_settings(mc, {"jar": "paper 1.21.jar", "memory": 1024})
    cmd = render_command(mc, settings, server_dir=tmp_path)
    jar = str(tmp_path / "paper 1.21.jar")  # a path variable: inside the server directory
    assert cmd.argv == ("java", "-Xms1024M", "-Xmx1024M", "-jar", jar, "nogui")
    assert cmd.confined == {"jar": jar}
    assert cmd.ready_pattern is not None
    assert cmd.ready_pattern.search(b'[Server thread/INFO]: Done (3.2s)! For help, type "help"')


def test_command_type_is_split_like_a_shell(
    builtins: dict[str, ServerType], tmp_path: Path
) -> None:
    stype = builtins["command"]
    settings = validate_settings(stype, {"command": "./srv --motd 'hello world' a\\ b $X"})
    cmd = render_command(stype, settings, server_dir=tmp_path)
    assert cmd.argv == ("./srv", "--motd", "hello world", "a b", "$X")


@pytest.mark.parametrize("bad", ["", "   ", "echo 'unclosed"])
def test_command_type_rejects_empty_or_unbalanced(
    builtins: dict[str, ServerType], bad: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_settings(builtins["command"], {"command": bad})
    assert info.value.field == "command"


def test_working_dir_cannot_escape(tmp_path: Path) -> None:
    path = tmp_path / "wd.toml"
    path.write_text(
        'command = ["x"]\nworking_dir = "{sub}"\n[[variables]]\nname = "sub"\ndefault = "data"\n'
    )
    stype = load_type_file(path)
    server_dir = tmp_path / "srv"
    cmd = render_command(stype, validate_settings(stype, {}), server_dir=server_dir)
    assert cmd.cwd == server_dir / "data"
    for bad in ("../..", "/etc", "a/../../b"):
        with pytest.raises(InvalidInput) as info:
            render_command(stype, validate_settings(stype, {"sub": bad}), server_dir=server_dir)
        assert info.value.field == "working_dir"


# ------------------------------------------------------------------ server names


@pytest.mark.parametrize("name", ["a", "survival-1", "my_server", "0", "a" * 64, "_x", "x-"])
def test_valid_server_names(name: str) -> None:
    assert validate_server_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "a/b", "..", ".", "../etc", "a\0b", "a" * 65, "-rf", "Upper", "sp ace", "é", 5, None],
)
def test_invalid_server_names(name: object) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_server_name(name)
    assert info.value.field == "server"


def test_type_file_not_utf8_or_too_big_is_reported(tmp_path: Path) -> None:
    (tmp_path / "binary.toml").write_bytes(b'command = ["\xff"]\n')
    (tmp_path / "huge.toml").write_bytes(b"# " + b"x" * 300_000 + b'\ncommand = ["x"]\n')
    (tmp_path / "Bad Name.toml").write_text('command = ["x"]\n')
    types, errors = load_types(tmp_path)
    assert sorted(e.path.name for e in errors) == ["Bad Name.toml", "binary.toml", "huge.toml"]
    assert set(types) == set(load_builtin_types())


# ------------------------------------------------------------------ paths and users

PATH_TYPE = (
    'command = ["run", "{data}"]\nworking_dir = "{world}"\n'
    '[[variables]]\nname = "data"\ntype = "path"\ndefault = "data.bin"\n'
    '[[variables]]\nname = "world"\ndefault = "."\n'
)


def test_path_variables_render_inside_the_server_directory(tmp_path: Path) -> None:
    path = tmp_path / "paths.toml"
    path.write_text(PATH_TYPE)
    stype = load_type_file(path)
    server_dir = tmp_path / "srv"
    cmd = render_command(stype, validate_settings(stype, {"world": "w"}), server_dir=server_dir)
    assert cmd.argv == ("run", str(server_dir / "data.bin"))
    assert cmd.confined == {
        "data": str(server_dir / "data.bin"),
        "working_dir": str(server_dir / "w"),
    }
    for bad in ("/etc/passwd", "../x", "a/../../x"):
        with pytest.raises(InvalidInput) as info:
            render_command(stype, validate_settings(stype, {"data": bad}), server_dir=server_dir)
        assert info.value.field == "data"
    # An admin-only type's paths are an ADMIN's to choose: rendered, not confined.
    path.write_text("admin_only = true\n" + PATH_TYPE)
    admin = load_type_file(path)
    cmd = render_command(admin, validate_settings(admin, {"data": "/srv/x"}), server_dir=server_dir)
    assert cmd.argv == ("run", "/srv/x")
    assert cmd.confined == {}


def test_the_user_comes_from_the_server_the_type_or_the_default(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    path.write_text('command = ["x"]\n')
    plain = load_type_file(path)
    path.write_text('command = ["x"]\nuser = "games"\n')
    typed = load_type_file(path)
    server_dir = tmp_path / "srv"

    def user_of(stype: ServerType, given: dict[str, object], default: str = "") -> str | None:
        settings = validate_settings(stype, given)
        return render_command(stype, settings, server_dir=server_dir, default_user=default).user

    assert user_of(plain, {}) is None
    assert user_of(plain, {}, "nobody") == "nobody"
    assert user_of(typed, {}, "nobody") == "games"
    assert user_of(typed, {"user": "mc"}, "nobody") == "mc"
    for bad in ("root; rm", "Upper", "a" * 40, "-x"):
        with pytest.raises(InvalidInput) as info:
            validate_settings(plain, {"user": bad})
        assert info.value.field == "user"
    path.write_text('command = ["x"]\nuser = "not a user"\n')
    with pytest.raises(TypeLoadError) as error:
        load_type_file(path)
    assert error.value.key == "user"
    path.write_text('command = ["x"]\n[[variables]]\nname = "user"\ndefault = ""\n')
    with pytest.raises(TypeLoadError, match="reserved"):
        load_type_file(path)

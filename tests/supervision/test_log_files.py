"""Declared log files: a type file or a setting naming a path outside the server's
directory is refused; globs match regular files only, never links or compressed files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from leosuite.errors import InvalidInput
from leosuite.supervision.file_paths import parse_path
from leosuite.supervision.log_files import declared, expand, is_declared
from leosuite.supervision.type_files import TypeLoadError, load_builtin_types, load_type_file
from leosuite.supervision.types import validate_settings

TYPE = 'command = ["x"]\nlog_files = [{}]\n'


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ('"../outside.log"', "'..' is not allowed"),
        ('"/etc/hostname"', "no leading /"),
        ('"logs/../../x.log"', "'..' is not allowed"),
        ('"*/latest.log"', "only the last component"),
        ('"logs/old.log.gz"', "compressed"),
        ('"{nope}"', "unknown placeholder"),
        ('"."', "names the server's directory"),
    ],
)
def test_a_type_file_with_a_bad_log_file_is_refused(tmp_path: Path, entry: str, why: str) -> None:
    with pytest.raises(TypeLoadError) as caught:
        load_type_file(tmp_path / "bad.toml", TYPE.format(entry).encode())
    assert caught.value.key == "log_files"
    assert why in caught.value.message


def test_builtin_declarations() -> None:
    types = load_builtin_types()
    assert types["minecraft"].log_files == ("logs/latest.log",)
    command = types["command"]
    resolved = validate_settings(command, {"command": "x", "log_files": "a.log, Logs/*.log"})
    assert declared(command.log_files, resolved) == [("a.log",), ("Logs", "*.log")]
    assert declared(command.log_files, validate_settings(command, {"command": "x"})) == []
    for bad in ("../a.log", "ok.log, /etc/passwd", "logs/x.zst"):
        with pytest.raises(InvalidInput) as caught:
            validate_settings(command, {"command": "x", "log_files": bad})
        assert caught.value.field == "log_files"


def test_globs_match_regular_files_only(tmp_path: Path) -> None:
    logs = tmp_path / "Logs"
    logs.mkdir()
    for name in ("b.log", "a.log", "c.log.gz", "d.txt"):
        (logs / name).write_bytes(b"x\n")
    (logs / "dir.log").mkdir()
    os.symlink("/etc/hostname", logs / "link.log")
    os.symlink(logs, tmp_path / "linked")
    patterns = [parse_path("Logs/*.log"), parse_path("linked/*.log"), parse_path("late.log")]
    assert expand(tmp_path, patterns) == [("Logs", "a.log"), ("Logs", "b.log"), ("late.log",)]
    assert is_declared(patterns, ("Logs", "b.log"))
    assert is_declared(patterns, ("late.log",))
    assert not is_declared(patterns, ("Logs", "c.log.gz"))
    assert not is_declared(patterns, ("Logs", "*.log"))
    assert not is_declared(patterns, ("Logs", "d.txt"))
    assert not is_declared(patterns, ("Logs", "sub", "a.log"))

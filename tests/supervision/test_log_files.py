"""Declared log files: a type file or a setting naming a path outside the server's
directory is refused; globs match regular files only, never links or compressed files,
from a bounded part of a directory; idle followers are evicted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from leosuite.errors import InvalidInput
from leosuite.supervision.file_paths import parse_path
from leosuite.supervision.log_files import (
    MAX_LOG_FILES,
    MAX_SCANNED,
    declared,
    expand,
    expand_bounded,
    is_declared,
)
from leosuite.supervision.logfile_registry import LogFollowers
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


def test_a_crowded_directory_is_listed_in_part_and_says_so(tmp_path: Path) -> None:
    logs = tmp_path / "Logs"
    logs.mkdir()
    for i in range(MAX_SCANNED + 1):
        (logs / f"{i:05d}.txt").write_bytes(b"")
    (logs / "a.log").write_bytes(b"")
    found, truncated = expand_bounded(tmp_path, [parse_path("Logs/*.log")])
    assert truncated  # the directory has more entries than are looked at
    assert len(found) <= 1
    found, truncated = expand_bounded(tmp_path, [parse_path("Logs/*.txt")])
    assert truncated
    assert len(found) == MAX_LOG_FILES
    assert found == sorted(found)
    (logs / "more").mkdir()
    for name in ("b.log", "a.log"):
        (logs / "more" / name).write_bytes(b"")
    found, truncated = expand_bounded(tmp_path, [parse_path("Logs/more/*.log")])
    assert (found, truncated) == ([("Logs", "more", "a.log"), ("Logs", "more", "b.log")], False)


def test_idle_followers_are_evicted_least_recent_first(tmp_path: Path) -> None:
    followers = LogFollowers(max_followers=2)
    first = followers.get(1, tmp_path, ("a.log",))
    with first.using():
        followers.get(1, tmp_path, ("b.log",))
        followers.get(1, tmp_path, ("c.log",))  # b.log is idle, first is used
        followers.get(2, tmp_path, ("a.log",))  # another server's share
        assert [followers.known(1, (n,)) for n in ("a.log", "b.log", "c.log")] == [
            True,
            False,
            True,
        ]
    followers.get(1, tmp_path, ("d.log",))  # now a.log is the least recent idle one
    assert not followers.known(1, ("a.log",))
    assert (followers.count(1), followers.count(2)) == (2, 1)
    followers.forget_server(1)
    assert (followers.count(1), followers.count(2)) == (0, 1)

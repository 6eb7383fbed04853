"""Kept entries on real files: how directories and logs are set aside, which names are
entries (and of which server), and that listing and removal never follow a symbolic
link planted among them, in them, or in place of where they are kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from leosuite.supervision.kept_logs import (
    list_kept,
    remove_kept,
    select_kept,
    set_aside_dir,
    set_aside_logs,
)

DAY = 86400.0


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    for part in ("servers", "logs"):
        (data / part).mkdir(parents=True)
    return data


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory no purge may touch, with a file in it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    return outside


def server_dir(data: Path, name: str, content: bytes = b"x" * 10000) -> Path:
    path = data / "servers" / name
    path.mkdir()
    (path / "world.dat").write_bytes(content)
    return path


def paths(data: Path) -> dict[str, str]:
    """``{path: server}`` of every kept entry."""
    return {e.path: e.server for e in list_kept(data)}


def test_setting_aside_picks_free_labels(data: Path) -> None:
    server_dir(data, "world")
    assert set_aside_dir(data / "servers" / "world", "world-7") == "world-7"
    server_dir(data, "world")
    assert set_aside_dir(data / "servers" / "world", "world-7") == "world-7.1"
    assert set_aside_dir(data / "servers" / "world", "world-7") is None  # nothing there

    logs = data / "logs" / "world"
    logs.mkdir()
    assert set_aside_logs(logs, 100) is None  # empty: nothing worth keeping
    assert logs.is_dir()
    (logs / "console.log").write_bytes(b"hello\n")
    assert set_aside_logs(logs, 100) == "world.destroyed-100"
    logs.mkdir()
    (logs / "console.log").write_bytes(b"again\n")
    assert set_aside_logs(logs, 100) == "world.destroyed-100-1"
    assert not logs.exists()

    assert paths(data) == {
        "servers/.destroyed/world-7": "world",
        "servers/.destroyed/world-7.1": "world",
        "logs/world.destroyed-100": "world",
        "logs/world.destroyed-100-1": "world",
    }


def test_a_link_planted_as_the_attic_is_replaced_not_followed(data: Path, outside: Path) -> None:
    (data / "servers" / ".destroyed").symlink_to(outside)
    server_dir(data, "world")
    set_aside_dir(data / "servers" / "world", "world-1")
    assert (data / "servers" / ".destroyed").is_dir()
    assert not (data / "servers" / ".destroyed").is_symlink()
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]
    assert paths(data) == {"servers/.destroyed/world-1": "world"}


def test_which_names_are_entries_and_whose(data: Path) -> None:
    attic = data / "servers" / ".destroyed"
    attic.mkdir()
    for label in ("world-12", "my-1-5", "x_y-12.3", "0-0"):
        (attic / label).mkdir()
    for label in ("noid", "Upper-1", "-lead-1", "world-12.x", ".hidden-1", "a" * 65 + "-1"):
        (attic / label).mkdir()
    logs = data / "logs"
    for label in ("world", "my-1.destroyed-99", "a.destroyed-1-2"):
        (logs / label).mkdir()
    for label in ("b.destroyed-", "b.destroyed-x", "b.old-1", "B.destroyed-1"):
        (logs / label).mkdir()
    assert paths(data) == {
        "servers/.destroyed/world-12": "world",
        "servers/.destroyed/my-1-5": "my-1",
        "servers/.destroyed/x_y-12.3": "x_y",
        "servers/.destroyed/0-0": "0",
        "logs/my-1.destroyed-99": "my-1",
        "logs/a.destroyed-1-2": "a",
    }


def test_sizes_and_ages(data: Path) -> None:
    server_dir(data, "big", b"y" * 200_000)
    set_aside_dir(data / "servers" / "big", "big-1")
    (entry,) = list_kept(data)
    assert entry.kind == "files"
    assert entry.size >= 200_000
    now = entry.since
    assert select_kept([entry], servers=None, older_than_days=0, now=now) == [entry]
    assert select_kept([entry], servers=None, older_than_days=1, now=now) == []
    assert select_kept([entry], servers=None, older_than_days=1, now=now + DAY) == [entry]
    assert select_kept([entry], servers={"other"}, older_than_days=None, now=now) == []
    assert select_kept([entry], servers={"big"}, older_than_days=None, now=now) == [entry]


def test_purge_removes_links_never_their_targets(data: Path, outside: Path) -> None:
    attic = data / "servers" / ".destroyed"
    attic.mkdir()
    (attic / "evil-1").symlink_to(outside)  # an entry that is a link to a directory
    (attic / "evil-2").symlink_to(outside / "precious.txt")  # ... to a file
    (attic / "file-3").write_text("a kept entry that is a file")
    inner = attic / "deep-4"
    (inner / "sub").mkdir(parents=True)
    (inner / "sub" / "escape").symlink_to(outside)  # a link inside a kept directory
    (inner / "sub" / "data.bin").write_bytes(b"z" * 5000)
    (data / "logs" / "evil.destroyed-5").symlink_to(outside)
    not_an_entry = attic / "keepme"
    not_an_entry.mkdir()

    listed = list_kept(data)
    assert {e.path for e in listed} == {
        "servers/.destroyed/evil-1",
        "servers/.destroyed/evil-2",
        "servers/.destroyed/file-3",
        "servers/.destroyed/deep-4",
        "logs/evil.destroyed-5",
    }
    result = remove_kept(data, listed)
    assert result.failed == []
    assert sorted(e.path for e in result.removed) == sorted(e.path for e in listed)
    assert sorted(os.listdir(attic)) == ["keepme"]
    assert sorted(os.listdir(data / "logs")) == []
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]
    assert (outside / "precious.txt").read_text() == "keep me"


def test_an_attic_that_is_a_link_is_not_looked_into(data: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "world-1").mkdir(parents=True)
    (data / "servers" / ".destroyed").symlink_to(elsewhere)
    assert list_kept(data) == []
    assert (elsewhere / "world-1").is_dir()


def test_an_entry_replaced_after_listing_is_not_removed(data: Path, outside: Path) -> None:
    server_dir(data, "world")
    set_aside_dir(data / "servers" / "world", "world-1")
    (entry,) = list_kept(data)
    entry_path = data / entry.path
    entry_path.rename(data / "servers" / "moved")
    entry_path.symlink_to(outside)  # swapped for a link between listing and removal
    result = remove_kept(data, [entry])
    assert result.removed == []
    assert [(e.path, why) for e, why in result.failed] == [
        ("servers/.destroyed/world-1", "replaced since it was listed; not removed")
    ]
    assert entry_path.is_symlink()
    assert (outside / "precious.txt").exists()
    # one removed meanwhile is neither removed nor failed
    entry_path.unlink()
    assert remove_kept(data, [entry]).removed == []
    assert remove_kept(data, [entry]).failed == []

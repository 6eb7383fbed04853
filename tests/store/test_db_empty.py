"""An empty store file is a fresh store only where nothing else shows earlier data;
``init`` accepts it on purpose and is refused where the store holds data."""

from __future__ import annotations

from pathlib import Path

import pytest

from leosuite.errors import StoreCorrupt, StoreError
from leosuite.store import SCHEMA_VERSION, Database

pytestmark = pytest.mark.sqlite_only


def _open_and_close(path: Path, **kw: object) -> None:
    db = Database.open(path, **kw)  # type: ignore[arg-type]
    try:
        version = db.call_sync(lambda c: c.execute("PRAGMA user_version").fetchone()[0])
        assert version == SCHEMA_VERSION
    finally:
        db.close()


def test_empty_store_alone_is_a_fresh_store(tmp_path: Path) -> None:
    store = tmp_path / "leosuite.db"
    store.write_bytes(b"")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "leosuite.lock").write_text("1\n")
    (tmp_path / "logs").mkdir()  # empty folders show nothing
    # The operator's own server types, put there before a first start.
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "mine.toml").write_text('description = "mine"\n')
    _open_and_close(store)


@pytest.mark.parametrize("leftover", ["logs/a/console.log", "initial-admin-password"])
def test_empty_store_beside_earlier_data_is_refused(tmp_path: Path, leftover: str) -> None:
    store = tmp_path / "leosuite.db"
    store.write_bytes(b"")
    (tmp_path / leftover).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / leftover).write_text("x")
    with pytest.raises(StoreCorrupt) as info:
        Database.open(store)
    message = info.value.message
    assert "empty (0 bytes)" in message
    assert leftover.split("/")[0] in message
    assert "leosuite serve --init" in message
    assert store.stat().st_size == 0
    assert not (tmp_path / "leosuite.db-wal").exists()


def test_non_empty_wal_beside_an_empty_store_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "leosuite.db"
    store.write_bytes(b"")
    (tmp_path / "leosuite.db-wal").write_bytes(b"frames")
    with pytest.raises(StoreCorrupt, match=r"leosuite\.db-wal"):
        Database.open(store)
    with pytest.raises(StoreError, match="holds data"):
        Database.open(store, init=True)  # the WAL holds data: not an empty store either
    assert (tmp_path / "leosuite.db-wal").read_bytes() == b"frames"


def test_the_data_directory_is_the_one_given(tmp_path: Path) -> None:
    elsewhere = tmp_path / "store"
    elsewhere.mkdir()
    store = elsewhere / "leosuite.db"
    store.write_bytes(b"")
    data = tmp_path / "data"
    (data / "servers" / "world").mkdir(parents=True)
    (data / "servers" / "world" / "level.dat").write_bytes(b"x")
    with pytest.raises(StoreCorrupt, match="servers/"):
        Database.open(store, data_dir=data)
    _open_and_close(store)  # its own directory holds nothing else


def test_init_creates_a_fresh_store_in_place_of_an_empty_one(tmp_path: Path) -> None:
    store = tmp_path / "leosuite.db"
    store.write_bytes(b"")
    (tmp_path / "initial-admin-password").write_text("x")
    _open_and_close(store, init=True)
    _open_and_close(store)  # and from then on it is an ordinary store


def test_init_is_refused_where_the_store_holds_data(tmp_path: Path) -> None:
    store = tmp_path / "leosuite.db"
    _open_and_close(store, init=True)  # none yet: created
    before = store.read_bytes()
    with pytest.raises(StoreError, match="holds data: start without --init") as info:
        Database.open(store, init=True)
    assert not isinstance(info.value, StoreCorrupt)
    assert store.read_bytes() == before

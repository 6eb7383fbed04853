from __future__ import annotations

import pytest

from leosuite.errors import Conflict, InvalidInput, NotFound
from leosuite.store import Database, accounts, kv, servers


@pytest.mark.parametrize("name", ["a", "mc-1", "survival_2", "0", "a" * 64, "_x"])
def test_good_server_names(name: str) -> None:
    assert servers.validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "-a", "A", "a b", "../x", "a/b", "a.b", "a" * 65, "é", "a\n", ".."]
)
def test_bad_server_names(name: str) -> None:
    with pytest.raises(InvalidInput) as info:
        servers.validate_name(name)
    assert info.value.field == "server"


def test_crud(db: Database) -> None:
    settings: dict[str, object] = {"port": 25565, "motd": "hi", "flags": [1, 2], "on": True}
    rec = db.call_sync(
        lambda c: servers.create(c, name="mc", type="minecraft", settings=settings, created_at=5)
    )
    assert rec.settings == settings
    assert rec.next_read_index == 0
    assert rec.owner_id is None
    assert db.call_sync(lambda c: servers.get_by_name(c, "mc")) == rec
    assert db.call_sync(lambda c: servers.get(c, rec.id)) == rec
    assert db.call_sync(lambda c: servers.get_by_name(c, "nope")) is None

    db.call_sync(lambda c: servers.update_settings(c, "mc", {"port": 1}))
    got = db.call_sync(lambda c: servers.get_by_name(c, "mc"))
    assert got is not None
    assert got.settings == {"port": 1}

    db.call_sync(lambda c: servers.create(c, name="alpha", type="t", settings={}, created_at=6))
    assert [s.name for s in db.call_sync(servers.list_all)] == ["alpha", "mc"]

    assert db.call_sync(lambda c: servers.delete(c, "mc")) is True
    assert db.call_sync(lambda c: servers.delete(c, "mc")) is False
    assert [s.name for s in db.call_sync(servers.list_all)] == ["alpha"]


def test_duplicate_and_missing(db: Database) -> None:
    db.call_sync(lambda c: servers.create(c, name="mc", type="t", settings={}, created_at=0))
    with pytest.raises(Conflict):
        db.call_sync(lambda c: servers.create(c, name="mc", type="t", settings={}, created_at=0))
    with pytest.raises(NotFound):
        db.call_sync(lambda c: servers.update_settings(c, "other", {}))
    with pytest.raises(NotFound):
        db.call_sync(lambda c: servers.set_next_read_index(c, "other", 5))
    with pytest.raises(InvalidInput):
        db.call_sync(
            lambda c: servers.create(c, name="Bad Name", type="t", settings={}, created_at=0)
        )
    with pytest.raises(InvalidInput, match="JSON"):
        db.call_sync(
            lambda c: servers.create(c, name="x", type="t", settings={"o": object()}, created_at=0)
        )


def test_next_read_index_never_goes_back(db: Database) -> None:
    db.call_sync(lambda c: servers.create(c, name="mc", type="t", settings={}, created_at=0))
    assert db.call_sync(lambda c: servers.set_next_read_index(c, "mc", 1000)) == 1000
    assert db.call_sync(lambda c: servers.set_next_read_index(c, "mc", 10)) == 1000
    got = db.call_sync(lambda c: servers.get_by_name(c, "mc"))
    assert got is not None
    assert got.next_read_index == 1000
    with pytest.raises(InvalidInput):
        db.call_sync(lambda c: servers.set_next_read_index(c, "mc", -1))


def test_owner_set_null_on_account_delete(db: Database) -> None:
    owner = db.call_sync(
        lambda c: accounts.create(c, username="o", password_hash="h", created_at=0)
    )
    db.call_sync(
        lambda c: servers.create(
            c, name="mc", type="t", settings={}, created_at=0, owner_id=owner.id
        )
    )
    assert db.call_sync(lambda c: servers.get_by_name(c, "mc")).owner_id == owner.id  # type: ignore[union-attr]
    db.call_sync(lambda c: accounts.delete(c, owner.id))
    assert db.call_sync(lambda c: servers.get_by_name(c, "mc")).owner_id is None  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        db.call_sync(
            lambda c: servers.create(c, name="x", type="t", settings={}, created_at=0, owner_id=999)
        )


def test_kv(db: Database) -> None:
    assert db.call_sync(lambda c: kv.get(c, "a")) is None
    db.call_sync(lambda c: kv.set(c, "a", "1"))
    db.call_sync(lambda c: kv.set(c, "a", "2"))
    db.call_sync(lambda c: kv.set(c, "ab", "3"))
    db.call_sync(lambda c: kv.set(c, "b", "4"))
    assert db.call_sync(lambda c: kv.get(c, "a")) == "2"
    assert db.call_sync(lambda c: kv.items(c, "a")) == {"a": "2", "ab": "3"}
    assert db.call_sync(kv.items) == {"a": "2", "ab": "3", "b": "4"}
    assert db.call_sync(lambda c: kv.delete(c, "a")) is True
    assert db.call_sync(lambda c: kv.delete(c, "a")) is False
    assert db.call_sync(lambda c: kv.get(c, "a")) is None

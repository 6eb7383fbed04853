from __future__ import annotations

import sqlite3
from functools import partial

import pytest

from leosuite.errors import Conflict, InvalidInput, NotFound
from leosuite.store import Database, accounts, tokens


@pytest.mark.parametrize(
    "name",
    ["a", "Alice", "bob_2", "x-y.z", "A" * 32, "0", "..", "under_score-dash.dot"],
)
def test_good_usernames(name: str) -> None:
    assert accounts.validate_username(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "with space",
        " lead",
        "trail ",
        "tab\there",
        "nl\n",
        "nul\x00",
        "bell\x07",
        "a" * 33,
        "a" * 200,
        "émile",
        "ünïcode",
        "ǅ",
        "名前",
        "١٢٣",  # Arabic-Indic digits
        "a/b",
        "a@b",
        "semi;colon",
    ],
)
def test_bad_usernames(name: str) -> None:
    with pytest.raises(InvalidInput) as info:
        accounts.validate_username(name)
    assert info.value.field == "username"
    assert "1-32" in str(info.value)


def test_non_string_username() -> None:
    with pytest.raises(InvalidInput):
        accounts.validate_username(42)


def test_parse_flags() -> None:
    assert accounts.parse_flags("HOST,MOD") == {"HOST", "MOD"}
    assert accounts.parse_flags(" host , Mod ,") == {"HOST", "MOD"}
    assert accounts.parse_flags("") == frozenset()
    assert accounts.parse_flags(["admin"]) == {"ADMIN"}
    assert accounts.parse_flags("ADMIN,admin") == {"ADMIN"}
    for bad in ("ROOT", "HOST,OWNER", "HO ST"):
        with pytest.raises(InvalidInput, match="allowed: ADMIN, HOST, MOD") as info:
            accounts.parse_flags(bad)
        assert info.value.field == "flags"


def test_format_flags() -> None:
    assert accounts.format_flags({"MOD", "ADMIN"}) == "ADMIN,MOD"
    assert accounts.format_flags([]) == ""
    with pytest.raises(InvalidInput):
        accounts.format_flags(["nope"])


def test_create_and_get(db: Database) -> None:
    acc = db.call_sync(
        lambda c: accounts.create(
            c, username="Alice", password_hash="H1", created_at=10.5, flags="host,mod"
        )
    )
    assert acc.username == "Alice"
    assert acc.flags == {"HOST", "MOD"}
    assert not acc.locked
    assert db.call_sync(lambda c: accounts.get(c, acc.id)) == acc
    assert db.call_sync(lambda c: accounts.get_by_name(c, "ALICE")) == acc
    assert db.call_sync(lambda c: accounts.get_by_name(c, "alic")) is None
    assert db.call_sync(lambda c: accounts.get(c, acc.id + 1)) is None
    assert db.call_sync(accounts.count) == 1


def _create(conn: sqlite3.Connection, *, username: str) -> accounts.Account:
    return accounts.create(conn, username=username, password_hash="h", created_at=0)


def test_duplicate_username_in_any_case_conflicts(db: Database) -> None:
    db.call_sync(lambda c: accounts.create(c, username="Alice", password_hash="h", created_at=0))
    for name in ("Alice", "alice", "ALICE", "aLiCe"):
        with pytest.raises(Conflict) as info:
            db.call_sync(partial(_create, username=name))
        assert info.value.field == "username"
    assert db.call_sync(accounts.count) == 1


def test_create_validates(db: Database) -> None:
    with pytest.raises(InvalidInput):
        db.call_sync(lambda c: accounts.create(c, username="a b", password_hash="h", created_at=0))
    with pytest.raises(InvalidInput):
        db.call_sync(
            lambda c: accounts.create(
                c, username="ab", password_hash="h", created_at=0, flags=["GOD"]
            )
        )
    assert db.call_sync(accounts.count) == 0


def test_updates_and_list(db: Database) -> None:
    a = db.call_sync(lambda c: accounts.create(c, username="a", password_hash="h", created_at=1))
    b = db.call_sync(lambda c: accounts.create(c, username="b", password_hash="h", created_at=2))
    db.call_sync(lambda c: accounts.set_password_hash(c, a.id, "new"))
    db.call_sync(lambda c: accounts.set_locked(c, a.id, True))
    db.call_sync(lambda c: accounts.set_flags(c, b.id, ["admin"]))
    listed = db.call_sync(accounts.list_all)
    assert [x.username for x in listed] == ["a", "b"]
    assert listed[0].password_hash == "new"
    assert listed[0].locked is True
    assert listed[1].flags == {"ADMIN"}
    db.call_sync(lambda c: accounts.set_locked(c, a.id, False))
    assert db.call_sync(lambda c: accounts.get(c, a.id)).locked is False  # type: ignore[union-attr]


def test_updates_of_missing_account_are_not_found(db: Database) -> None:
    with pytest.raises(NotFound):
        db.call_sync(lambda c: accounts.set_password_hash(c, 99, "x"))
    with pytest.raises(NotFound):
        db.call_sync(lambda c: accounts.set_locked(c, 99, True))
    with pytest.raises(NotFound):
        db.call_sync(lambda c: accounts.set_flags(c, 99, ()))


def test_delete_cascades_to_tokens(db: Database) -> None:
    a = db.call_sync(lambda c: accounts.create(c, username="a", password_hash="h", created_at=1))
    db.call_sync(
        lambda c: tokens.insert(c, token_hash="t" * 64, account_id=a.id, created_at=1, expires_at=9)
    )
    assert db.call_sync(lambda c: accounts.delete(c, a.id)) is True
    assert db.call_sync(lambda c: accounts.delete(c, a.id)) is False
    assert db.call_sync(lambda c: tokens.get_by_hash(c, "t" * 64)) is None


def test_ids_are_not_reused(db: Database) -> None:
    a = db.call_sync(lambda c: accounts.create(c, username="a", password_hash="h", created_at=1))
    db.call_sync(lambda c: accounts.delete(c, a.id))
    b = db.call_sync(lambda c: accounts.create(c, username="a", password_hash="h", created_at=1))
    assert b.id > a.id

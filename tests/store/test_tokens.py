from __future__ import annotations

import hashlib

import pytest

from leosuite.errors import Conflict, NotFound
from leosuite.store import Database, accounts, tokens


@pytest.fixture
def account_id(db: Database) -> int:
    return db.call_sync(
        lambda c: accounts.create(c, username="alice", password_hash="h", created_at=0)
    ).id


def _insert(db: Database, account_id: int, name: str, expires_at: float) -> tokens.Token:
    return db.call_sync(
        lambda c: tokens.insert(
            c,
            token_hash=tokens.hash_token(name),
            account_id=account_id,
            created_at=0,
            expires_at=expires_at,
            last_ip="127.0.0.1",
        )
    )


def test_hash_token() -> None:
    assert tokens.hash_token("abc") == hashlib.sha256(b"abc").hexdigest()
    assert len(tokens.hash_token("x")) == 64


def test_insert_get_expiry_delete(db: Database, account_id: int) -> None:
    tok = _insert(db, account_id, "one", 100.0)
    assert db.call_sync(lambda c: tokens.get_by_hash(c, tok.token_hash)) == tok
    assert db.call_sync(lambda c: tokens.set_expiry(c, tok.token_hash, 200.0, last_ip="::1"))
    got = db.call_sync(lambda c: tokens.get_by_hash(c, tok.token_hash))
    assert got is not None
    assert (got.expires_at, got.last_ip) == (200.0, "::1")
    assert db.call_sync(lambda c: tokens.set_expiry(c, tok.token_hash, 300.0))
    got = db.call_sync(lambda c: tokens.get_by_hash(c, tok.token_hash))
    assert got is not None
    assert (got.expires_at, got.last_ip) == (300.0, "::1")
    assert db.call_sync(lambda c: tokens.delete_by_hash(c, tok.token_hash)) is True
    assert db.call_sync(lambda c: tokens.delete_by_hash(c, tok.token_hash)) is False
    assert db.call_sync(lambda c: tokens.set_expiry(c, tok.token_hash, 1.0)) is False


def test_insert_errors(db: Database, account_id: int) -> None:
    _insert(db, account_id, "one", 100.0)
    with pytest.raises(Conflict):
        _insert(db, account_id, "one", 100.0)
    with pytest.raises(NotFound):
        _insert(db, account_id + 1, "two", 100.0)


def test_delete_for_account(db: Database, account_id: int) -> None:
    other = db.call_sync(
        lambda c: accounts.create(c, username="bob", password_hash="h", created_at=0)
    ).id
    for i in range(3):
        _insert(db, account_id, f"a{i}", 100.0)
    _insert(db, other, "b", 100.0)
    assert len(db.call_sync(lambda c: tokens.list_for_account(c, account_id))) == 3
    assert db.call_sync(lambda c: tokens.delete_for_account(c, account_id)) == 3
    assert db.call_sync(lambda c: tokens.list_for_account(c, account_id)) == []
    assert len(db.call_sync(lambda c: tokens.list_for_account(c, other))) == 1


def test_purge_expired(db: Database, account_id: int) -> None:
    _insert(db, account_id, "old", 10.0)
    _insert(db, account_id, "edge", 20.0)
    _insert(db, account_id, "new", 30.0)
    assert db.call_sync(lambda c: tokens.purge_expired(c, 20.0)) == 2
    left = db.call_sync(lambda c: tokens.list_for_account(c, account_id))
    assert [t.token_hash for t in left] == [tokens.hash_token("new")]
    assert db.call_sync(lambda c: tokens.purge_expired(c, 20.0)) == 0


def test_delete_used_from(db: Database, account_id: int) -> None:
    kept = _insert(db, account_id, "kept", 100.0)
    gone = _insert(db, account_id, "gone", 100.0)
    db.call_sync(lambda c: tokens.set_expiry(c, gone.token_hash, 100.0, last_ip="10.0.0.7"))
    unknown = _insert(db, account_id, "unknown", 100.0)
    db.call_sync(lambda c: tokens.set_expiry(c, unknown.token_hash, 100.0, last_ip=""))
    seen: list[str] = []

    def covered(ip: str) -> bool:
        seen.append(ip)
        return ip.startswith("10.")

    assert db.call_sync(lambda c: tokens.delete_used_from(c, covered)) == [gone.token_hash]
    assert sorted(seen) == ["10.0.0.7", "127.0.0.1"]  # a token without an address is never asked
    left = db.call_sync(lambda c: tokens.list_for_account(c, account_id))
    assert [t.token_hash for t in left] == [kept.token_hash, unknown.token_hash]

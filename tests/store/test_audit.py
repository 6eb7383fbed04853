from __future__ import annotations

import sqlite3

import pytest

from leosuite.errors import InvalidInput
from leosuite.store import Database, audit


def _fill(db: Database) -> list[int]:
    def fill(conn: sqlite3.Connection) -> list[int]:
        ids = []
        for i in range(10):
            ids.append(
                audit.append(
                    conn,
                    timestamp=100.0 + i,
                    level="info" if i % 2 else "warning",
                    topic="auth",
                    message=f"m{i}",
                    session=("Lobby" if i < 4 else "ÉTÉ") if i % 3 else "",
                    user_id=i if i % 2 else None,
                    user_ip="10.0.0.1",
                    user_name=f"u{i}",
                )
            )
        return ids

    return db.call_sync(fill)


def test_append_and_page_newest_first(db: Database) -> None:
    ids = _fill(db)
    assert ids == sorted(ids)
    first = db.call_sync(lambda c: audit.page(c, limit=3))
    assert [e.message for e in first] == ["m9", "m8", "m7"]
    second = db.call_sync(lambda c: audit.page(c, offset=3, limit=3))
    assert [e.message for e in second] == ["m6", "m5", "m4"]
    oldest = db.call_sync(lambda c: audit.page(c, limit=2, newest_first=False))
    assert [e.message for e in oldest] == ["m0", "m1"]
    assert db.call_sync(lambda c: audit.page(c, offset=10, limit=5)) == []
    assert db.call_sync(audit.count) == 10


def test_entry_fields_and_user_triple(db: Database) -> None:
    _fill(db)
    entries = {e.message: e for e in db.call_sync(lambda c: audit.page(c, limit=100))}
    m1 = entries["m1"]
    assert (m1.timestamp, m1.level, m1.topic, m1.session) == (101.0, "info", "auth", "Lobby")
    assert m1.user_triple == "1;10.0.0.1;u1"
    assert entries["m0"].user_triple == ";10.0.0.1;u0"


def test_unknown_parts_of_triple_are_empty(db: Database) -> None:
    db.call_sync(lambda c: audit.append(c, timestamp=1, level="error", topic="t", message="m"))
    (entry,) = db.call_sync(lambda c: audit.page(c, limit=5))
    assert entry.user_triple == ";;"


def test_filters(db: Database) -> None:
    _fill(db)
    lobby = db.call_sync(lambda c: audit.page(c, limit=100, session="lobby"))
    assert [e.message for e in lobby] == ["m2", "m1"]
    # case-insensitive beyond ASCII
    summer = db.call_sync(lambda c: audit.page(c, limit=100, session="été"))
    assert [e.message for e in summer] == ["m8", "m7", "m5", "m4"]
    assert db.call_sync(lambda c: audit.count(c, session="ÉTÉ")) == 4
    after = db.call_sync(lambda c: audit.page(c, limit=100, after=106.0))
    assert [e.message for e in after] == ["m9", "m8", "m7"]
    both = db.call_sync(lambda c: audit.page(c, limit=100, session="Été", after=106.0))
    assert [e.message for e in both] == ["m8", "m7"]
    assert db.call_sync(lambda c: audit.count(c, session="Été", after=106.0)) == 2
    assert db.call_sync(lambda c: audit.count(c, session="nowhere")) == 0


def test_bad_level_and_paging_arguments(db: Database) -> None:
    with pytest.raises(InvalidInput):
        db.call_sync(lambda c: audit.append(c, timestamp=1, level="loud", topic="t", message="m"))
    with pytest.raises(InvalidInput):
        db.call_sync(lambda c: audit.page(c, offset=-1, limit=1))
    with pytest.raises(InvalidInput):
        db.call_sync(lambda c: audit.page(c, limit=-1))


def test_long_fields_are_bounded(db: Database) -> None:
    db.call_sync(
        lambda c: audit.append(
            c, timestamp=1, level="info", topic="t" * 1000, message="m" * 100_000, session="s" * 999
        )
    )
    (entry,) = db.call_sync(lambda c: audit.page(c, limit=1))
    assert len(entry.message) == audit.MAX_MESSAGE_CHARS
    assert len(entry.topic) == audit.MAX_FIELD_CHARS
    assert len(entry.session) == audit.MAX_FIELD_CHARS


def test_purge_older_than(db: Database) -> None:
    _fill(db)
    assert db.call_sync(lambda c: audit.purge(c, older_than=103.0)) == 3
    remaining = db.call_sync(lambda c: audit.page(c, limit=100, newest_first=False))
    assert [e.message for e in remaining][:1] == ["m3"]
    assert len(remaining) == 7


def test_purge_keep_last(db: Database) -> None:
    _fill(db)
    assert db.call_sync(lambda c: audit.purge(c, keep_last=4)) == 6
    remaining = db.call_sync(lambda c: audit.page(c, limit=100))
    assert [e.message for e in remaining] == ["m9", "m8", "m7", "m6"]


def test_purge_both_limits_and_none(db: Database) -> None:
    _fill(db)
    assert db.call_sync(lambda c: audit.purge(c)) == 0
    # keeps at most 5 and nothing older than 107: m7, m8, m9 remain
    assert db.call_sync(lambda c: audit.purge(c, older_than=107.0, keep_last=5)) == 7
    assert db.call_sync(audit.count) == 3
    assert db.call_sync(lambda c: audit.purge(c, keep_last=0)) == 3
    with pytest.raises(InvalidInput):
        db.call_sync(lambda c: audit.purge(c, keep_last=-1))

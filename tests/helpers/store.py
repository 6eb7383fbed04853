"""The store a test opens without a daemon, on the run's back-end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leosuite.store.db import Database
from leosuite.store.opening import open_store
from tests.helpers.daemon import make_settings

__all__ = ["open_test_store", "store_sql"]


def open_test_store(data_dir: Path) -> Database:
    """The store of ``data_dir``: its SQLite file ``leosuite.db``, or with
    ``--store=postgresql`` the data directory's database (see tests/conftest.py)."""
    return open_store(make_settings(data_dir))


def store_sql(data_dir: Path, statement: str, *params: object) -> list[tuple[Any, ...]]:
    """Run one statement (SQLite's dialect, as the table modules write it) in the store
    of ``data_dir`` and commit it; the rows it answers."""
    db = open_test_store(data_dir)
    try:
        return db.call_sync(lambda conn: list(conn.execute(statement, params).fetchall()))
    finally:
        db.close()

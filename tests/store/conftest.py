from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from leosuite.store import Database


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "leosuite.db"


@pytest.fixture
def db(request: pytest.FixtureRequest, store_backend: str, db_path: Path) -> Iterator[Database]:
    """The store on the back-end of the run (``--store``)."""
    if store_backend == "postgresql":
        from leosuite.store.postgres import PostgresDatabase

        database: Database = PostgresDatabase.connect(request.getfixturevalue("postgres_url"))
    else:
        database = Database.open(db_path)
    yield database
    database.close()

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from leosuite.store import Database


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "leosuite.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    database = Database.open(db_path)
    yield database
    database.close()

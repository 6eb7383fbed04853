"""Fixtures of the cluster tests: a fresh PostgreSQL database per test on the run's own
PostgreSQL server, started on demand whatever ``--store`` says (nodes share a store
only on PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.helpers.postgres import find_bin_dir


@pytest.fixture
def cluster_store_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty database the nodes of one test share, dropped afterwards."""
    if find_bin_dir() is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    url: str = request.getfixturevalue("postgres_url")
    return url

"""Shared fixtures: settings for a cheap, isolated daemon and a running in-process daemon;
the store back-end the store fixtures use (``--store=postgresql`` or
``LEOSUITE_TEST_STORE=postgresql``: a PostgreSQL server of the tests' own)."""

from __future__ import annotations

import gc
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from leosuite.settings import Settings
from tests.helpers import daemon as daemon_helpers
from tests.helpers.daemon import RunningDaemon, make_settings, running_daemon
from tests.helpers.postgres import PostgresServer, find_bin_dir

# Tests stop the daemons and commands they start with SIGINT: started from a shell's
# background job (which ignores it, and children inherit that), restore the default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store",
        choices=("sqlite", "postgresql"),
        default=os.environ.get("LEOSUITE_TEST_STORE") or "sqlite",
        help="the store back-end of the store fixtures (env LEOSUITE_TEST_STORE)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    backend = config.getoption("--store")
    for item in items:
        if backend != "sqlite" and item.get_closest_marker("sqlite_only"):
            item.add_marker(pytest.mark.skip(reason="tests the SQLite back-end only"))
        if backend != "postgresql" and item.get_closest_marker("postgresql_only"):
            item.add_marker(pytest.mark.skip(reason="runs with --store=postgresql only"))


def pytest_collection_finish(session: pytest.Session) -> None:
    """What the run imported and collected lives until it ends: out of the cycle
    collector's walk, so that each full collection (the daemons' and the tests' own)
    looks at what the tests made since."""
    gc.freeze()


@pytest.fixture(scope="session")
def store_backend(pytestconfig: pytest.Config) -> str:
    return str(pytestconfig.getoption("--store"))


@pytest.fixture(scope="session")
def postgres_server(store_backend: str) -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole run (Debian's postgresql package)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.fail("no PostgreSQL under /usr/lib/postgresql: apt-get install postgresql")
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the tests' PostgreSQL server, dropped afterwards."""
    url = postgres_server.new_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(autouse=True)
def _store_per_data_dir(request: pytest.FixtureRequest, store_backend: str) -> Iterator[None]:
    """On PostgreSQL, ``make_settings`` without a ``store`` section gives each data
    directory a database of its own (a copy of a freshly migrated store; the same data
    directory, the same database), dropped when the test ends."""
    if store_backend != "postgresql":
        yield
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    urls: dict[Path, str] = {}

    def store_for(data_dir: Path) -> dict[str, str]:
        key = data_dir.resolve()
        if key not in urls:
            urls[key] = server.new_database(server.store_template())
        return {"url": urls[key]}

    daemon_helpers.store_for = store_for
    try:
        yield
    finally:
        daemon_helpers.store_for = None
        for url in urls.values():
            server.drop_database(url)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings of a daemon of the test's own, its store on the run's back-end."""
    return make_settings(tmp_path / "data")


@pytest.fixture
async def daemon(settings: Settings) -> AsyncIterator[RunningDaemon]:
    async with running_daemon(settings) as running:
        yield running

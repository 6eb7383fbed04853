"""``store.url`` and ``LEOSUITE_STORE_URL``: which back-end :func:`open_store` opens, the
URL checked at start-up and kept out of ``config show``."""

from __future__ import annotations

from pathlib import Path

import pytest

from leosuite.errors import ConfigError, StoreError
from leosuite.settings import load_settings, settings_as_dict
from leosuite.store import Database
from leosuite.store.opening import open_store
from leosuite.store.postgres import PostgresDatabase
from tests.helpers.daemon import make_settings

SECRET_URL = "postgresql://leo:s3cret@db.example:5432/leosuite"


def test_the_environment_sets_the_url_and_config_show_masks_it() -> None:
    settings = load_settings(None, environ={"LEOSUITE_STORE_URL": SECRET_URL})
    assert settings.store.url == SECRET_URL
    assert settings_as_dict(settings)["store"]["url"] == "********"
    assert "s3cret" not in str(settings_as_dict(settings))


@pytest.mark.parametrize(
    "url", ["mysql://x/y", "sqlite:///tmp/x.db", "db.example:5432", " postgresql://x/y"]
)
def test_a_url_that_is_not_postgresql_stops_start_up(url: str) -> None:
    with pytest.raises(ConfigError, match=r"store\.url"):
        load_settings(None, environ={"LEOSUITE_STORE_URL": url})


@pytest.mark.parametrize("value", ["-1", "3601", "1e9"])
def test_retry_for_has_a_range(value: str) -> None:
    with pytest.raises(ConfigError, match=r"store\.retry_for"):
        load_settings(None, environ={"LEOSUITE_STORE_RETRY_FOR": value})


def test_without_a_url_the_store_is_the_sqlite_file(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, store={})  # on every run's back-end
    db = open_store(settings, data_dir=tmp_path)
    try:
        assert type(db) is Database
        assert db.path == tmp_path / "leosuite.db"
    finally:
        db.close()


def test_with_a_url_the_store_is_postgresql(tmp_path: Path) -> None:
    closed = "postgresql://leo:s3cret@127.0.0.1:1/leosuite?connect_timeout=2"
    settings = make_settings(tmp_path, store={"url": closed})
    with pytest.raises(StoreError, match="cannot connect") as info:
        open_store(settings, data_dir=tmp_path)
    assert "s3cret" not in str(info.value)
    assert not (tmp_path / "leosuite.db").exists()


@pytest.mark.postgresql_only
def test_open_store_connects_to_postgresql(postgres_url: str, tmp_path: Path) -> None:
    db = open_store(make_settings(tmp_path, store={"url": postgres_url}), data_dir=tmp_path)
    try:
        assert isinstance(db, PostgresDatabase)
        assert not (tmp_path / "leosuite.db").exists()
    finally:
        db.close()

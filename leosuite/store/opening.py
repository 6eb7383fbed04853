"""Opening the store the settings name: PostgreSQL when ``store.url`` is set, else the
SQLite file at ``store.path`` (default: ``leosuite.db`` in the data directory)."""

from __future__ import annotations

from pathlib import Path

from ..settings import Settings
from .db import Database

__all__ = ["open_store"]


def open_store(settings: Settings, *, data_dir: Path | None = None, init: bool = False) -> Database:
    """Open, check and migrate the configured store (blocking: run it in a thread)."""
    if settings.store.url:
        from .postgres import PostgresDatabase  # only a PostgreSQL store needs psycopg

        return PostgresDatabase.connect(
            settings.store.url, data_dir=data_dir, init=init, retry_for=settings.store.retry_for
        )
    return Database.open(
        settings.db_path, data_dir=data_dir, init=init, cache_kib=settings.store.cache_kib
    )

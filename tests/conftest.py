"""Shared fixtures: settings for a cheap, isolated daemon and a running in-process daemon."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from leosuite.settings import Settings
from tests.helpers.daemon import RunningDaemon, make_settings, running_daemon


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
async def daemon(settings: Settings) -> AsyncIterator[RunningDaemon]:
    async with running_daemon(settings) as running:
        yield running

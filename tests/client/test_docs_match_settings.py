"""Settings behave as docs/configuration.md says: every number has a range and a value
outside it stops start-up naming the key; ``config show`` masks only secrets; the
``LEOSUITE_*`` variables the docs tell users to export for the test scripts are not
taken for settings."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from leosuite.errors import ConfigError
from leosuite.settings import SECRET_SETTINGS, Settings, load_settings, settings_as_dict
from leosuite.settings_ranges import RANGES, Range, numeric_keys
from tests.helpers.daemon import base_env

#: Settings that other settings bound: a value at the end of its range comes with these.
COMPANIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("auth.pow_difficulty", "high"): {"auth.pow_max_difficulty": 64},
    ("auth.pow_max_difficulty", "low"): {"auth.pow_difficulty": 0},
    ("auth.hash_parallelism", "high"): {"auth.hash_memory_kib": 8 * (2**24 - 1)},
    ("ws.console_batch_bytes", "high"): {"ws.console_max_lag": 2**40},
    ("ws.console_max_lag", "low"): {"ws.console_batch_bytes": 1},
    ("node.heartbeat_interval", "high"): {"node.heartbeat_timeout": 86400},
    ("node.heartbeat_timeout", "low"): {"node.heartbeat_interval": 0.01},
}


def field_type(key: str) -> Any:
    section, name = key.split(".")
    section_type = next(f.type for f in msgspec.structs.fields(Settings) if f.name == section)
    return next(f.type for f in msgspec.structs.fields(section_type) if f.name == name)


def is_int(key: str) -> bool:
    kind = field_type(key)
    return kind is int or int in getattr(kind, "__args__", ())


def load(values: dict[str, Any]) -> Settings:
    overrides: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        section, name = key.split(".")
        overrides.setdefault(section, {})[name] = value
    return load_settings(None, environ={}, overrides=overrides)


def outside(key: str, limits: Range) -> list[float]:
    """Values just outside the range, and what is outside every range."""
    step = 1 if is_int(key) else 1e-9 * max(1.0, abs(limits.low))
    below = limits.low if limits.above else limits.low - step
    values: list[float] = [below, limits.high + (1 if is_int(key) else limits.high * 1e-9), -1]
    if not is_int(key):
        values += [math.nan, math.inf, -math.inf]
    return [v for v in values if not limits.holds(v)]


def test_every_numeric_setting_has_a_range() -> None:
    assert set(numeric_keys(Settings)) == set(RANGES)


@pytest.mark.parametrize("key", sorted(RANGES))
def test_a_value_outside_the_range_stops_start_up_naming_the_key(key: str) -> None:
    limits = RANGES[key]
    for value in outside(key, limits):
        if is_int(key):
            value = int(value)
        with pytest.raises(ConfigError) as refused:
            load({key: value})
        assert refused.value.field == key, (key, value, refused.value.message)
        assert limits.describe() in refused.value.message


@pytest.mark.parametrize("key", sorted(RANGES))
def test_the_ends_of_the_range_are_accepted(key: str) -> None:
    limits = RANGES[key]
    low = limits.low + (1 if is_int(key) else 0.5) if limits.above else limits.low
    for end, value in (("low", low), ("high", limits.high)):
        if is_int(key):
            value = int(value)
        settings = load({key: value, **COMPANIONS.get((key, end), {})})
        section, name = key.split(".")
        assert getattr(getattr(settings, section), name) == value


async def leosuite(*argv: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        [sys.executable, "-m", "leosuite", *argv],
        env=base_env(**env),
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )


async def test_a_negative_long_poll_limit_stops_serve(tmp_path: Path) -> None:
    """The issue's example: ``servers.log_max_wait = -1`` made long polls answer 500."""
    data = ["--data-dir", str(tmp_path / "data"), "--http", "127.0.0.1:0"]
    by_env = await leosuite("serve", *data, LEOSUITE_SERVERS_LOG_MAX_WAIT="-1")
    assert by_env.returncode == 1
    assert by_env.stderr.decode().startswith("leosuite: servers.log_max_wait: must be at least 0")
    config = tmp_path / "leosuite.toml"
    config.write_text("[community]\nroom_idle_warning = -5.0\n")
    by_file = await leosuite("serve", *data, "--config", str(config))
    assert by_file.returncode == 1
    assert b"community.room_idle_warning: must be at least 0" in by_file.stderr
    assert not (tmp_path / "data" / "leosuite.db").exists()


async def test_config_show_masks_no_setting_that_is_not_a_secret() -> None:
    shown = await leosuite("config", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["auth"]["min_password_length"] == 8
    assert "********" not in shown.stdout.decode()
    assert data == settings_as_dict(load_settings(None, environ=base_env()), mask_secrets=False)


def test_only_the_listed_secrets_are_masked() -> None:
    every = {
        f"{section}.{key}" for section, keys in settings_as_dict(Settings()).items() for key in keys
    }
    assert every >= SECRET_SETTINGS
    masked = settings_as_dict(Settings(), secrets={"auth.pow_count", "http.listen"})
    assert masked["auth"]["pow_count"] == "********"
    assert masked["http"]["listen"] == "********"
    plain = settings_as_dict(Settings(), mask_secrets=False)
    for section, values in plain.items():
        for key, value in values.items():
            if f"{section}.{key}" not in ("auth.pow_count", "http.listen"):
                assert masked[section][key] == value


async def test_the_test_scripts_variables_are_not_settings(tmp_path: Path) -> None:
    """docs/dashboard.md tells users to export these for the browser tests."""
    tools = {
        "LEOSUITE_CHROMIUM": "/usr/bin/chromium",
        "LEOSUITE_TEST_OUTPUT": str(tmp_path / "out"),
        "LEOSUITE_DOC_SCREENSHOTS": "1",
        "LEOSUITE_BENCH_SRC": str(tmp_path),
    }
    shown = await leosuite("config", "show", **tools)
    assert shown.returncode == 0, shown.stderr
    env = {**tools, "HOME": str(tmp_path)}
    client = await leosuite("server", "list", **env)
    assert client.returncode == 1
    assert client.stderr.decode().startswith("leosuite: not logged in")
    typo = await leosuite("config", "show", LEOSUITE_CHROMIUMM="x")
    assert typo.returncode == 1
    assert b"LEOSUITE_CHROMIUMM does not name a setting" in typo.stderr

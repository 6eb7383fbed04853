from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from leosuite.errors import ConfigError
from leosuite.settings import RESERVED_ENV, Settings, load_settings, settings_as_dict

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def all_keys() -> list[str]:
    keys = []
    for section in msgspec.structs.fields(Settings):
        for field in msgspec.structs.fields(section.type):
            keys.append(f"{section.name}.{field.name}")
    return keys


def test_every_setting_is_documented() -> None:
    text = DOC.read_text()
    documented = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", text, re.M))
    keys = set(all_keys())
    assert keys - documented == set(), "settings missing from docs/configuration.md"
    assert documented - keys == set(), "docs/configuration.md documents settings that do not exist"


def test_documented_defaults_match_the_code() -> None:
    text = DOC.read_text()
    defaults = settings_as_dict(Settings(), mask_secrets=False)
    for key, default in re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \| `([^`]*)` \|", text, re.M):
        section, name = key.split(".")
        value = defaults[section][name]
        shown = msgspec.json.encode(value).decode()
        if isinstance(value, str) and value:
            shown = value
        assert shown == default, f"{key}: documented {default!r}, code says {shown!r}"


def test_reserved_environment_is_documented() -> None:
    text = DOC.read_text()
    for name in RESERVED_ENV:
        assert f"`{name}`" in text


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[http]\nlisten = "127.0.0.1:1000"\n[auth]\npow_count = 3\n')
    s = load_settings(config, environ={})
    assert s.http.listen == "127.0.0.1:1000"
    assert s.auth.pow_count == 3
    s = load_settings(config, environ={"LEOSUITE_HTTP_LISTEN": "127.0.0.1:2000"})
    assert s.http.listen == "127.0.0.1:2000"
    assert s.auth.pow_count == 3
    s = load_settings(
        config,
        environ={"LEOSUITE_HTTP_LISTEN": "127.0.0.1:2000"},
        overrides={"http": {"listen": "127.0.0.1:3000"}},
    )
    assert s.http.listen == "127.0.0.1:3000"
    assert load_settings(
        None, environ={"LEOSUITE_WS_ALLOWED_ORIGINS": "a, b"}
    ).ws.allowed_origins == [
        "a",
        "b",
    ]


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[http]\nlisen = '127.0.0.1:1'\n", "http.lisen"),
        ("[bogus]\nx = 1\n", "bogus"),
        ("[auth]\npow_count = 'four'\n", "auth.pow_count"),
        ("[http]\nlisten = 'example.com:80'\n", "http.listen"),
        ("[http]\nlisten = '127.0.0.1:99999'\n", "http.listen"),
        ("[http]\nlisten = '127.0.0.1'\n", "http.listen"),
        ("[auth]\npow_count = 0\n", "auth.pow_count"),
        ("[daemon]\nlog_level = 'loud'\n", "daemon.log_level"),
        ("[ws]\nconsole_max_lag = 1000\nconsole_batch_bytes = 4096\n", "ws.console_max_lag"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, toml: str, key: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(config, environ={})
    assert info.value.field == key
    assert key in str(info.value)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[http\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(config, environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", environ={})


@pytest.mark.parametrize(
    ("environ", "field"),
    [
        ({"LEOSUITE_HTTP_LISEN": "x"}, "LEOSUITE_HTTP_LISEN"),
        ({"LEOSUITE_NOPE_X": "1"}, "LEOSUITE_NOPE_X"),
        ({"LEOSUITE_AUTH_POW_COUNT": "many"}, "LEOSUITE_AUTH_POW_COUNT"),
    ],
)
def test_bad_environment_names_the_variable(environ: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ=environ)
    assert info.value.field == field


def test_reserved_environment_is_not_a_setting() -> None:
    s = load_settings(None, environ={"LEOSUITE_ADMIN_PASSWORD": "x" * 10})
    assert s == Settings()


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(AttributeError):
        s.http.listen = "x"  # type: ignore[misc]


@pytest.mark.parametrize(("cpus", "hashes"), [(1, 1), (2, 1), (4, 3), (5, 4), (64, 4)])
def test_hashes_at_once_leave_the_daemon_a_core(
    monkeypatch: pytest.MonkeyPatch, cpus: int, hashes: int
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(cpus)))
    assert Settings().auth.hash_concurrency == hashes
    overridden = load_settings(None, environ={"LEOSUITE_AUTH_HASH_CONCURRENCY": "8"})
    assert overridden.auth.hash_concurrency == 8

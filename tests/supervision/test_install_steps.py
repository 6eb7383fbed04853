"""Install steps in type files: what a type file may declare, how steps render with a
server's settings, and the daemon settings they use."""

from __future__ import annotations

from pathlib import Path

import pytest

from leosuite.errors import ConfigError, InvalidInput
from leosuite.settings import load_settings
from leosuite.supervision.install_steps import install_key, render_install, user_controlled
from leosuite.supervision.type_files import TypeLoadError, load_builtin_types, load_type_file
from leosuite.supervision.types import validate_settings

HEAD = 'command = ["{python}", "x"]\n[[variables]]\nname = "flag"\ntype = "bool"\ndefault = false\n'


def _load(tmp_path: Path, body: str) -> object:
    path = tmp_path / "t.toml"
    path.write_text(HEAD + body)
    return load_type_file(path)


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ('[[install]]\nrun = ["a"]\nwrite = {to = "a", content = ""}\n', "install[0]",
         "exactly one of download, minecraft_jar, write and run"),
        ("[[install]]\nrun = []\n", "install[0]", "run must not be empty"),
        ('[[install]]\nrun = ["a"]\ntimeout = 0\n', "install[0]", "timeout must be more than 0"),
        ('[[install]]\ndownload = {url = "http://x/", to = "a"}\n', "install[0].download",
         "exactly one of sha256 and sha1"),
        ('[[install]]\nrun = ["{nope}"]\n', "install[0]", "unknown placeholder {nope}"),
        ('[[install]]\nrun = ["a"]\nrequire = "user"\n', "install[0].require",
         "'user' is not a bool variable"),
        ('[[install]]\nrun = ["a"]\nshell = true\n', "install[0].shell", "unknown field"),
        ('[[install]]\ndownload = {url = "{flag}", to = "a", sha1 = "' + "0" * 40 + '"}\n',
         "install[0].download.url", "may not stand in the scheme or host"),
        ('[[install]]\ndownload = {url = "http://{flag}/x", to = "a", sha1 = "' + "0" * 40
         + '"}\n', "install[0].download.url", "may not stand in the scheme or host"),
        ('[[install]]\ndownload = {url = "http://a:{flag}/x", to = "a", sha1 = "' + "0" * 40
         + '"}\n', "install[0].download.url", "may not stand in the scheme or host"),
        ('[[install]]\ndownload = {url = "http://u@{flag}.org/", to = "a", sha1 = "' + "0" * 40
         + '"}\n', "install[0].download.url", "may not stand in the scheme or host"),
    ],
)  # fmt: skip
def test_a_broken_step_is_reported_with_its_key(
    tmp_path: Path, body: str, key: str, message: str
) -> None:
    with pytest.raises(TypeLoadError) as info:
        _load(tmp_path, body)
    assert info.value.key == key
    assert message in info.value.message


def test_steps_render_with_the_settings(tmp_path: Path) -> None:
    stype = load_builtin_types()["minecraft"]
    settings = validate_settings(stype, {"jar": "a/mc.jar", "version": "1.20.1"})
    steps = render_install(stype, settings, python="py", server_dir=str(tmp_path))
    assert [(s.kind, s.to, s.version) for s in steps] == [
        ("write", "eula.txt", ""),
        ("minecraft_jar", "server.jar", "1.20.1"),
    ]
    assert not user_controlled(stype)  # the version picks from the operator's manifest
    assert steps[0].refused.startswith("accept the Minecraft EULA (https://aka.ms/MinecraftEULA)")
    accepted = render_install(
        stype, {**settings, "eula": True}, python="py", server_dir=str(tmp_path)
    )
    assert accepted[0].refused == ""
    newer = render_install(
        stype, {**settings, "version": "1.21.4"}, python="py", server_dir=str(tmp_path)
    )
    assert install_key(newer) != install_key(steps)
    assert install_key(accepted) == install_key(steps)  # the same work: nothing to redo


VARIABLE = '[[variables]]\nname = "v"\ndefault = "x"\n'
SHA = "0" * 64


@pytest.mark.parametrize(
    ("step", "controlled"),
    [
        (f'download = {{url = "https://a.org/{{v}}", to = "f", sha256 = "{SHA}"}}', True),
        ('download = {url = "https://a.org/f", to = "f", sha256 = "{v}"}', True),
        (f'download = {{url = "https://a.org/f", to = "{{v}}", sha256 = "{SHA}"}}', True),
        (f'download = {{url = "https://a.org/f", to = "{{server_dir}}x", sha256 = "{SHA}"}}',
         False),
        ('write = {to = "f", content = "{v}"}', True),
        ('write = {to = "{v}", content = "x"}', True),
        ('write = {to = "f", content = "{python}"}', False),
        ('run = ["{python}", "-c", "{v}"]', True),
        ('run = ["{python}", "-V"]', False),
        ('minecraft_jar = {version = "{v}", to = "server.jar"}', False),
        ('minecraft_jar = {version = "latest", to = "{v}"}', True),
        ('run = ["a", "{restart}"]', True),  # a common variable is a setting too
    ],
)  # fmt: skip
def test_which_steps_are_user_controlled(tmp_path: Path, step: str, controlled: bool) -> None:
    stype = _load(tmp_path, VARIABLE + f"[[install]]\n{step}\n")
    assert user_controlled(stype) is controlled  # type: ignore[arg-type]


def test_values_in_a_url_are_percent_encoded(tmp_path: Path) -> None:
    stype = _load(
        tmp_path,
        VARIABLE + f'[[install]]\ndownload = {{url = "https://a.org/d/{{v}}?k={{v}}", '
        f'to = "f", sha256 = "{SHA}"}}\n',
    )
    hostile = "../../x@evil.org:1/#?a=b&c d%"
    steps = render_install(stype, {"v": hostile}, python="", server_dir="")  # type: ignore[arg-type]
    encoded = "..%2F..%2Fx%40evil.org%3A1%2F%23%3Fa%3Db%26c%20d%25"
    assert steps[0].url == f"https://a.org/d/{encoded}?k={encoded}"
    assert steps[0].guarded is True


def test_a_checksum_must_be_hex(tmp_path: Path) -> None:
    stype = _load(
        tmp_path,
        '[[variables]]\nname = "sum"\ndefault = ""\n'
        '[[install]]\ndownload = {url = "http://x/", to = "a", sha1 = "{sum}"}\n',
    )
    with pytest.raises(InvalidInput) as info:
        render_install(stype, {"sum": "not hex"}, python="", server_dir="")  # type: ignore[arg-type]
    assert info.value.message == "install: sha1 must be sha1 in hex"
    steps = render_install(stype, {"sum": "AB" * 20}, python="", server_dir="")  # type: ignore[arg-type]
    assert steps[0].checksum == ("sha1", "ab" * 20)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://x/y", "", "https://"])
def test_the_manifest_url_must_be_http(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={}, overrides={"servers": {"minecraft_manifest_url": url}})
    assert info.value.field == "servers.minecraft_manifest_url"


def test_the_download_bound_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        load_settings(None, environ={}, overrides={"servers": {"install_max_bytes": -1}})

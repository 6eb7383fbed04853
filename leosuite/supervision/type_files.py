"""Loading server type files: the built-ins shipped in ``leosuite/templates/`` and
the operator's ``<data>/templates/*.toml``. A broken file is reported with its path
and the offending key; every other type still loads."""

from __future__ import annotations

import re
import signal
import tomllib
from importlib import resources
from pathlib import Path

import msgspec

from leosuite.errors import ConfigError, InvalidInput
from leosuite.store.servers import NAME_RE
from leosuite.supervision.install_steps import check_install
from leosuite.supervision.log_files import check_log_files

from .types import (
    _BUILTIN_PLACEHOLDERS,
    _PLACEHOLDER,
    _VAR_NAME,
    COMMON_VARIABLES,
    USER_NAME,
    ServerType,
    _check_value,
    variables_of,
)

__all__ = ["TypeLoadError", "load_builtin_types", "load_type_file", "load_types"]

MAX_TYPE_FILE = 256 * 1024
#: The longest variable ``label`` a type file may give (it heads a form field).
MAX_LABEL = 64
_MSGSPEC_PATH = re.compile(r"- at `\$\.?(.*)`$")
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]*)`")


class TypeLoadError(ConfigError):
    """A type file that could not be loaded: ``path`` and the offending ``key``."""

    def __init__(self, path: Path | str, key: str | None, message: str) -> None:
        where = f"{path}: {key}: " if key else f"{path}: "
        super().__init__(where + message, field=key)
        self.path = Path(path)
        self.key = key


def _placeholders(text: str) -> list[str]:
    return [m.group(1) for m in _PLACEHOLDER.finditer(text) if m.group(1) is not None]


def _check_type(stype: ServerType, path: Path) -> None:
    """Semantic checks msgspec cannot do; raises TypeLoadError naming the key."""

    def fail(key: str, message: str) -> TypeLoadError:
        return TypeLoadError(path, key, message)

    names: set[str] = set()
    for i, var in enumerate(stype.variables):
        key = f"variables[{i}]"
        if not _VAR_NAME.fullmatch(var.name):
            raise fail(f"{key}.name", f"invalid variable name {var.name!r}")
        if var.name in names or var.name in COMMON_VARIABLES or var.name in _BUILTIN_PLACEHOLDERS:
            raise fail(f"{key}.name", f"variable name {var.name!r} is duplicate or reserved")
        names.add(var.name)
        if len(var.label) > MAX_LABEL or not var.label.isprintable():
            raise fail(f"{key}.label", f"a label is one line of at most {MAX_LABEL} characters")
        if var.type == "choice" and not var.choices:
            raise fail(f"{key}.choices", "a choice variable needs choices")
        if var.type != "choice" and var.choices:
            raise fail(f"{key}.choices", "only a choice variable has choices")
        if (var.min is not None or var.max is not None) and var.type not in ("int", "number"):
            raise fail(f"{key}.min", "only int and number variables have min/max")
        if var.required and var.default is not None:
            raise fail(f"{key}.default", "a required variable has no default")
        if not var.required and var.default is None:
            raise fail(f"{key}.default", "an optional variable needs a default")
        if var.default is not None:
            try:
                _check_value(var, var.default)
            except InvalidInput as exc:
                raise fail(f"{key}.default", exc.message) from None
    known = names | set(COMMON_VARIABLES) | _BUILTIN_PLACEHOLDERS
    if not stype.command and stype.command_from is None:
        raise fail("command", "command must not be empty")
    if stype.command_from is not None and stype.command_from not in names:
        raise fail("command_from", f"unknown variable {stype.command_from!r}")
    texts = [("command", a) for a in stype.command] + [("env", v) for v in stype.env.values()]
    if stype.working_dir is not None:
        texts.append(("working_dir", stype.working_dir))
    for key, text in texts:
        for ref in _placeholders(text):
            if ref not in known:
                raise fail(key, f"unknown placeholder {{{ref}}}")
    if (fault := check_install(stype, known)) is not None:
        raise fail(*fault)
    if (log_fault := check_log_files(stype.log_files, known)) is not None:
        raise fail("log_files", log_fault)
    for env_key in stype.env:
        if not env_key or "=" in env_key or "\0" in env_key:
            raise fail("env", f"invalid environment variable name {env_key!r}")
    if stype.user and not USER_NAME.fullmatch(stype.user):
        raise fail("user", f"not a system user's name or uid: {stype.user!r}")
    if stype.stop_signal not in signal.Signals.__members__:
        raise fail("stop_signal", f"unknown signal {stype.stop_signal!r}")
    if stype.stop_command is not None and (
        "\n" in stype.stop_command or "\0" in stype.stop_command
    ):
        raise fail("stop_command", "must be a single line")
    if stype.ready_pattern is not None:
        try:
            re.compile(stype.ready_pattern.encode())
        except re.error as exc:
            raise fail("ready_pattern", f"invalid regex: {exc}") from None
    common = {v.name: v for v in variables_of(stype)[len(stype.variables) :]}
    for name in ("stop_timeout", "max_restarts"):
        try:
            _check_value(common[name], getattr(stype, name))
        except InvalidInput as exc:
            raise fail(name, exc.message) from None


def load_type_file(path: Path | str, data: bytes | None = None) -> ServerType:
    """Decode and check one type file; raises :class:`TypeLoadError`."""
    path = Path(path)
    name = path.name.removesuffix(".toml")
    if not NAME_RE.fullmatch(name):
        raise TypeLoadError(path, None, f"invalid type name {name!r}")
    try:
        if data is None:
            with path.open("rb") as f:
                data = f.read(MAX_TYPE_FILE + 1)
        if len(data) > MAX_TYPE_FILE:
            raise TypeLoadError(path, None, f"larger than {MAX_TYPE_FILE} bytes")
        stype = msgspec.toml.decode(data, type=ServerType)
    except OSError as exc:
        raise TypeLoadError(path, None, f"cannot read: {exc.strerror}") from exc
    except msgspec.ValidationError as exc:  # a DecodeError subclass: catch it first
        text = str(exc)
        at = _MSGSPEC_PATH.search(text)
        key = at.group(1) if at else None
        unknown = _UNKNOWN_FIELD.search(text)
        if unknown:
            key = f"{key}.{unknown.group(1)}" if key else unknown.group(1)
        raise TypeLoadError(path, key, _MSGSPEC_PATH.sub("", text).strip()) from exc
    except (tomllib.TOMLDecodeError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise TypeLoadError(path, None, f"not valid TOML: {exc}") from exc
    if stype.name and stype.name != name:
        raise TypeLoadError(path, "name", f"must match the file name {name!r}")
    stype = msgspec.structs.replace(stype, name=name)
    _check_type(stype, path)
    return stype


def load_builtin_types() -> dict[str, ServerType]:
    """The types shipped in ``leosuite/templates/``; a broken one is a bug (ConfigError)."""
    types: dict[str, ServerType] = {}
    for entry in sorted(resources.files("leosuite.templates").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml") and entry.is_file():
            stype = load_type_file(Path("leosuite/templates") / entry.name, entry.read_bytes())
            types[stype.name] = stype
    return types


def load_types(directory: Path) -> tuple[dict[str, ServerType], list[TypeLoadError]]:
    """Built-ins plus every ``*.toml`` in ``directory`` (``<data>/templates``).

    A broken file is reported and skipped; the others still load. A user file
    cannot replace a built-in type (reported, the built-in stays). A missing
    directory just means no user types.
    """
    types = load_builtin_types()
    errors: list[TypeLoadError] = []
    try:
        paths = sorted(p for p in directory.iterdir() if p.name.endswith(".toml"))
    except FileNotFoundError:
        return types, errors
    except OSError as exc:
        return types, [TypeLoadError(directory, None, f"cannot list: {exc.strerror}")]
    for path in paths:
        try:
            stype = load_type_file(path)
        except TypeLoadError as exc:
            errors.append(exc)
            continue
        if stype.name in types:
            errors.append(
                TypeLoadError(path, None, f"would replace the built-in type {stype.name!r}")
            )
            continue
        types[stype.name] = stype
    return types, errors

"""Server types (templates): their structs, settings validation and command rendering.

A *type* is a TOML file: the built-ins ship in ``leosuite/templates/``, more live in
``<data>/templates/``. The file name (without ``.toml``) is the type's name. A type
declares an argv list with ``{var}`` placeholders, typed variables, and how to stop
and supervise the process. Every type also has the common settings ``user``,
``autostart``, ``restart``, ``stop_timeout`` and ``max_restarts`` (the defaults of the
last four come from the type's own top-level keys of the same names; an empty ``user``
means the type's ``user``, else the daemon's default).

Besides the declared variables, placeholders may use ``{python}`` (the daemon's
interpreter) and ``{server_dir}``; ``{{`` and ``}}`` are literal braces. A value is
always one argv element: nothing is split and no shell runs, except that a type with
``command_from = "var"`` appends ``shlex.split(settings[var])`` to its argv (the
built-in ``command`` type).

A ``path`` variable names a file or directory relative to the server's directory and is
rendered as that absolute path. In a type that is not ``admin_only``, it must stay inside
the server's directory, and so must a ``working_dir`` that is not a fixed absolute path;
the rendered command lists those paths (``confined``) so that every start checks them
again with symbolic links resolved (a server can plant a link at any time).

This module is pure: no trio, no I/O. Reading type files is ``type_files``.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shlex
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import msgspec

from leosuite.errors import InvalidInput
from leosuite.store.servers import validate_name as validate_server_name
from leosuite.supervision.install_steps import InstallStep
from leosuite.supervision.log_files import declared as declared_log_files

__all__ = [
    "COMMON_VARIABLES",
    "RenderedCommand",
    "ServerType",
    "Variable",
    "coerce_text",
    "label_of",
    "render_command",
    "settings_view",
    "validate_server_name",
    "validate_settings",
    "variables_of",
    "variables_view",
]

VarType = Literal["string", "path", "int", "number", "port", "bool", "choice"]
RestartPolicy = Literal["never", "on-failure", "always"]
Value = str | int | float | bool

MAX_STRING = 4096
COMMON_VARIABLES = (
    "user",
    "autostart",
    "restart",
    "stop_timeout",
    "max_restarts",
    "memory_mb",
    "cpu_percent",
    "pids_max",
)
_BUILTIN_PLACEHOLDERS = frozenset({"python", "server_dir"})
_VAR_NAME = re.compile(r"[a-z_][a-z0-9_]{0,63}")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
#: A system account's name (as useradd accepts it) or a numeric uid.
USER_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}\$?|[0-9]{1,10}")


class Variable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One typed setting of a server type."""

    name: str
    type: VarType = "string"
    required: bool = False
    readonly: bool = False
    default: Value | None = None
    description: str = ""
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    #: What forms and error messages call it ("": the name with "_" as spaces).
    label: str = ""
    #: Folded under "Advanced settings" in the forms (tuning and test switches).
    advanced: bool = False


def label_of(var: Variable) -> str:
    """The variable's human name: its ``label``, else its name made readable."""
    if var.label:
        return var.label
    text = var.name.replace("_", " ")
    return text[:1].upper() + text[1:]


class ServerType(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A server type as declared in its TOML file (``name`` is the file's stem)."""

    name: str = ""
    description: str = ""
    command: tuple[str, ...] = ()
    command_from: str | None = None
    working_dir: str | None = None
    env: dict[str, str] = msgspec.field(default_factory=dict)
    variables: tuple[Variable, ...] = ()
    stop_command: str | None = None
    stop_signal: str = "SIGTERM"
    stop_timeout: float = 10.0
    ready_pattern: str | None = None
    restart: RestartPolicy = "on-failure"
    max_restarts: int = 5
    autostart: bool = False
    admin_only: bool = False
    #: The system user its servers run as ("": the daemon's default).
    user: str = ""
    #: Steps run once before the first start, and again on demand or when they change.
    install: tuple[InstallStep, ...] = ()
    #: The server's own log files: paths or globs in its directory, ``{var}`` allowed
    #: (see :mod:`.log_files`).
    log_files: tuple[str, ...] = ()
    #: How schedules ask how many players are online: a console command, and a regex
    #: whose first group is the number in the console's answer.
    players_command: str | None = None
    players_pattern: str | None = None
    #: Console commands typed before a running server's backup (e.g. ``save-off``) and
    #: after it, even when it failed (``save-on``); a stopped server is archived as is.
    backup_before: tuple[str, ...] = ()
    backup_after: tuple[str, ...] = ()
    #: Globs of paths in the server's directory that backups leave out.
    backup_exclude: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RenderedCommand:
    """Everything the process shell needs to launch and supervise one server."""

    argv: tuple[str, ...]
    cwd: Path
    #: The type's extra variables; :meth:`environment` merges them over a base.
    env: dict[str, str]
    stop_command: str | None
    stop_signal: signal.Signals
    stop_timeout: float
    ready_pattern: re.Pattern[bytes] | None
    restart: RestartPolicy
    max_restarts: int
    autostart: bool
    #: The system user to run as (None: the daemon's own).
    user: str | None = None
    #: The argv as the console shows it: ``{python}`` as "python", paths in the
    #: server's directory relative to it.
    shown: tuple[str, ...] = ()
    #: Paths that must resolve inside the server's directory at every start, by the
    #: setting that names them (``working_dir`` for the working directory).
    confined: dict[str, str] = field(default_factory=dict)

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        return {**base, **self.env}


# ---------------------------------------------------------------- loading


def variables_of(stype: ServerType) -> tuple[Variable, ...]:
    """The type's own variables followed by the common ones."""
    common = (
        Variable(name="user", label="System user", advanced=True, default="",
                 description="System user the server runs as "
                 "(empty: the type's or the daemon's default); only an ADMIN may set it"),
        Variable(name="autostart", type="bool", default=stype.autostart,
                 description="Start this server when the daemon starts"),
        Variable(name="restart", type="choice", choices=("never", "on-failure", "always"),
                 default=stype.restart, description="Restart policy after an exit"),
        Variable(name="stop_timeout", type="number", default=stype.stop_timeout, min=0.1,
                 max=3600, advanced=True,
                 description="Seconds to wait at each step of a graceful stop"),
        Variable(name="max_restarts", type="int", default=stype.max_restarts, min=0,
                 max=1000, label="Max quick restarts", advanced=True,
                 description="Quick crashes in a row before giving up"),
        # Resource limits in the server's cgroup; 0 takes limits.default_*.
        Variable(name="memory_mb", type="int", default=0, min=0, max=2**22,
                 label="Memory limit (MiB)", advanced=True,
                 description="Memory the server's processes may use together; past it the "
                 "kernel kills one (0: the daemon's default)"),
        Variable(name="cpu_percent", type="int", default=0, min=0, max=100 * 4096,
                 label="CPU limit (%)", advanced=True,
                 description="CPU time in percent of one core (200: two cores; "
                 "0: the daemon's default)"),
        Variable(name="pids_max", type="int", default=0, min=0, max=2**22,
                 label="Max processes", advanced=True,
                 description="Processes and threads the server may have at once "
                 "(0: the daemon's default)"),
    )  # fmt: skip
    return stype.variables + common


# ---------------------------------------------------------------- settings


def _check_value(var: Variable, value: object) -> Value:
    """The value if it fits ``var``; numbers become float for ``number``."""

    def bad(what: str) -> InvalidInput:
        return InvalidInput(f"{label_of(var)} {what}", field=var.name)

    is_int = isinstance(value, int) and not isinstance(value, bool)
    if var.type in ("string", "path"):
        if not isinstance(value, str):
            raise bad("must be a string")
        if len(value) > MAX_STRING:
            raise bad(f"must be at most {MAX_STRING} characters")
        if any(c in value for c in "\0\n\r"):
            raise bad("must not contain NUL or line breaks")
        return value
    if var.type == "bool":
        if not isinstance(value, bool):
            raise bad("must be true or false")
        return value
    if var.type == "choice":
        if not isinstance(value, str) or value not in var.choices:
            raise bad(f"must be one of {', '.join(var.choices)}")
        return value
    if var.type == "port":
        if not is_int or not 1 <= value <= 65535:  # type: ignore[operator]
            raise bad("must be a port number, 1-65535")
        return value  # type: ignore[return-value]
    if var.type == "int" and not is_int:
        raise bad("must be an integer")
    if var.type == "number" and not (is_int or isinstance(value, float)):
        raise bad("must be a number")
    num: int | float = value  # type: ignore[assignment]
    if not math.isfinite(num):
        raise bad("must be finite")
    if var.min is not None and num < var.min:
        raise bad(f"must be at least {var.min:g}")
    if var.max is not None and num > var.max:
        raise bad(f"must be at most {var.max:g}")
    return float(num) if var.type == "number" else num


def validate_settings(
    stype: ServerType,
    given: Mapping[str, object],
    *,
    existing: Mapping[str, object] | None = None,
    is_update: bool = False,
) -> dict[str, Value]:
    """Check ``given`` against the type; return the complete resolved settings.

    On create, unset variables take their defaults; on update (``is_update``), they
    keep their ``existing`` values, and a readonly variable may not change (giving
    its current value again is accepted).
    """
    variables = {v.name: v for v in variables_of(stype)}
    resolved: dict[str, Value | None] = {v.name: v.default for v in variables.values()}
    if existing:
        resolved.update({k: v for k, v in existing.items() if k in variables})  # type: ignore[misc]
    for name, value in given.items():
        var = variables.get(name)
        if var is None:
            raise InvalidInput(f"unknown variable {name!r}", field=str(name))
        checked = _check_value(var, value)
        if is_update and var.readonly and checked != resolved.get(name):
            raise InvalidInput(f"{label_of(var)} is readonly: set when created", field=name)
        resolved[name] = checked
    for var in variables.values():
        value = resolved[var.name]
        if value is None or (var.required and value == ""):
            raise InvalidInput(f"{label_of(var)} is required", field=var.name)
    if stype.command_from is not None:
        source = variables[stype.command_from]
        _split_command(str(resolved[source.name]), source.name, label_of(source))
    declared_log_files(stype.log_files, resolved)
    user = resolved.get("user")
    if user and not USER_NAME.fullmatch(str(user)):
        label = label_of(variables["user"])
        raise InvalidInput(f"{label} must be a system user's name or uid", field="user")
    return resolved  # type: ignore[return-value]


def coerce_text(stype: ServerType, name: str, text: str) -> Value:
    """Parse a command-line ``name=text`` into the variable's type (for the CLI)."""
    var = {v.name: v for v in variables_of(stype)}.get(name)
    if var is None:
        raise InvalidInput(f"unknown variable {name!r}", field=name)
    value: object = text
    if var.type == "bool":
        lowered = text.strip().lower()
        value = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
        value = value.get(lowered, text)
    elif var.type in ("int", "port"):
        with contextlib.suppress(ValueError):
            value = int(text)
    elif var.type == "number":
        with contextlib.suppress(ValueError):
            value = float(text)
    return _check_value(var, value)


def variables_view(stype: ServerType) -> list[dict[str, object]]:
    """What ``server_create_options {type}`` answers: each variable and its rules."""
    out: list[dict[str, object]] = []
    for var in variables_of(stype):
        item: dict[str, object] = {
            "name": var.name,
            "label": label_of(var),
            "type": var.type,
            "required": var.required,
            "readonly": var.readonly,
            "advanced": var.advanced,
            "default": var.default,
            "description": var.description,
        }
        if var.choices:
            item["choices"] = list(var.choices)
        if var.min is not None:
            item["min"] = var.min
        if var.max is not None:
            item["max"] = var.max
        out.append(item)
    return out


def settings_view(stype: ServerType, settings: Mapping[str, object]) -> list[dict[str, object]]:
    """The seed's ``server_settings`` answer, ``[{name, required, type, readonly, value}]``,
    with what a form shows of each: ``label``, ``advanced`` and ``description``."""
    return [
        {
            "name": var.name,
            "required": var.required,
            "type": var.type,
            "readonly": var.readonly,
            "value": settings.get(var.name, var.default),
            "label": label_of(var),
            "advanced": var.advanced,
            "description": var.description,
        }
        for var in variables_of(stype)
    ]


# ---------------------------------------------------------------- rendering


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 2**53 else repr(value)
    return str(value)


def _split_command(text: str, field: str, label: str) -> list[str]:
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise InvalidInput(f"{label}: {exc}", field=field) from None
    if not words:
        raise InvalidInput(f"{label} must not be empty", field=field)
    return words


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def render_command(
    stype: ServerType,
    settings: Mapping[str, object],
    *,
    server_dir: Path,
    python: str = sys.executable,
    default_user: str = "",
) -> RenderedCommand:
    """Substitute placeholders; ``settings`` are the resolved ones from validate_settings.

    A ``path`` variable becomes ``server_dir`` joined with its value, normalised; in a
    type that is not admin-only it must stay inside ``server_dir`` (InvalidInput naming
    the variable), as must a working directory that is not a fixed absolute path
    (InvalidInput naming ``working_dir``).
    """
    root = os.path.normpath(server_dir)
    confine = not stype.admin_only
    confined: dict[str, str] = {}
    values = {k: _as_text(v) for k, v in settings.items()}
    for var in stype.variables:
        if var.type != "path":
            continue
        path = os.path.normpath(os.path.join(root, values.get(var.name, "")))
        if confine:
            if not _inside(path, root):
                raise InvalidInput(
                    f"{label_of(var)} must be a path inside the server directory", field=var.name
                )
            confined[var.name] = path
        values[var.name] = path
    values["python"] = python
    values["server_dir"] = str(server_dir)
    short = {**values, "python": "python", "server_dir": "."}
    for var in stype.variables:
        if var.type == "path" and _inside(values[var.name], root):
            short[var.name] = os.path.relpath(values[var.name], root)

    def render(text: str, table: Mapping[str, str] = values) -> str:
        def one(m: re.Match[str]) -> str:
            if m.group(1) is None:
                return m.group(0)[0]
            try:
                return table[m.group(1)]
            except KeyError:
                raise InvalidInput(f"missing setting {m.group(1)!r}", field=m.group(1)) from None

        return _PLACEHOLDER.sub(one, text)

    argv = [render(arg) for arg in stype.command]
    shown = [render(arg, short) for arg in stype.command]
    if stype.command_from is not None:
        source = next(v for v in stype.variables if v.name == stype.command_from)
        words = _split_command(str(settings.get(source.name, "")), source.name, label_of(source))
        argv += words
        shown += words
    cwd = server_dir
    if stype.working_dir is not None:
        wd = render(stype.working_dir)
        fixed = not any(m.group(1) for m in _PLACEHOLDER.finditer(stype.working_dir))
        if os.path.isabs(stype.working_dir) and (fixed or not confine):
            cwd = Path(wd)  # written by the operator, or an ADMIN's: taken as it stands
        else:
            cwd = Path(os.path.normpath(os.path.join(root, wd)))
            if not _inside(str(cwd), root):
                raise InvalidInput("working_dir escapes the server directory", field="working_dir")
            if confine and str(cwd) != root:
                confined["working_dir"] = str(cwd)
    pattern = stype.ready_pattern
    user = str(settings.get("user") or "") or stype.user or default_user
    return RenderedCommand(
        argv=tuple(argv),
        cwd=cwd,
        env={k: render(v) for k, v in stype.env.items()},
        stop_command=stype.stop_command,
        stop_signal=signal.Signals[stype.stop_signal],
        stop_timeout=float(settings.get("stop_timeout", stype.stop_timeout)),  # type: ignore[arg-type]
        ready_pattern=re.compile(pattern.encode()) if pattern is not None else None,
        restart=settings.get("restart", stype.restart),  # type: ignore[arg-type]
        max_restarts=int(settings.get("max_restarts", stype.max_restarts)),  # type: ignore[call-overload]
        autostart=bool(settings.get("autostart", stype.autostart)),
        user=user or None,
        confined=confined,
        shown=tuple(shown),
    )

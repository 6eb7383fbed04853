"""``leosuite config show`` and ``leosuite config reset``: the settings in effect with
where each comes from, and removing the server settings the admin API stored.

A server setting changed through the admin API (``PUT /server/``) is stored and wins
over the configuration file, the environment and the flags. ``config show`` reads the
store (read-only; nothing is created) and shows such a value as the one in effect,
its source ``admin API`` and what it hides. ``config reset`` removes stored values
from the store of a stopped daemon; a running daemon is reset through its admin API
(``DELETE /server/``), since it keeps the values it loaded.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sqlite3
import sys
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .community.server_settings import WIRE, ServerSettings, delete_stored, read_stored, wire_key
from .errors import ConfigError, InvalidInput, StoreError
from .settings import ENV_PREFIX, Settings, settings_as_dict
from .store import audit
from .store.opening import open_store

__all__ = ["ADMIN_API", "reset_config", "setting_sources", "show_config", "stored_settings"]

#: The source of a value the admin API stored.
ADMIN_API = "admin API"
#: The configuration section whose settings the admin API may override.
COMMUNITY = "community"
#: Who a reset from the command line is audited as.
CLI_ACTOR = "leosuite config reset"


def setting_sources(
    settings: Settings,
    config_file: Path | None,
    environ: Mapping[str, str],
    flags: Mapping[str, Mapping[str, Any]],
) -> dict[str, str]:
    """``{"section.key": source}`` for every setting: ``flag``, ``env NAME``, ``file``
    or ``default``, the first that sets it (the order :func:`load_settings` applies)."""
    in_file: dict[str, Any] = {}
    if config_file is not None:  # load_settings has read and checked it already
        in_file = tomllib.loads(config_file.read_text(encoding="utf-8"))
    sources: dict[str, str] = {}
    for section, values in settings_as_dict(settings, mask_secrets=False).items():
        for key in values:
            env_name = f"{ENV_PREFIX}{section}_{key}".upper()
            if key in flags.get(section, {}):
                source = "flag"
            elif env_name in environ:
                source = f"env {env_name}"
            elif key in in_file.get(section, {}):
                source = "file"
            else:
                source = "default"
            sources[f"{section}.{key}"] = source
    return sources


def stored_settings(settings: Settings) -> dict[str, Any]:
    """The server settings the store holds, ``{attribute: typed value}``, read without
    writing or creating anything (no store yet: none)."""
    if settings.store.url:
        from .store.postgres import read_store  # only a PostgreSQL store needs psycopg

        return read_store(settings.store.url, read_stored) or {}
    db_path = settings.db_path
    if not db_path.is_file():
        return {}
    try:
        conn = sqlite3.connect(f"file:{quote(str(db_path))}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the database {db_path}: {exc}") from exc
    try:
        return read_stored(conn)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the server settings in {db_path}: {exc}") from exc
    finally:
        conn.close()


def show_config(
    args: argparse.Namespace,
    settings: Settings,
    config_file: Path | None,
    environ: Mapping[str, str],
    flags: Mapping[str, Mapping[str, Any]],
) -> int:
    data = settings_as_dict(settings)
    sources = setting_sources(settings, config_file, environ, flags)
    try:
        stored = stored_settings(settings)
    except (StoreError, OSError) as exc:  # an unreadable store: show the rest all the same
        print(f"leosuite: {getattr(exc, 'message', exc)}; values set through the admin API "
              "are not shown", file=sys.stderr)  # fmt: skip
        stored = {}
    hidden: dict[str, tuple[Any, str]] = {}
    for attr, typed in stored.items():
        if attr in data[COMMUNITY]:
            name = f"{COMMUNITY}.{attr}"
            hidden[name] = (data[COMMUNITY][attr], sources[name])
            data[COMMUNITY][attr] = typed
            sources[name] = ADMIN_API
    # The settings only the admin API sets, in their wire form.
    server = ServerSettings(**stored).to_wire()
    admin_only = {
        key: (server[key], ADMIN_API if attr in stored else "default")
        for key, attr in WIRE.items()
        if attr not in data[COMMUNITY]
    }
    if args.json:
        if args.sources:
            value: Any = {
                "settings": data,
                "sources": sources,
                "server_settings": {
                    k: {"value": v, "source": s} for k, (v, s) in admin_only.items()
                },
            }
        else:
            value = data
        print(json.dumps(value, indent=2, sort_keys=True))
        return 0
    for section, values in data.items():
        print(f"[{section}]")
        for key, shown in values.items():
            name = f"{section}.{key}"
            note = sources[name]
            if name in hidden:
                before, where = hidden[name]
                note += f"; without it {json.dumps(before)} ({where})"
            print(f"{key} = {json.dumps(shown)}  # {note}")
        print()
    print("# Server settings only the admin API sets (PUT /server/):")
    for key, (shown, where) in admin_only.items():
        print(f"# {key} = {json.dumps(shown)} ({where})")
    return 0


def _daemon_lock(data_dir: Path) -> int | None:
    """Hold the data directory's lock so no daemon starts during the change; None when
    no daemon ever ran there. A running daemon is an error."""
    try:
        fd = os.open(data_dir / "run" / "leosuite.lock", os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:  # another user's data directory, say
        raise ConfigError(f"cannot lock {data_dir}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise ConfigError(
            f"a leosuite daemon (pid {holder}) serves {data_dir}: reset through its admin "
            "API (DELETE /server/ or DELETE /server/KEY), or stop it first"
        ) from None
    return fd


def reset_config(args: argparse.Namespace, settings: Settings) -> int:
    keys: list[str] = []
    for name in args.keys:
        key = wire_key(name)
        if key is None:
            shown = name if len(name) <= 100 else name[:99] + "…"
            raise InvalidInput(f"no server setting is named {shown!r}", field="KEY")
        keys.append(key)
    removed: list[str] = []
    lock = _daemon_lock(settings.data_dir)
    try:
        if settings.store.url or settings.db_path.is_file():
            db = open_store(settings, data_dir=settings.data_dir)
            try:
                removed = db.call_sync(lambda conn: _reset(conn, keys or None))
            finally:
                db.close()
    finally:
        if lock is not None:
            os.close(lock)
    if args.json:
        print(json.dumps({"reset": removed}, indent=2))
    elif removed:
        print(f"reset: {', '.join(removed)} (the configuration's values apply again)")
    else:
        print("nothing to reset: no such setting is stored")
    return 0


def _reset(conn: sqlite3.Connection, keys: list[str] | None) -> list[str]:
    removed = delete_stored(conn, keys)
    if removed:
        audit.append(
            conn,
            timestamp=time.time(),
            level="info",
            topic="Status",
            message=f"server settings reset: {', '.join(removed)}",
            user_name=CLI_ACTOR,
        )
    return removed

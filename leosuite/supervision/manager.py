"""The managed servers as one service: definitions (store), types, console logs and
the fleet of supervisors, behind the operations every API surface calls.

Permissions and audit entries belong to the API layer (it knows who asks); this
module knows servers, not HTTP.
"""

from __future__ import annotations

import base64
import logging
import shutil
import sqlite3
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec
import trio

from ..errors import Conflict, InvalidInput, NotFound
from ..settings import ServersSettings
from ..store import servers as server_table
from ..store.db import Database
from .console_log import ConsoleChunk, ConsoleLog
from .fleet import Fleet
from .spec import LaunchSpec, StateChange
from .states import PowerAction, State, allowed_actions
from .supervisor import Supervisor
from .type_files import TypeLoadError, load_types
from .types import (
    ServerType,
    render_command,
    settings_view,
    validate_server_name,
    validate_settings,
    variables_view,
)

__all__ = ["LogAnswer", "ServerManager", "encode_console_data"]

log = logging.getLogger("leosuite.servers")

Encoding = Literal["utf-8", "base64"]


class LogAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """The seed's ``server_log`` answer; ``data`` is text in ``encoding``."""

    oldReadIndex: int
    nextReadIndex: int
    readIndex: int
    data: str
    encoding: Encoding


def _utf8_boundary(data: bytes) -> int:
    """Length of ``data`` without a trailing incomplete UTF-8 sequence (at most 3 bytes)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data)
        if byte >= 0xC0:  # a lead byte: is its sequence complete?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if back >= need else len(data) - back
    return len(data)


def encode_console_data(chunk: ConsoleChunk, encoding: Encoding | None) -> LogAnswer:
    """Console bytes as JSON text, losslessly.

    By default (``encoding`` None) the bytes are sent as UTF-8 text when they are
    valid UTF-8 (a multi-byte character cut at the end is held back for the next
    read), else as base64 with ``"encoding": "base64"``. A client may always ask for
    base64.
    """
    data = chunk.data
    if encoding != "base64":
        keep = _utf8_boundary(data)
        head = data[:keep] if keep else data
        try:
            text: str | None = head.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            return LogAnswer(
                oldReadIndex=chunk.old_read_index,
                nextReadIndex=chunk.old_read_index + len(head),
                readIndex=chunk.read_index,
                data=text,
                encoding="utf-8",
            )
        if encoding == "utf-8":
            raise InvalidInput(
                "these console bytes are not valid UTF-8; ask for encoding base64", field="encoding"
            )
    return LogAnswer(
        oldReadIndex=chunk.old_read_index,
        nextReadIndex=chunk.next_read_index,
        readIndex=chunk.read_index,
        data=base64.b64encode(data).decode("ascii"),
        encoding="base64",
    )


class ServerManager:
    def __init__(
        self,
        *,
        db: Database,
        fleet: Fleet,
        settings: ServersSettings,
        data_dir: Path,
        now: Callable[[], float],
        python: str = sys.executable,
    ) -> None:
        self._db = db
        self._fleet = fleet
        self._settings = settings
        self._data_dir = data_dir
        self._now = now
        self._python = python
        self.types: dict[str, ServerType] = {}
        self.type_errors: list[TypeLoadError] = []
        self._records: dict[str, server_table.ServerRecord] = {}
        self._consoles: dict[str, ConsoleLog] = {}
        self._lock = trio.Lock()

    # -- paths and specs ------------------------------------------------------------

    def server_dir(self, name: str) -> Path:
        return self._data_dir / "servers" / name

    def log_dir(self, name: str) -> Path:
        return self._data_dir / "logs" / name

    def _spec(self, stype: ServerType, name: str, settings: Mapping[str, object]) -> LaunchSpec:
        rendered = render_command(
            stype, settings, server_dir=self.server_dir(name), python=self._python
        )
        return LaunchSpec(
            argv=list(rendered.argv),
            cwd=str(rendered.cwd),
            env=dict(rendered.env),  # added to the daemon's environment at spawn
            stop_command=rendered.stop_command,
            stop_signal=int(rendered.stop_signal),
            stop_timeout=rendered.stop_timeout,
            ready_pattern=rendered.ready_pattern.pattern.decode("utf-8", "surrogateescape")
            if rendered.ready_pattern is not None
            else None,
            restart=rendered.restart,
            max_restarts=rendered.max_restarts,
            autostart=rendered.autostart,
        )

    def _open_console(self, name: str, start_index: int) -> ConsoleLog:
        return ConsoleLog(
            self.log_dir(name),
            ring_bytes=self._settings.console_ring_bytes,
            file_max_bytes=self._settings.console_file_max_bytes,
            keep_files=self._settings.console_keep_files,
            start_index=start_index,
        )

    # -- start-up and shutdown --------------------------------------------------------

    async def load(self) -> None:
        """Load types and every stored server into the fleet (all stopped)."""
        self.types, self.type_errors = await trio.to_thread.run_sync(
            load_types, self._data_dir / "templates"
        )
        for error in self.type_errors:
            log.warning("server type not loaded: %s", error)
        records = await self._db.call(server_table.list_all)
        for record in records:
            stype = self.types.get(record.type)
            if stype is None:
                log.error(
                    "server %s: its type %r is not available; not loaded", record.name, record.type
                )
                continue
            console = await trio.to_thread.run_sync(
                self._open_console, record.name, record.next_read_index
            )
            try:
                spec = self._spec(stype, record.name, record.settings)
                await self._fleet.add(record.name, spec, console)
            except Exception:
                console.close()
                raise
            self._records[record.name] = record
            self._consoles[record.name] = console

    async def save_read_indexes(self) -> None:
        """Store every console's next readIndex (the store never lets it go back)."""
        indexes = {name: console.end_index for name, console in self._consoles.items()}

        def save(conn: sqlite3.Connection) -> None:
            for name, index in indexes.items():
                server_table.set_next_read_index(conn, name, index)

        if indexes:
            await self._db.call(save)

    async def shutdown(self) -> None:
        """Stop every server gracefully (in parallel), save indexes, close the logs."""
        await self._fleet.shutdown()
        with trio.CancelScope(shield=True):
            await self.save_read_indexes()
        for console in self._consoles.values():
            console.close()

    # -- queries ----------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._records)

    def record(self, name: str) -> server_table.ServerRecord:
        try:
            return self._records[name]
        except KeyError:
            raise NotFound(f"no server named {name!r}", field="server") from None

    def find_record(self, name: str) -> server_table.ServerRecord | None:
        """The server's record, or None for a name that is not (or no longer) known."""
        return self._records.get(name)

    def supervisor(self, name: str) -> Supervisor:
        self.record(name)
        return self._fleet.get(name)

    def console(self, name: str) -> ConsoleLog:
        self.record(name)
        return self._consoles[name]

    def stype(self, type_name: str) -> ServerType:
        try:
            return self.types[type_name]
        except KeyError:
            raise InvalidInput(f"unknown server type {type_name!r}", field="type") from None

    def create_options(self, type_name: str) -> list[dict[str, object]]:
        return variables_view(self.stype(type_name))

    def status(self, name: str) -> dict[str, Any]:
        record = self.record(name)
        status = self._fleet.get(name).status()
        stype = self.types.get(record.type)
        return {
            "server": name,
            "readIndex": self._consoles[name].end_index,
            "status": status.state.value,
            "description": stype.description if stype else "",
            "type": record.type,
            "pid": status.pid,
            "uptime": status.uptime,
            "exit_code": status.exit_code,
            "restarts": status.restarts,
            "cpu": status.cpu,
            "memory": status.memory,
            "threads": status.threads,
            "last_error": status.last_error,
            "stop_requested": status.stop_requested,
            "restart_in": status.restart_in,
            "actions": list(allowed_actions(status.state)),
        }

    # -- changes ----------------------------------------------------------------------

    async def create(
        self, name: str, type_name: str, given: Mapping[str, object], *, owner_id: int | None
    ) -> server_table.ServerRecord:
        name = validate_server_name(name)
        stype = self.stype(type_name)
        resolved = validate_settings(stype, given)
        async with self._lock:
            if name in self._records:
                raise Conflict(f"a server named {name!r} exists already", field="server")
            spec = self._spec(stype, name, resolved)
            created_at = self._now()
            record = await self._db.call(
                lambda conn: server_table.create(
                    conn,
                    name=name,
                    type=type_name,
                    settings=resolved,
                    created_at=created_at,
                    owner_id=owner_id,
                )
            )
            try:
                await trio.to_thread.run_sync(self._make_dirs, name, int(created_at))
                console = await trio.to_thread.run_sync(self._open_console, name, 0)
                try:
                    await self._fleet.add(name, spec, console)
                except BaseException:
                    console.close()
                    raise
            except BaseException:
                with trio.CancelScope(shield=True):
                    await self._db.call(lambda conn: server_table.delete(conn, name))
                raise
            self._records[name] = record
            self._consoles[name] = console
            return record

    def _make_dirs(self, name: str, stamp: int) -> None:
        self.server_dir(name).mkdir(parents=True, exist_ok=True)
        logs = self.log_dir(name)
        if logs.is_dir() and any(logs.iterdir()):
            # The console of a destroyed server of this name (files kept): a new server's
            # console starts at readIndex 0 and shows nothing of the old one. Keep the old
            # logs beside it; the dot keeps the name apart from every server name.
            aside = logs.with_name(f"{name}.destroyed-{stamp}")
            n = 1
            while aside.exists():
                aside, n = logs.with_name(f"{name}.destroyed-{stamp}-{n}"), n + 1
            logs.rename(aside)
        logs.mkdir(parents=True, exist_ok=True)

    async def destroy(self, name: str, *, delete_files: bool = False) -> None:
        """Stop the server if it runs, forget it; optionally delete its files."""
        self.record(name)
        async with self._lock:
            await self._fleet.remove(name)
            console = self._consoles.pop(name)
            console.close()
            del self._records[name]
            await self._db.call(lambda conn: server_table.delete(conn, name))
            if delete_files:
                await trio.to_thread.run_sync(self._delete_files, name)

    def _delete_files(self, name: str) -> None:
        for path in (self.server_dir(name), self.log_dir(name)):
            shutil.rmtree(path, ignore_errors=True)

    async def power(self, name: str, action: PowerAction) -> State:
        return await self.supervisor(name).request(action)

    async def command(self, name: str, line: str) -> None:
        await self.supervisor(name).send_command(line)

    async def settings(
        self, name: str, changes: Mapping[str, object] | None
    ) -> list[dict[str, object]]:
        record = self.record(name)
        stype = self.stype(record.type)
        if changes:
            resolved = validate_settings(stype, changes, existing=record.settings, is_update=True)
            spec = self._spec(stype, name, resolved)
            await self._db.call(lambda conn: server_table.update_settings(conn, name, resolved))
            record = msgspec.structs.replace(record, settings=resolved)
            self._records[name] = record
            self._fleet.get(name).update_spec(spec)
        return settings_view(stype, record.settings)

    async def read_log(
        self,
        name: str,
        read_index: int,
        *,
        limit: int | None,
        wait: float | None,
        encoding: Encoding | None,
    ) -> LogAnswer:
        console = self.console(name)
        cap = self._settings.log_max_read
        limit = cap if limit is None else limit
        if limit < 0:
            raise InvalidInput("max must not be negative", field="max")
        limit = min(limit, cap)
        if wait is not None:
            if wait < 0:
                raise InvalidInput("wait must not be negative", field="wait")
            if read_index >= console.end_index and read_index >= 0:
                console.read(read_index, 0)  # validates the index before waiting
                with trio.move_on_after(min(wait, self._settings.log_max_wait)):
                    await console.wait_beyond(read_index)
        chunk = console.read(read_index, limit)
        return encode_console_data(chunk, encoding)

    def subscribe_states(self, max_buffer: int = 256) -> trio.MemoryReceiveChannel[StateChange]:
        """Every server's state changes (drop-if-full); close the channel to unsubscribe."""
        return self._fleet.subscribe(max_buffer)

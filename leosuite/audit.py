"""The audit log service: one place every surface records what happened.

Entries go to the store's ``audit_log`` table (topic, level, session, the
``id;ip;name`` user triple, message), to the daemon log, and to live subscribers (the
WebSocket ``events.subscribe``), each through a bounded buffer that drops for a slow
reader. An action that happened is reported as done: :meth:`AuditLog.record_done`
sends an entry the store cannot take (a full disk) to the daemon log, marked
``audit (not stored: ...)``, instead of failing the answer.

Text that a client chose (names, paths, field names) never starts a line of its own:
control characters, line and paragraph separators and bidirectional overrides are
written as escapes (``\\n``, ``\\x1b``, ``\\u2028``) in every entry and every line
the daemon logs (:func:`escape_controls`, :class:`LogFormatter`).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import msgspec
import trio

from .errors import DiskFull, StoreError
from .store import audit as audit_table
from .store.db import Database

if TYPE_CHECKING:
    from .settings import HousekeepingSettings

__all__ = ["Actor", "AuditEvent", "AuditLog", "LogFormatter", "escape_controls", "purge_audit"]

log = logging.getLogger("leosuite.audit")

_DAY = 86400.0

#: The daemon log's level for each audit level (anything else is INFO).
_LOG_LEVELS = {"warning": logging.WARNING, "error": logging.ERROR}

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: Line and paragraph separators, and the marks and overrides that reorder text.
_INVISIBLE = (
    0x061C,
    0x200E,
    0x200F,
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
)
_ESCAPES = {
    code: _NAMED.get(chr(code)) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    for code in (*range(0x20), *range(0x7F, 0xA0), *_INVISIBLE)
}


def escape_controls(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1), line or paragraph separator
    and bidirectional mark or override written as a visible escape."""
    return text.translate(_ESCAPES)


class LogFormatter(logging.Formatter):
    """A formatter whose message part is one line whatever its arguments held (a
    traceback, which the daemon itself writes, keeps its lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who did it: an account id (when known), the peer address and a name."""

    id: int | None = None
    ip: str = ""
    name: str = ""

    @property
    def triple(self) -> str:
        return f"{'' if self.id is None else self.id};{self.ip};{self.name}"


class AuditEvent(msgspec.Struct, frozen=True, kw_only=True):
    id: int  # 0: not stored (see AuditLog.record_done)
    timestamp: float
    level: str
    topic: str
    session: str
    user: str
    message: str


class AuditLog:
    def __init__(self, db: Database, now: Callable[[], float], *, subscriber_buffer: int = 256):
        self._db = db
        self._now = now
        self._subscribers: set[trio.MemorySendChannel[AuditEvent]] = set()
        self._buffer = subscriber_buffer

    async def record(
        self,
        topic: str,
        message: str,
        *,
        actor: Actor | None = None,
        level: str = "info",
        session: str = "",
    ) -> int:
        """Store an entry, log it and hand it to the live subscribers; its id. A store
        failure is raised (nothing is logged or handed on)."""
        entry_id = await self._record(topic, message, actor, level, session, fallback=False)
        assert entry_id is not None
        return entry_id

    async def record_done(
        self,
        topic: str,
        message: str,
        *,
        actor: Actor | None = None,
        level: str = "info",
        session: str = "",
    ) -> int | None:
        """Record an action that has already happened: like :meth:`record`, but when the
        store cannot take the entry (a full disk, any store failure) it goes to the
        daemon log as ``audit (not stored: <why>): ...`` and to the live subscribers
        (with id 0), and None is returned instead of an error."""
        return await self._record(topic, message, actor, level, session, fallback=True)

    async def _record(
        self,
        topic: str,
        message: str,
        actor: Actor | None,
        level: str,
        session: str,
        *,
        fallback: bool,
    ) -> int | None:
        actor = actor or Actor()
        if actor.name != (name := escape_controls(actor.name)):
            actor = Actor(id=actor.id, ip=actor.ip, name=name)
        topic, message, session = map(escape_controls, (topic, message, session))
        timestamp = self._now()

        def insert(conn: sqlite3.Connection) -> int:
            return audit_table.append(
                conn,
                timestamp=timestamp,
                level=level,
                topic=topic,
                session=session,
                user_id=actor.id,
                user_ip=actor.ip,
                user_name=actor.name,
                message=message,
            )

        log_level = _LOG_LEVELS.get(level, logging.INFO)
        entry_id: int | None
        try:
            entry_id = await self._db.call(insert)
        except (DiskFull, StoreError) as exc:
            if not fallback:
                raise
            entry_id = None
            why = "disk full" if isinstance(exc, DiskFull) else exc.message
            log.log(
                max(log_level, logging.WARNING),
                "audit (not stored: %s): %s [%s] %s: %s",
                why,
                topic,
                actor.triple,
                session,
                message,
            )
        else:
            log.log(log_level, "%s [%s] %s: %s", topic, actor.triple, session, message)
        event = AuditEvent(
            id=entry_id or 0,
            timestamp=timestamp,
            level=level,
            topic=topic,
            session=session,
            user=actor.triple,
            message=message,
        )
        for channel in list(self._subscribers):
            try:
                channel.send_nowait(event)
            except trio.WouldBlock:
                pass  # a slow subscriber misses entries; it can page them from the store
            except trio.BrokenResourceError:
                self._subscribers.discard(channel)
        return entry_id

    async def record_done_batch(
        self, topic: str, entries: Sequence[tuple[str, str]], *, actor: Actor | None = None
    ) -> None:
        """Record actions that have already happened, each ``(session, message)`` an
        entry, all in one store transaction; a store failure sends them to the daemon
        log as :meth:`record_done` does."""
        actor = actor or Actor()
        if actor.name != (name := escape_controls(actor.name)):
            actor = Actor(id=actor.id, ip=actor.ip, name=name)
        topic = escape_controls(topic)
        rows = [(escape_controls(s), escape_controls(m)) for s, m in entries]
        timestamp = self._now()

        def insert(conn: sqlite3.Connection) -> list[int]:
            return [
                audit_table.append(
                    conn,
                    timestamp=timestamp,
                    level="info",
                    topic=topic,
                    session=session,
                    user_id=actor.id,
                    user_ip=actor.ip,
                    user_name=actor.name,
                    message=message,
                )
                for session, message in rows
            ]

        if not rows:
            return
        try:
            ids = await self._db.call(insert)
            note = ""
        except (DiskFull, StoreError) as exc:
            ids = [0] * len(rows)
            why = "disk full" if isinstance(exc, DiskFull) else exc.message
            note = f"audit (not stored: {why})"
        for entry_id, (session, message) in zip(ids, rows, strict=True):
            if note:
                log.warning("%s: %s [%s] %s: %s", note, topic, actor.triple, session, message)
            else:
                log.info("%s [%s] %s: %s", topic, actor.triple, session, message)
            event = AuditEvent(
                id=entry_id,
                timestamp=timestamp,
                level="info",
                topic=topic,
                session=session,
                user=actor.triple,
                message=message,
            )
            for channel in list(self._subscribers):
                try:
                    channel.send_nowait(event)
                except trio.WouldBlock:
                    pass  # a slow subscriber misses entries; it can page them from the store
                except trio.BrokenResourceError:
                    self._subscribers.discard(channel)

    def subscribe(self) -> trio.MemoryReceiveChannel[AuditEvent]:
        send, receive = trio.open_memory_channel[AuditEvent](self._buffer)
        self._subscribers.add(send)
        return receive


async def purge_audit(db: Database, settings: HousekeepingSettings, now: float) -> int:
    """Housekeeping: delete audit entries older than ``audit_keep_days`` and all but
    the newest ``audit_keep_entries`` (0 disables either); how many were deleted."""
    older_than = now - settings.audit_keep_days * _DAY if settings.audit_keep_days else None
    keep_last = settings.audit_keep_entries or None
    if older_than is None and keep_last is None:
        return 0
    return await db.call(
        lambda conn: audit_table.purge(conn, older_than=older_than, keep_last=keep_last)
    )

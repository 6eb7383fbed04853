"""Persistent sessions: what survives a daemon restart.

A session whose ``persistent`` flag is set (possible while ``[community]
enable_persistence`` is on) is written to the store's ``chat_sessions`` tables with
its properties, password and operator password hashes, the accounts among its
operators and muted members, banned names, ``next_id`` and its history ring.
:meth:`SessionStore.save` runs on every housekeeping pass (only sessions that changed
since their last write) and once more on shutdown; :meth:`SessionStore.load`
recreates the sessions, empty of members, before any listener accepts a connection. A
persistent session does not vanish when its last member leaves, nor on idle close; a
session that stops being persistent, or is shut down, loses its row at the next save.

Rooms are not persisted: a session with ``room`` set (seed 004) is skipped, because
its keys (session keys, the SYSTEM key, room users' passwords) live only in memory
and a room without them is useless. A row saved before the session became a room is
left as it was, so the channel comes back as it was then.

History is stored as a msgpack list of :class:`StoredEvent` (``history_format`` 1).
A direct message keeps its sender's and recipient's identities only when both are
accounts: one that involved a guest (or was stored before identities were) is replayed
to nobody after a restart.
A row whose history cannot be decoded is restored without history (logged); a row
that cannot be restored at all (bad name, a name taken, the session limit reached)
is skipped, logged and left in the store untouched.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable

import msgspec

from ..errors import LeosuiteError
from ..store import chat_sessions as table
from ..store.chat_sessions import StoredSession
from ..store.db import Database
from .core import ChatCore
from .models import ChatEvent, EventKind, Level, Origin, Session

__all__ = [
    "HISTORY_FORMAT",
    "SessionStore",
    "StoredEvent",
    "decode_history",
    "encode_history",
    "restore",
    "snapshot",
]

log = logging.getLogger("leosuite.community.persistence")

HISTORY_FORMAT = 1


class StoredEvent(msgspec.Struct, array_like=True):
    """One :class:`ChatEvent` of a stored history (format 1; append fields only)."""

    id: int
    kind: EventKind
    user: str
    time: float
    text: str = ""
    origin: Origin = "system"
    payload: str | None = None
    to: str | None = None
    level: Level = "info"
    reason: str = ""
    sender_id: str = ""
    to_id: str = ""


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[StoredEvent])


def encode_history(session: Session) -> bytes:
    return _encoder.encode(
        [
            StoredEvent(
                id=e.id,
                kind=e.kind,
                user=e.user,
                time=e.time,
                text=e.text,
                origin=e.origin,
                payload=e.payload,
                to=e.to,
                level=e.level,
                reason=e.reason,
                sender_id=ids[0],
                to_id=ids[1],
            )
            for e in session.history
            for ids in [_lasting_ids(e)]
        ]
    )


def decode_history(blob: bytes, session: Session) -> list[ChatEvent]:
    """The events of a stored history; ``msgspec.DecodeError`` (a ``ValidationError``
    too) when the blob is not one."""
    if not blob:
        return []
    return [
        ChatEvent(
            e.kind,
            session,
            e.user,
            e.time,
            text=e.text,
            origin=e.origin,
            payload=e.payload,
            to=e.to,
            level=e.level,
            reason=e.reason,
            id=e.id,
            sender_id=e.sender_id,
            to_id=e.to_id,
        )
        for e in _decoder.decode(blob)
    ]


def _fingerprint(session: Session) -> tuple[object, ...]:
    """Changes whenever anything stored changes (history: through next_id and size)."""
    return (
        session.name,
        session.alias,
        session.title,
        session.founder,
        session.password_hash,
        session.opword_hash,
        session.closed,
        session.nsfm,
        session.auth_only,
        session.idle_override,
        session.preserve_chat,
        session.max_user_count,
        session.start_time,
        session.next_id,
        session.history_bytes,
        len(session.history),
        frozenset(session.ops),
        frozenset(session.muted),
        frozenset(session.banned),
    )


def _lasting_ids(event: ChatEvent) -> tuple[str, str]:
    """A direct message's sender and recipient as stored: accounts, or nobody at all
    when either was a guest (a guest's identity is one connection, and a restart hands
    its number to another), so that message is replayed to no one."""
    ids = (event.sender_id, event.to_id)
    if event.to is None or all(i.startswith("account:") for i in ids):
        return ids
    return ("", "")


def _lasting(identities: Iterable[str]) -> tuple[str, ...]:
    """The operators and muted members that outlive a restart: accounts only (a guest is
    one connection; a bare name from an older store gives no rights)."""
    return tuple(sorted(i for i in identities if i.startswith("account:")))


def snapshot(session: Session, now: float) -> StoredSession:
    return StoredSession(
        id=session.id,
        name=session.name,
        alias=session.alias,
        title=session.title,
        founder=session.founder,
        password_hash=session.password_hash,
        opword_hash=session.opword_hash,
        closed=session.closed,
        nsfm=session.nsfm,
        auth_only=session.auth_only,
        idle_override=session.idle_override,
        preserve_chat=session.preserve_chat,
        max_user_count=session.max_user_count,
        start_time=session.start_time,
        last_activity=session.last_activity,
        next_id=session.next_id,
        ops=_lasting(session.ops),
        muted=_lasting(session.muted),
        banned=tuple(sorted(session.banned)),
        history_format=HISTORY_FORMAT,
        history=encode_history(session),
        saved_at=now,
    )


def restore(core: ChatCore, stored: StoredSession) -> Session:
    """Recreate a stored session in ``core`` (no members). Raises the core's errors
    (InvalidInput, Conflict) when it cannot; a bad history is dropped and logged."""
    if stored.id in core.sessions:
        raise LeosuiteError(f"a session with id {stored.id} exists already")
    session = core.create(stored.name, None, founder_name=stored.founder, restored=True)
    del core.sessions[session.id]
    session.id = stored.id
    core.sessions[session.id] = session
    session.alias = stored.alias or session.name
    session.title = stored.title
    session.password_hash = stored.password_hash
    session.opword_hash = stored.opword_hash
    session.closed = stored.closed
    session.nsfm = stored.nsfm
    session.auth_only = stored.auth_only
    session.idle_override = stored.idle_override
    session.preserve_chat = stored.preserve_chat
    session.max_user_count = stored.max_user_count
    session.start_time = stored.start_time
    session.last_activity = stored.last_activity
    session.persistent = True
    session.ops = set(_lasting(stored.ops))
    session.muted = set(_lasting(stored.muted))
    session.banned = set(stored.banned)
    events: list[ChatEvent] = []
    if stored.history_format != HISTORY_FORMAT:
        log.warning(
            "persistent session %s (%s): history format %d is unknown; restored without history",
            session.name,
            session.id,
            stored.history_format,
        )
    else:
        try:
            events = decode_history(stored.history, session)
        except (msgspec.DecodeError, RecursionError) as exc:
            log.warning(
                "persistent session %s (%s): stored history is unreadable (%s); "
                "restored without history",
                session.name,
                session.id,
                exc,
            )
    session.history.extend(events)
    session.history_bytes = sum(e.size for e in events)
    limit = core.limits.session_size_limit
    while session.history and session.history_bytes > limit:
        session.history_bytes -= session.history.popleft().size
    last_id = session.history[-1].id if session.history else 0
    session.next_id = max(stored.next_id, last_id + 1, 1)
    return session


class SessionStore:
    """Saves and loads one core's persistent sessions (see the module docstring)."""

    def __init__(self, db: Database, now: Callable[[], float]) -> None:
        self._db = db
        self._now = now
        #: What was last written (or loaded), by session id.
        self._saved: dict[str, tuple[object, ...]] = {}

    async def load(self, core: ChatCore) -> list[Session]:
        """Recreate every stored session in ``core``; returns those restored."""
        stored = await self._db.call(table.list_all)
        if stored and not core.limits.enable_persistence:
            log.warning(
                "%d persistent sessions are in the store but enable_persistence is off: "
                "not loaded (they stay in the store)",
                len(stored),
            )
            return []
        restored: list[Session] = []
        for row in stored:
            try:
                session = restore(core, row)
            except LeosuiteError as exc:
                log.warning(
                    "persistent session %r (%s) not restored: %s (its row is kept)",
                    row.name,
                    row.id,
                    exc.message,
                )
                continue
            self._saved[session.id] = _fingerprint(session)
            restored.append(session)
        if restored:
            log.info("restored %d persistent sessions", len(restored))
        return restored

    async def save(self, core: ChatCore, *, force: bool = False) -> int:
        """Write the persistent sessions that changed (all with ``force``) and delete
        the rows of those that are gone or no longer persistent; returns rows written
        plus rows deleted. Does nothing while ``enable_persistence`` is off."""
        if not core.limits.enable_persistence:
            return 0
        now = self._now()
        current: dict[str, Session] = {}
        rooms: set[str] = set()
        for session in core.sessions.values():
            if session.room is not None:
                rooms.add(session.id)
            elif session.persistent:
                current[session.id] = session
        dirty: list[tuple[StoredSession, tuple[object, ...]]] = []
        for session in current.values():
            fingerprint = _fingerprint(session)
            if force or self._saved.get(session.id) != fingerprint:
                dirty.append((snapshot(session, now), fingerprint))
        gone = [sid for sid in self._saved if sid not in current and sid not in rooms]
        if not dirty and not gone:
            return 0

        def write(conn: sqlite3.Connection) -> int:
            for row, _ in dirty:
                table.upsert(conn, row)
            table.delete(conn, gone)
            return len(dirty) + len(gone)

        changed = await self._db.call(write)
        for row, fingerprint in dirty:
            self._saved[row.id] = fingerprint
        for sid in gone:
            self._saved.pop(sid, None)
        return changed

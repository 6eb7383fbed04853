"""The community as a daemon service: the chat core, its audit drain and housekeeping."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import trio

from ..audit import Actor, AuditLog
from ..settings import CommunitySettings
from ..store.db import Database
from .core import ChatCore
from .crypto_worker import CryptoWorker
from .models import AuditRecord, ChatLimits
from .password_guard import PasswordGuard
from .persistence import SessionStore
from .server_settings import ServerSettings, load_server_settings

__all__ = ["ChatService", "Housekeeper", "limits_from"]

log = logging.getLogger("leosuite.community")


class Housekeeper(Protocol):
    """Something the community service asks to tidy up on every housekeeping pass."""

    def housekeeping(self) -> None: ...


def limits_from(settings: CommunitySettings) -> ChatLimits:
    """The chat core's limits are the ``[community]`` settings (one definition)."""
    return settings


class ChatService:
    def __init__(
        self,
        settings: CommunitySettings,
        audit: AuditLog,
        now: Callable[[], float],
        *,
        housekeeping_interval: float = 10.0,
        db: Database | None = None,
    ) -> None:
        self.settings = settings
        self._audit = audit
        self._records_in, self._records_out = trio.open_memory_channel[AuditRecord](1000)
        self.dropped_audit_records = 0
        self.core = ChatCore(limits_from(settings), now, on_audit=self._on_audit)
        #: Wrong room and channel passwords, per address and per session (both chats).
        self.password_guard = PasswordGuard(trio.current_time, settings, on_audit=self._on_audit)
        self._interval = housekeeping_interval
        #: OpenPGP work for the rooms' SYSTEM messages, in a child process.
        self.crypto = CryptoWorker()
        #: Asked every housekeeping pass (the rooms add their retention and idle close).
        self.housekeepers: list[Housekeeper] = []
        #: Persistent sessions in the store (none without a database).
        self.session_store = SessionStore(db, now) if db is not None else None
        self._db = db
        #: Seed 002's server settings (admin API ``/server/``): the config file's
        #: values until the stored ones are loaded in :meth:`run`.
        self.server_settings = self._config_settings = ServerSettings.from_community(settings)
        #: Called after an administrator changed the server settings here (other nodes
        #: of the store read them again).
        self.on_server_settings_changed: list[Callable[[], None]] = []
        self._local_changes = 0

    def set_server_settings(self, new: ServerSettings) -> None:
        """Take new server settings at once (the chat core's limits among them)."""
        self._apply_server_settings(new)
        self._local_changes += 1
        for callback in list(self.on_server_settings_changed):
            callback()

    def _apply_server_settings(self, new: ServerSettings) -> None:
        self.server_settings = new
        self.core.update_limits(new.chat_limits(self.core.limits))

    async def reload_server_settings(self) -> None:
        """Read the stored server settings again (another node changed them)."""
        if self._db is None:
            return
        while True:  # a change made here while reading would be lost: read again
            before = self._local_changes
            stored = await load_server_settings(self._db, self._config_settings)
            if before == self._local_changes:
                break
        self._apply_server_settings(stored)

    def _on_audit(self, record: AuditRecord) -> None:
        try:
            self._records_in.send_nowait(record)
        except trio.WouldBlock:
            self.dropped_audit_records += 1

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._drain_audit)
                if self._db is not None:  # stored settings win over the config file
                    stored = await load_server_settings(self._db, self.server_settings)
                    self._apply_server_settings(stored)
                if self.session_store is not None:
                    await self.session_store.load(self.core)
                task_status.started()
                while True:
                    await trio.sleep(self._interval)
                    self.housekeeping()
                    await self.save_sessions()
        finally:
            with trio.CancelScope(shield=True):
                await self.save_sessions()
            await self.crypto.aclose()

    def housekeeping(self) -> None:
        for housekeeper in list(self.housekeepers):
            try:
                housekeeper.housekeeping()
            except Exception:
                log.exception("community housekeeping hook failed")
        for session in self.core.idle_sessions():
            # rooms warn first (their adapter closes them); persistent sessions stay
            if session.room is None and not session.persistent:
                self.core.close(session, "closed after being idle")

    async def save_sessions(self) -> None:
        """Write the persistent sessions that changed (logged, never raised)."""
        if self.session_store is not None:
            try:
                await self.session_store.save(self.core)
            except Exception:
                log.exception("could not save the persistent sessions; will retry")

    async def _drain_audit(self) -> None:
        async for record in self._records_out:
            try:
                await self._audit.record(
                    record.topic,
                    record.message,
                    actor=Actor(id=record.user_id, ip=record.ip, name=record.name),
                    level=record.level,
                    session=record.session,
                )
            except Exception:
                log.exception("could not write a community audit record")

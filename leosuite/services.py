"""The services every API surface shares, built on the open store: passwords and
tokens (the first admin is created here when the store has no account), the audit
log, the chat, the WebSocket API's hub and the ban list."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import trio

from .api.ws.conn import WsHub
from .audit import AuditLog
from .auth.accounts import INITIAL_PASSWORD_FILE, ensure_first_admin
from .auth.bans import BanList
from .auth.passwords import PasswordHasher
from .auth.service import AuthService
from .cluster.bus import Bus
from .community.service import ChatService
from .settings import Settings
from .store.db import Database

__all__ = ["Services", "open_services"]


@dataclass(frozen=True, eq=False)
class Services:
    audit: AuditLog
    auth: AuthService
    chat: ChatService
    hub: WsHub
    bans: BanList
    #: Events to and from the other nodes of the store.
    bus: Bus


async def open_services(
    db: Database,
    settings: Settings,
    *,
    bus: Bus,
    now: Callable[[], float],
    environ: Mapping[str, str],
    out: IO[str],
) -> Services:
    """Build the services; a generated first admin password is printed to ``out``."""
    auth_settings = settings.auth
    hasher = PasswordHasher(
        time_cost=auth_settings.hash_time_cost,
        memory_kib=auth_settings.hash_memory_kib,
        parallelism=auth_settings.hash_parallelism,
        concurrency=auth_settings.hash_concurrency,
    )
    data_dir: Path = settings.data_dir
    created_at = now()
    generated = await trio.to_thread.run_sync(
        lambda: ensure_first_admin(
            db,
            hasher,
            data_dir,
            environ,
            min_length=auth_settings.min_password_length,
            now=created_at,
        )
    )
    if generated is not None:
        print(
            f"Created the first account 'admin' with password: {generated}\n"
            f"(also saved in {data_dir / INITIAL_PASSWORD_FILE}, mode 0600; "
            "change it with 'leosuite user passwd admin')",
            file=out,
            flush=True,
        )
    audit = AuditLog(db, now)
    auth = AuthService(db, hasher, auth_settings, audit, now)
    chat = ChatService(settings.community, audit, now, db=db)
    hub = WsHub(settings.ws, audit)
    bans = BanList(db, audit, now, ws_hub=hub, chat=chat.core, auth=auth)
    await bans.load()
    return Services(audit=audit, auth=auth, chat=chat, hub=hub, bans=bans, bus=bus)

"""What the API surfaces are given: the services the daemon started.

The daemon builds one :class:`ApiContext` and hands it to each app factory; nothing
long-lived is created inside Quart (its lifespan swallows failures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..audit import AuditLog
from ..auth.service import AuthService
from ..settings import Settings
from ..store.db import Database

__all__ = ["ApiContext"]


@dataclass(eq=False)
class ApiContext:
    settings: Settings
    db: Database
    audit: AuditLog
    auth: AuthService
    now: Callable[[], float]
    #: The managed servers (``leosuite.servers.ServerManager``), once that surface exists.
    servers: Any = None
    #: The community (``community.service.ChatService``): chat core, rooms.
    chat: Any = None
    #: The open WebSocket connections (``api.ws_conn.WsHub``).
    ws_hub: Any = None
    #: The server-wide IP bans (``leosuite.auth.bans.BanList``).
    bans: Any = None
    #: Filled in by the daemon once every listener is bound.
    endpoints: dict[str, str] = field(default_factory=dict)
    started_at: float = 0.0

"""What the API surfaces are given: the services the daemon started.

The daemon builds one :class:`ApiContext` once every service exists and hands it to
each app factory; nothing long-lived is created inside Quart (its lifespan swallows
failures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..audit import AuditLog
from ..auth.service import AuthService
from ..cluster.console_tokens import ConsoleKeys
from ..cluster.forward import NodeCredential
from ..settings import Settings
from ..store.db import Database
from .grants import ServerGrants
from .metrics import DaemonMetrics

if TYPE_CHECKING:
    from ..auth.bans import BanList
    from ..backups.service import BackupService
    from ..cluster.nodes import NodeDirectory
    from ..community.service import ChatService
    from ..schedules.scheduler import Scheduler
    from ..supervision.logfile_registry import LogFollowers
    from ..supervision.manager import ServerManager
    from .ws.conn import WsHub

__all__ = ["ApiContext"]


@dataclass(eq=False)
class ApiContext:
    settings: Settings
    db: Database
    audit: AuditLog
    auth: AuthService
    now: Callable[[], float]
    #: The managed servers: definitions, supervisors, consoles.
    servers: ServerManager
    #: The community: chat core, sessions, rooms.
    chat: ChatService
    #: The open WebSocket API connections.
    ws_hub: WsHub
    #: The server-wide IP bans.
    bans: BanList
    #: Every listener's URL by name (``http``, ``ws``, ``admin``).
    endpoints: dict[str, str] = field(default_factory=dict)
    #: Rights on servers granted to other accounts (loaded at start).
    grants: ServerGrants = field(default_factory=ServerGrants)
    #: The daemon's Prometheus metrics and which listeners serve.
    metrics: DaemonMetrics = field(default_factory=DaemonMetrics)
    #: The servers' schedules (set once they are loaded, before any listener serves).
    schedules: Scheduler | None = None
    #: The servers' backups (set once the backup directory is swept, before any
    #: listener serves).
    backups: BackupService | None = None
    #: The console tokens' signing keys, as read from the store.
    console_keys: ConsoleKeys = field(default_factory=ConsoleKeys)
    #: The node-to-node credential of forwarded operations, as read from the store.
    node_credential: NodeCredential = field(default_factory=NodeCredential)
    started_at: float = 0.0
    #: The nodes sharing the store and the servers the other nodes run (set by the
    #: daemon before any listener serves).
    nodes: NodeDirectory | None = None

    @property
    def logfiles(self) -> LogFollowers:
        """The servers' own log files followed so far (their indexes): the manager's."""
        return self.servers.logfiles

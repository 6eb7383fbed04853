"""leosuite's store: a SQLite file, or a PostgreSQL database (``store.url``,
:mod:`leosuite.store.postgres`).

:class:`Database` owns the connection and its transactions; one module per
table family holds plain sync functions that take the ``sqlite3.Connection``
handed to ``Database.call(fn)``::

    account = await db.call(lambda c: accounts.get_by_name(c, "alice"))
"""

from __future__ import annotations

from . import accounts as accounts
from . import audit as audit
from . import kv as kv
from . import nodes as nodes
from . import servers as servers
from . import tokens as tokens
from .accounts import Account as Account
from .audit import AuditEntry as AuditEntry
from .db import Database as Database
from .schema import SCHEMA_VERSION as SCHEMA_VERSION
from .servers import ServerRecord as ServerRecord
from .tokens import Token as Token

__all__ = [
    "SCHEMA_VERSION",
    "Account",
    "AuditEntry",
    "Database",
    "ServerRecord",
    "Token",
    "accounts",
    "audit",
    "kv",
    "nodes",
    "servers",
    "tokens",
]

"""The per-owner quota on backup bytes (``backups.quota_bytes``), read in a store
transaction so that a check and the write it allows are one."""

from __future__ import annotations

import sqlite3

import msgspec

from ..store import accounts
from ..store import backups as backup_table

__all__ = ["Quota", "owner_quota"]


class Quota(msgspec.Struct, frozen=True):
    """The bytes of backups an account's servers hold, and its limit (0: none)."""

    used: int
    limit: int


def owner_quota(conn: sqlite3.Connection, owner_id: int | None, limit: int) -> Quota:
    """The quota of the account ``owner_id``: the bytes of the backups of every server
    it owns, and ``limit``; no limit for an ADMIN, a deleted account or no owner."""
    if owner_id is None:
        return Quota(used=0, limit=0)
    account = accounts.get(conn, owner_id)
    exempt = account is None or "ADMIN" in account.flags
    used = backup_table.used_by_owner(conn, owner_id)
    return Quota(used=used, limit=0 if exempt else limit)

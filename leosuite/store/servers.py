"""The ``servers`` table: managed servers, their type, settings and log offset.

A server is addressed by its unique name (1-64 chars of ``a-z 0-9 _ -``, not
starting with ``-``; it is also a directory name). ``settings`` is a JSON
object of the type's variable values. ``next_read_index`` is the console byte
offset the server's log continues from; it never goes back. Changing a server
that does not exist raises :class:`~leosuite.errors.NotFound`.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping

import msgspec

from ..errors import Conflict, InvalidInput, NotFound
from .accounts import parse_flags

__all__ = [
    "ServerRecord",
    "claim_unassigned",
    "create",
    "delete",
    "get",
    "get_by_name",
    "list_all",
    "list_of_node",
    "list_other_nodes",
    "names_of_node",
    "owner_flags",
    "set_next_read_index",
    "update_settings",
    "NAME_PATTERN",
    "NAME_RE",
    "validate_name",
]

#: A server name is 1-64 of a-z 0-9 _ -, not starting with - (it is a directory name).
NAME_PATTERN = "^[a-z0-9_][a-z0-9_-]{0,63}$"
NAME_RE = re.compile(NAME_PATTERN[1:-1], re.ASCII)

_settings_decoder = msgspec.json.Decoder(dict[str, object])
_encoder = msgspec.json.Encoder()


class ServerRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str
    type: str
    settings: dict[str, object]
    owner_id: int | None
    next_read_index: int
    created_at: float
    #: The node that runs it ('' for a server made before nodes existed, until one takes it).
    node: str = ""


def validate_name(name: object) -> str:
    """Return ``name`` unchanged if it is a valid server name, else InvalidInput."""
    if not isinstance(name, str) or NAME_RE.fullmatch(name) is None:
        raise InvalidInput(
            "server name must be 1-64 characters of a-z, 0-9, _ and -, not starting with -",
            field="server",
        )
    return name


def _encode_settings(settings: Mapping[str, object]) -> str:
    try:
        return _encoder.encode(dict(settings)).decode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"settings cannot be stored as JSON: {exc}", field="settings") from exc


_COLUMNS = "id, name, type, settings_json, owner_id, next_read_index, created_at, node"


def _row(row: tuple[int, str, str, str, int | None, int, float, str]) -> ServerRecord:
    return ServerRecord(
        id=row[0],
        name=row[1],
        type=row[2],
        settings=_settings_decoder.decode(row[3]),
        owner_id=row[4],
        next_read_index=row[5],
        created_at=row[6],
        node=row[7],
    )


def create(
    conn: sqlite3.Connection,
    *,
    name: str,
    type: str,
    settings: Mapping[str, object],
    created_at: float,
    owner_id: int | None = None,
    node: str = "",
) -> ServerRecord:
    """Insert a server; a taken name is a Conflict that does not say whose it is, an
    unknown owner NotFound."""
    validate_name(name)
    settings_json = _encode_settings(settings)
    if get_by_name(conn, name) is not None:
        raise Conflict("server name not available", field="server")
    if (
        owner_id is not None
        and conn.execute("SELECT 1 FROM accounts WHERE id = ?", (owner_id,)).fetchone() is None
    ):
        raise NotFound(f"no account with id {owner_id}", field="owner")
    cursor = conn.execute(
        "INSERT INTO servers "
        "(name, type, settings_json, owner_id, next_read_index, created_at, node) "
        "VALUES (?, ?, ?, ?, 0, ?, ?)",
        (name, type, settings_json, owner_id, created_at, node),
    )
    server_id = cursor.lastrowid
    assert server_id is not None
    return ServerRecord(
        id=server_id,
        name=name,
        type=type,
        settings=_settings_decoder.decode(settings_json),
        owner_id=owner_id,
        next_read_index=0,
        created_at=created_at,
        node=node,
    )


def get(conn: sqlite3.Connection, server_id: int) -> ServerRecord | None:
    query = f"SELECT {_COLUMNS} FROM servers WHERE id = ?"  # noqa: S608
    row = conn.execute(query, (server_id,)).fetchone()
    return None if row is None else _row(row)


def get_by_name(conn: sqlite3.Connection, name: str) -> ServerRecord | None:
    query = f"SELECT {_COLUMNS} FROM servers WHERE name = ?"  # noqa: S608
    row = conn.execute(query, (name,)).fetchone()
    return None if row is None else _row(row)


def list_all(conn: sqlite3.Connection) -> list[ServerRecord]:
    """Every server, by name."""
    query = f"SELECT {_COLUMNS} FROM servers ORDER BY name"  # noqa: S608
    return [_row(row) for row in conn.execute(query)]


def list_of_node(conn: sqlite3.Connection, node: str) -> list[ServerRecord]:
    """The servers of ``node``, by name ('' is every server when nodes are not used)."""
    if not node:
        return list_all(conn)
    query = f"SELECT {_COLUMNS} FROM servers WHERE node = ? ORDER BY name"  # noqa: S608
    return [_row(row) for row in conn.execute(query, (node,))]


def names_of_node(conn: sqlite3.Connection, node: str) -> set[str]:
    """The names of ``node``'s servers."""
    return {
        str(name) for (name,) in conn.execute("SELECT name FROM servers WHERE node = ?", (node,))
    }


def list_other_nodes(conn: sqlite3.Connection, node: str) -> list[ServerRecord]:
    """The servers of every node but ``node`` (none of no node), by name."""
    query = f"SELECT {_COLUMNS} FROM servers WHERE node <> ? AND node <> '' ORDER BY name"  # noqa: S608
    return [_row(row) for row in conn.execute(query, (node,))]


def claim_unassigned(conn: sqlite3.Connection, node: str, *, every: bool = False) -> list[str]:
    """Give ``node`` every server that belongs to no node yet (with ``every``, each
    server of another node too: a store only one node uses); their names."""
    rows = conn.execute(
        "UPDATE servers SET node = ? WHERE node = '' RETURNING name"
        if not every
        else "UPDATE servers SET node = ? WHERE node <> ? RETURNING name",
        (node,) if not every else (node, node),
    ).fetchall()
    return sorted(str(name) for (name,) in rows)


def owner_flags(conn: sqlite3.Connection) -> dict[int, frozenset[str]]:
    """The flags of every account that owns a server, by account id."""
    rows = conn.execute(
        "SELECT DISTINCT accounts.id, accounts.flags FROM servers "
        "JOIN accounts ON accounts.id = servers.owner_id"
    )
    return {account_id: parse_flags(flags) for account_id, flags in rows}


def update_settings(conn: sqlite3.Connection, name: str, settings: Mapping[str, object]) -> None:
    """Replace a server's settings as a whole."""
    cursor = conn.execute(
        "UPDATE servers SET settings_json = ? WHERE name = ?", (_encode_settings(settings), name)
    )
    if cursor.rowcount == 0:
        raise NotFound(f"no server named {name!r}", field="server")


def set_next_read_index(conn: sqlite3.Connection, name: str, index: int) -> int:
    """Record the console offset; an older value never replaces a newer one.
    Returns the stored value."""
    if index < 0:
        raise InvalidInput("a read index is never negative", field="readIndex")
    row = conn.execute(
        "UPDATE servers SET next_read_index = max(next_read_index, ?) WHERE name = ? "
        "RETURNING next_read_index",
        (index, name),
    ).fetchone()
    if row is None:
        raise NotFound(f"no server named {name!r}", field="server")
    return int(row[0])


def delete(conn: sqlite3.Connection, name: str) -> bool:
    """Delete a server's record; True if it existed."""
    return conn.execute("DELETE FROM servers WHERE name = ?", (name,)).rowcount > 0

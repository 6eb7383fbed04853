"""The ``nodes`` and ``server_states`` tables: the daemons sharing a store, and each
server's last known state as its node saw it.

Every node writes its own row when it starts and refreshes ``heartbeat_at`` every
``node.heartbeat_interval``, and sets ``stopped_at`` when it stops; rows are never
deleted (a node that went away is shown as such). ``server_states`` holds one row per
server, written by the node that runs it whenever its state changes, so that any node
can answer for the whole fleet.
Times are unix seconds of the writer's clock.
"""

from __future__ import annotations

import sqlite3

import msgspec

__all__ = [
    "NodeRecord",
    "ServerState",
    "get",
    "heartbeat",
    "list_all",
    "mark_stopped",
    "register",
    "server_states",
    "set_server_state",
]


class NodeRecord(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    public_url: str
    started_at: float
    heartbeat_at: float
    version: str
    #: The WebSocket API's URL clients reach it at.
    ws_url: str = ""
    #: When it said it stops (None while it runs).
    stopped_at: float | None = None


class ServerState(msgspec.Struct, frozen=True, kw_only=True):
    """A server's state as the node that runs it last wrote it."""

    server: str
    node: str
    state: str
    detail: str
    updated_at: float


_COLUMNS = "name, public_url, started_at, heartbeat_at, version, ws_url, stopped_at"


def _node(row: tuple[str, str, float, float, str, str, float | None]) -> NodeRecord:
    return NodeRecord(
        name=row[0],
        public_url=row[1],
        started_at=row[2],
        heartbeat_at=row[3],
        version=row[4],
        ws_url=row[5],
        stopped_at=row[6],
    )


def register(conn: sqlite3.Connection, record: NodeRecord) -> None:
    """Write this node's row as it starts (replacing what an earlier run left)."""
    conn.execute(
        "INSERT OR REPLACE INTO nodes "
        "(name, public_url, started_at, heartbeat_at, version, ws_url, stopped_at) "
        "VALUES (?, ?, ?, ?, ?, ?, NULL)",
        (
            record.name,
            record.public_url,
            record.started_at,
            record.heartbeat_at,
            record.version,
            record.ws_url,
        ),
    )


def heartbeat(conn: sqlite3.Connection, name: str, at: float) -> bool:
    """Move the node's heartbeat to ``at`` (never back); False if it has no row."""
    cursor = conn.execute(
        "UPDATE nodes SET heartbeat_at = max(heartbeat_at, ?) WHERE name = ?", (at, name)
    )
    return cursor.rowcount > 0


def mark_stopped(conn: sqlite3.Connection, name: str, at: float) -> None:
    """The node says it stops (its next start writes its row again)."""
    conn.execute("UPDATE nodes SET stopped_at = ? WHERE name = ?", (at, name))


def get(conn: sqlite3.Connection, name: str) -> NodeRecord | None:
    query = f"SELECT {_COLUMNS} FROM nodes WHERE name = ?"  # noqa: S608
    row = conn.execute(query, (name,)).fetchone()
    return None if row is None else _node(row)


def list_all(conn: sqlite3.Connection) -> list[NodeRecord]:
    """Every node that ever opened the store, by name."""
    query = f"SELECT {_COLUMNS} FROM nodes ORDER BY name"  # noqa: S608
    return [_node(row) for row in conn.execute(query)]


def set_server_state(
    conn: sqlite3.Connection, server: str, *, node: str, state: str, detail: str, at: float
) -> None:
    """Record the state ``node`` sees ``server`` in; a server that no longer exists is
    ignored."""
    conn.execute(
        "INSERT OR REPLACE INTO server_states (server_id, node, state, detail, updated_at) "
        "SELECT id, ?, ?, ?, ? FROM servers WHERE name = ?",
        (node, state, detail, at, server),
    )


def server_states(
    conn: sqlite3.Connection, node: str | None = None, *, other_than: str | None = None
) -> dict[str, ServerState]:
    """The last known state of every server (of ``node``'s only, or of every node but
    ``other_than``, when given), by name."""
    query = (
        "SELECT servers.name, server_states.node, state, detail, updated_at "
        "FROM server_states JOIN servers ON servers.id = server_states.server_id"
    )
    if node is not None:
        rows = conn.execute(query + " WHERE server_states.node = ?", (node,))
    elif other_than is not None:
        rows = conn.execute(query + " WHERE server_states.node <> ?", (other_than,))
    else:
        rows = conn.execute(query)
    return {
        name: ServerState(
            server=name, node=owner, state=state, detail=detail, updated_at=updated_at
        )
        for name, owner, state, detail, updated_at in rows
    }

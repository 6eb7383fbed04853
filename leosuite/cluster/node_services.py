"""What the daemon starts to be one node among several: the node directory (its
heartbeat), the writer of its servers' states and the reader of the other nodes'
servers. On a SQLite store only the directory runs (one node: nothing else reads the
servers' states, and there are no other nodes' servers to read)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import trio

from ..public_address import public_urls
from ..settings import Settings
from ..store.db import Database
from .fleet_states import StatePublisher, Supervised, sync_fleet
from .nodes import NodeDirectory

if TYPE_CHECKING:
    from .bus import Bus

__all__ = ["node_directory", "start_node_services"]


def node_directory(
    db: Database,
    settings: Settings,
    *,
    now: Callable[[], float],
    endpoints: dict[str, str],
    bus: Bus | None,
) -> NodeDirectory:
    """This daemon's node directory; its URLs are ``node.public_url`` (else
    ``http.public_url``, else the HTTP listener's) and ``ws.public_url`` (else implied
    by ``http.public_url``, else the WebSocket listener's)."""
    public = public_urls(settings.http.public_url, settings.ws.public_url)
    http_url = settings.node.public_url or public.http or endpoints["http"]
    ws_url = public.ws or endpoints["ws"]
    return NodeDirectory(
        db, settings.node, now=now, public_url=http_url.rstrip("/"), ws_url=ws_url, bus=bus
    )


async def start_node_services(
    nursery: trio.Nursery,
    db: Database,
    nodes: NodeDirectory,
    manager: Supervised,
    *,
    now: Callable[[], float],
    alone: bool,
) -> StatePublisher | None:
    """Start writing this node's servers' states and reading the other nodes' servers
    (after the manager loaded and re-adopted this node's servers); nothing when the
    node is ``alone`` (a SQLite store: no other node reads or writes)."""
    if alone:
        return None
    interval = nodes.settings.heartbeat_interval
    publisher = StatePublisher(db, manager, node=nodes.name, now=now, bus=nodes.bus)
    await nursery.start(publisher.run, interval)
    await nursery.start(partial(sync_fleet, manager, nodes.remote, nodes.bus, interval))
    return publisher

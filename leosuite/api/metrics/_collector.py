"""What a scrape reads from the daemon as it is: every server, the WebSocket hubs, the
chat, the login and ban counts. Nothing here runs between scrapes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ._nodes import node_metrics
from ._servers import ServerSeries

if TYPE_CHECKING:
    from ..context import ApiContext
    from ..ws.conn import WsHub

__all__ = ["StateCollector"]


class StateCollector(Collector):
    """Reads the daemon's state at scrape time (in the daemon's event loop)."""

    def __init__(self, ctx: ApiContext, hubs: Sequence[WsHub]) -> None:
        self._ctx = ctx
        self._hubs = hubs
        #: Account names by id, for the ``owner`` label; the scrape sets it first.
        self.owners: Mapping[int, str] = {}
        self._servers = ServerSeries()

    def collect(self) -> Iterator[Metric]:
        yield from self._servers.collect(self._ctx.servers, self.owners)
        yield from self._websocket()
        yield from self._chat()
        yield from self._security()
        yield from node_metrics(self._ctx.nodes)

    def _websocket(self) -> Iterator[Metric]:
        connections = GaugeMetricFamily(
            "leosuite_ws_connections", "Open WebSocket connections", labels=["listener"]
        )
        messages = CounterMetricFamily(
            "leosuite_ws_messages",
            "WebSocket messages received from and sent to clients",
            labels=["listener", "direction"],
        )
        for index, hub in enumerate(self._hubs):
            listener = "api" if index == 0 else "chat"
            connections.add_metric([listener], len(hub.connections))
            messages.add_metric([listener, "received"], hub.received)
            messages.add_metric([listener, "sent"], hub.sent)
        yield connections
        yield messages

    def _chat(self) -> Iterator[Metric]:
        core = self._ctx.chat.core
        sessions = GaugeMetricFamily(
            "leosuite_chat_sessions", "Open chat sessions (rooms are sessions too)", labels=["kind"]
        )
        rooms = sum(1 for s in core.sessions.values() if s.room is not None)
        sessions.add_metric(["session"], len(core.sessions) - rooms)
        sessions.add_metric(["room"], rooms)
        yield sessions
        yield GaugeMetricFamily(
            "leosuite_chat_members", "Members connected to the chat", value=len(core.members)
        )

    def _security(self) -> Iterator[Metric]:
        auth = self._ctx.auth
        logins = CounterMetricFamily(
            "leosuite_logins", "Password logins (HTTP and WebSocket API)", labels=["result"]
        )
        logins.add_metric(["success"], auth.logins)
        logins.add_metric(["failure"], auth.failed_logins)
        yield logins
        yield CounterMetricFamily(
            "leosuite_bans_hit",
            "Requests and connections refused because their address is banned",
            value=self._ctx.bans.refusals,
        )

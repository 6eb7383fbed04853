"""What a scrape reads from the daemon as it is: every server, the WebSocket hubs, the
chat, the login and ban counts. Nothing here runs between scrapes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from ...errors import LeosuiteError
from ...supervision.states import ACTIVE_STATES

if TYPE_CHECKING:
    from ..context import ApiContext
    from ..ws.conn import WsHub

__all__ = ["StateCollector"]

#: The only label of the per-server series; ``leosuite_server_info`` adds type and owner.
_SERVER = ["server"]


class _ServerFamilies:
    """The per-server families of one scrape."""

    def __init__(self) -> None:
        def gauge(name: str, doc: str, extra: Sequence[str] = ()) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"leosuite_server_{name}", doc, labels=[*_SERVER, *extra])

        def counter(name: str, doc: str) -> CounterMetricFamily:
            return CounterMetricFamily(f"leosuite_server_{name}", doc, labels=_SERVER)

        self.info = InfoMetricFamily(
            "leosuite_server", "1, labelled with the server's type and owner", labels=_SERVER
        )
        self.state = gauge("state", "1, labelled with the server's current state", ["state"])
        self.up = gauge("up", "1 while the server's process exists (starting, running, stopping)")
        self.uptime = gauge("uptime_seconds", "Seconds since the current process was spawned")
        self.restarts = counter("restarts", "Automatic restarts since the daemon started")
        self.exit_code = gauge("last_exit_code", "Exit code of the last process (when known)")
        self.cpu = counter("cpu_seconds", "CPU seconds of the process group's live processes")
        self.rss = gauge("memory_rss_bytes", "Resident memory of the process group")
        self.threads = gauge("threads", "Threads of the process group")
        self.console = counter("console_bytes", "Console bytes written (the console's end index)")
        self.readers = gauge("console_readers", "Tasks following the console (polls, streams)")

    def all(self) -> list[Metric]:
        return [
            self.info,
            self.state,
            self.up,
            self.uptime,
            self.restarts,
            self.exit_code,
            self.cpu,
            self.rss,
            self.threads,
            self.console,
            self.readers,
        ]


def _put(family: Metric, labels: dict[str, str], value: float) -> None:
    """One sample of ``family``; a server's samples share one label dict (what
    ``add_metric`` would build anew for each), counters' named with ``_total`` as
    ``CounterMetricFamily.add_metric`` names them."""
    name = f"{family.name}_total" if family.type == "counter" else family.name
    family.samples.append(Sample(name, labels, value))


class StateCollector(Collector):
    """Reads the daemon's state at scrape time (in the daemon's event loop)."""

    def __init__(self, ctx: ApiContext, hubs: Sequence[WsHub]) -> None:
        self._ctx = ctx
        self._hubs = hubs
        #: Account names by id, for the ``owner`` label; the scrape sets it first.
        self.owners: Mapping[int, str] = {}

    def collect(self) -> Iterator[Metric]:
        yield from self._servers()
        yield from self._websocket()
        yield from self._chat()
        yield from self._security()

    def _servers(self) -> list[Metric]:
        manager = self._ctx.servers
        f = _ServerFamilies()
        for name in manager.names():
            record = manager.find_record(name)
            if record is None:
                continue
            try:
                supervisor = manager.supervisor(name)
                console = manager.console(name)
            except (LeosuiteError, KeyError):
                continue  # destroyed while the scrape ran
            owner = self.owners.get(record.owner_id, "") if record.owner_id is not None else ""
            # Type and owner ride on one info series a server, not on each of its series.
            f.info.add_metric([name], {"type": record.type, "owner": owner})
            status = supervisor.status()
            # The current state only: one sample a server instead of one per state.
            f.state.add_metric([name, status.state.value], 1.0)
            labels = {"server": name}
            _put(f.up, labels, 1.0 if status.state in ACTIVE_STATES else 0.0)
            _put(f.uptime, labels, status.uptime or 0.0)
            _put(f.restarts, labels, status.restarts)
            if status.exit_code is not None:
                _put(f.exit_code, labels, status.exit_code)
            stats = supervisor.stats
            if stats is not None:
                _put(f.cpu, labels, stats.cpu_seconds)
                _put(f.rss, labels, stats.rss_bytes)
                _put(f.threads, labels, stats.threads)
            # A console whose files cannot be read leaves its series out.
            with contextlib.suppress(LeosuiteError):
                _put(f.console, labels, console.end_index)
            _put(f.readers, labels, console.waiting)
        return f.all()

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

"""The daemon's own metrics registry: the few counters and histograms that events feed,
the process collector, and the collector that reads everything else at scrape time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import trio
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ._collector import StateCollector

if TYPE_CHECKING:
    from ..context import ApiContext
    from ..ws.conn import WsHub

__all__ = ["HTTP_METHODS", "LISTENERS", "UNMATCHED", "DaemonMetrics"]

#: The listeners readiness waits for, by their settings key's section.
LISTENERS = ("http", "ws", "admin")
#: Methods counted by name; any other is counted as ``OTHER`` (label values stay bounded).
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The route label of a request no route matched (its raw path is never a label).
UNMATCHED = "(unmatched)"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
_COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)

# Text-format scrapes show only the series asked for, not a ``_created`` twin of each.
disable_created_metrics()  # type: ignore[no-untyped-call]


class DaemonMetrics:
    """One daemon's metrics; several daemons in one process keep theirs apart."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.http_requests = Counter(
            "leosuite_http_requests",
            "HTTP requests answered, by listener, route pattern, method and status",
            ["listener", "route", "method", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "leosuite_http_request_duration_seconds",
            "Time from routing a request to its answer, by listener and route pattern",
            ["listener", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.store_commit = Histogram(
            "leosuite_store_commit_duration_seconds",
            "Time one group-commit batch of the store takes, queue to commit",
            buckets=_COMMIT_BUCKETS,
            registry=self.registry,
        )
        self.admin_auth_failures = Counter(
            "leosuite_admin_auth_failures",
            "Admin API requests refused for missing or wrong credentials",
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        #: The listeners serving now (``http``, ``ws``, ``admin``); the daemon keeps it.
        self.listening: set[str] = set()
        self._state: StateCollector | None = None
        self._render: _Render | None = None
        self._texts = _Texts()

    def attach(self, ctx: ApiContext, hubs: Sequence[WsHub]) -> None:
        """Read the daemon's state at scrape time from ``ctx`` and the WebSocket
        ``hubs`` (the API's first), and time the store's batches."""
        self._state = StateCollector(ctx, hubs)
        self.registry.register(self._state)
        ctx.db.on_batch = self.store_commit.observe

    def observe_request(
        self, listener: str, route: str, method: str, status: int, seconds: float | None
    ) -> None:
        method = method if method in HTTP_METHODS else "OTHER"
        self.http_requests.labels(listener, route, method, str(status)).inc()
        if seconds is not None:
            self.http_duration.labels(listener, route).observe(seconds)

    async def exposition(self, owners: Callable[[], Awaitable[Mapping[int, str]]]) -> bytes:
        """The Prometheus text format of everything, ``owners`` naming the accounts that
        own servers (by id). The values are read in the event loop; the text is written
        in a worker thread, so a large fleet's scrape does not hold the loop up. A scrape
        that arrives while another is being written gets that one's text."""
        while (render := self._render) is not None:
            await render.done.wait()
            if render.body is not None:
                return render.body
        render = self._render = _Render()
        try:
            render.body = await self._write(await owners())
            return render.body
        finally:
            self._render = None
            render.done.set()

    async def _write(self, owners: Mapping[int, str]) -> bytes:
        if self._state is not None:
            self._state.owners = owners
        metrics = list(self.registry.collect())
        return await trio.to_thread.run_sync(self._texts.write, metrics)


class _Render:
    """One exposition being written, awaited by the scrapes that arrive meanwhile (a
    failed or cancelled one leaves ``body`` None: they write their own)."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.body: bytes | None = None


class _Texts:
    """Each family's text as the last scrape wrote it, written again by
    ``generate_latest`` only when the family changed: most of a fleet's series hold
    still between scrapes (the exposition is the family texts one after the other)."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[Metric, bytes]] = {}

    def write(self, metrics: list[Metric]) -> bytes:
        last, self._last = self._last, {}
        texts = []
        for metric in metrics:
            old = last.get(metric.name)
            # Metric equality compares name, type, help, unit and every sample.
            if old is not None and old[0] == metric:
                text = old[1]
            else:
                text = generate_latest(_Collected([metric]))
            self._last[metric.name] = (metric, text)
            texts.append(text)
        return b"".join(texts)


class _Collected(Collector):
    """Metrics read already, handed to the exposition as they are."""

    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics

"""The HTTP side of the metrics: request counting on both HTTP listeners, ``GET
/metrics`` on the admin listener, ``GET /healthz`` and ``GET /readyz`` on the HTTP one.

``/metrics`` takes ADMIN credentials, or ``metrics.scrape_token`` as ``Authorization:
Bearer`` (compared in constant time). ``/healthz`` answers as soon as the event loop
does; ``/readyz`` answers 200 when every listener serves, the store's files can be
written (a PostgreSQL store: its connection is not found lost) and the data
directory's filesystem is above ``daemon.disk_warn_free_*``, and 503 naming what is
not ready otherwise. Neither touches the store.
"""

from __future__ import annotations

import hmac
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from quart import Response, g, request
from quart_trio import QuartTrio

from ...disk_watch import FreeSpace, classify, disk_level
from ...settings import Settings
from ...store import accounts
from ._registry import LISTENERS, UNMATCHED, DaemonMetrics

if TYPE_CHECKING:
    from ..context import ApiContext

__all__ = ["add_health_routes", "count_requests", "metrics_view", "readiness"]

_JSON = "application/json"


def count_requests(app: QuartTrio, metrics: DaemonMetrics, listener: str) -> None:
    """Count every answered request of ``app`` by its route pattern (never its raw
    path), method and status, and time it from routing to the answer."""

    # A coroutine function, as every hook: Quart runs a plain function in a worker thread.
    async def _started() -> None:
        g.leosuite_started = time.perf_counter()

    # The first before_request hook, so refusals by later hooks are timed too (a URL
    # value preprocessor would also run for a WebSocket upgrade, where Quart fails).
    app.before_request_funcs.setdefault(None, []).insert(0, _started)

    @app.after_request
    async def _count(response: Response) -> Response:
        started = g.get("leosuite_started")
        rule = request.url_rule
        metrics.observe_request(
            listener,
            rule.rule if rule is not None else UNMATCHED,
            request.method,
            response.status_code,
            None if started is None else time.perf_counter() - started,
        )
        return response


def metrics_view(
    ctx: ApiContext, authorize: Callable[[], Awaitable[object]]
) -> Callable[[], Awaitable[Response]]:
    """The view of ``GET /metrics``; ``authorize`` refuses a request without ADMIN
    credentials (it raises)."""
    token = ctx.settings.metrics.scrape_token.encode()

    async def metrics() -> Response:
        if not (token and _bearer_is(token)):
            await authorize()
        await ctx.servers.fresh_stats()  # nobody watching, the passes are a minute apart
        body = await ctx.metrics.exposition(lambda: _owner_names(ctx))
        return Response(body, status=200, content_type=CONTENT_TYPE_PLAIN_0_0_4)

    return metrics


def _bearer_is(token: bytes) -> bool:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token)


async def _owner_names(ctx: ApiContext) -> dict[int, str]:
    manager = ctx.servers
    wanted = {
        record.owner_id
        for name in manager.names()
        if (record := manager.find_record(name)) is not None and record.owner_id is not None
    }
    if not wanted:
        return {}

    def names(conn: sqlite3.Connection) -> dict[int, str]:
        found = (accounts.get(conn, i) for i in wanted)
        return {a.id: a.username for a in found if a is not None}

    return await ctx.db.call(names)


def readiness(
    settings: Settings, listening: set[str], store_lost_since: float | None = None
) -> dict[str, str]:
    """What keeps the daemon from being ready, by check (empty when it is ready);
    ``store_lost_since``: when the connection to a PostgreSQL store was found lost."""
    failing: dict[str, str] = {}
    missing = [name for name in LISTENERS if name not in listening]
    if missing:
        failing["listeners"] = f"not serving: {', '.join(missing)}"
    if store_lost_since is not None:
        lost_for = max(0.0, time.monotonic() - store_lost_since)
        failing["store"] = f"the connection to the store is lost since {lost_for:.0f} s"
    store = settings.db_path
    wal = store.with_name(store.name + "-wal")
    # A PostgreSQL store has no file here: its connection is the store's own concern.
    paths = [] if settings.store.url else [store, store.parent, *([wal] if wal.exists() else [])]
    # access(2) also refuses root a write to an immutable file or a read-only mount.
    unwritable = [str(p.name or p) for p in paths if not os.access(p, os.W_OK)]
    if unwritable:
        failing["store"] = f"cannot be written: {', '.join(unwritable)}"
    level = _disk_level(settings.data_dir, settings)
    if level != "ok":
        failing["disk"] = f"free space of the data directory's filesystem is {level}"
    return failing


def _disk_level(data_dir: Path, settings: Settings) -> str:
    try:
        space = FreeSpace.of(data_dir)
    except OSError as exc:
        return f"unknown ({exc.strerror})"
    return classify(
        space,
        warn_bytes=settings.daemon.disk_warn_free_bytes,
        warn_percent=settings.daemon.disk_warn_free_percent,
        write_failed=disk_level(data_dir) == "full",
    )


def add_health_routes(app: QuartTrio, ctx: ApiContext) -> None:
    """``GET /healthz`` and ``GET /readyz`` (public) on the HTTP API app."""

    async def healthz() -> Response:
        return Response(msgspec.json.encode({"status": "ok"}), content_type=_JSON)

    async def readyz() -> Response:
        # Only a PostgreSQL store has a connection to lose (no I/O: what its last call found).
        lost = getattr(ctx.db, "lost_since", None)
        failing = readiness(ctx.settings, ctx.metrics.listening, lost)
        body = {"status": "unready", "failing": failing} if failing else {"status": "ready"}
        return Response(
            msgspec.json.encode(body), status=503 if failing else 200, content_type=_JSON
        )

    app.add_url_rule("/healthz", "healthz", healthz, methods=["GET"])
    app.add_url_rule("/readyz", "readyz", readyz, methods=["GET"])

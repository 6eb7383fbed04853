"""``leosuite serve``: the ONE root nursery and everything it starts.

Start order (each piece with ``nursery.start`` so "ready" means ready): receive
signals, lock the data directory, bind every listener (a taken port fails here,
before anything runs), open the store, create the first admin, load the servers
(re-adopting those still running), then start housekeeping, the HTTP API, the admin
API and the WebSocket listener; then write ``<data>/run/endpoints.json`` and tell
systemd ``READY=1``.

Shutdown (SIGTERM/SIGINT or :meth:`Daemon.request_stop`): ``STOPPING=1``, the HTTP
listeners stop accepting and drain in-flight requests, WebSocket connections are
closed, running servers are stopped, the store is closed; exit 0. The whole stop is
bounded by ``daemon.shutdown_timeout``: past it, every server still running is
SIGKILLed at once. A second signal means "hurry": every server's process group is
SIGKILLed now, the daemon waits (bounded) for their exits and exits 1. With
``daemon.on_exit = "leave"`` the servers are left running instead, and a second
signal ends the process at once.

Reload (SIGHUP, ``leosuite reload``): ``RELOADING=1``, the listeners stop accepting
(their sockets stay open: new connection attempts wait in the accept queue),
WebSocket connections are closed with 1012, in-flight HTTP requests get
:data:`RELOAD_DRAIN` seconds, every server is left running, the store is closed, and
the process re-executes itself with the same pid, its listening sockets and its lock
(:mod:`leosuite.reload`); the new image re-adopts the servers and serves again.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import IO, Any, Literal

import msgspec
import trio

from . import systemd
from .api.admin.app import create_admin_app
from .api.context import ApiContext
from .api.fd_reserve import DescriptorReserve, describe_nofile_limit
from .api.http.app import create_http_app
from .api.serve import serve_app
from .api.ws.conn import WsHub
from .api.ws.listener import CLOSE_SERVICE_RESTART, WebSocketListener, websocket_listener
from .audit import AuditLog
from .auth.token_watch import watch_tokens
from .backups.service import BackupService
from .clock import WallClock
from .cluster.bus import Bus, create_bus
from .cluster.chat_relay import run_chat_relay
from .cluster.node_services import node_directory, start_node_services
from .cluster.sync import run_cluster_sync
from .disk_watch import watch_free_space
from .errors import LeosuiteError
from .housekeeping import run_housekeeping
from .memory_trim import cap_arenas, settle_collector
from .reload import Handoff, exec_self, monotonic_usec
from .schedules.service import start_scheduler
from .services import open_services
from .settings import Settings
from .signals import hold_signals, release_signals, stop_signal_untaken, watch_signals
from .startup import (
    DataDirLock,
    bind_listener,
    listener_url,
    open_listeners,
    prepare_data_dir,
    write_atomic,
)
from .store.db import Database
from .store.opening import open_store
from .supervision.cgroups_limits import open_limits
from .supervision.fleet import Fleet
from .supervision.manager import ServerManager
from .supervision.run_as import drop_inheritable_capabilities
from .supervision.states import Backoff

__all__ = ["RELOAD_DRAIN", "Daemon", "Endpoints", "bind_listener", "run_daemon"]

log = logging.getLogger("leosuite.daemon")

#: How long in-flight requests and WebSocket closes may take when the daemon reloads.
RELOAD_DRAIN = 0.25
#: How long letting the servers go may take on a reload (it signals nothing).
RELOAD_LEAVE_LIMIT = 5.0

#: Why the daemon stops serving: stop the servers, leave them running, or reload.
ExitMode = Literal["stop", "leave", "reload"]


class Endpoints(msgspec.Struct, frozen=True):
    http: str
    ws: str
    admin: str
    pid: int
    #: Reloads this process has been through; ``leosuite reload`` waits for it to grow.
    generation: int = 0


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        environ: Mapping[str, str] | None = None,
        out: IO[str] | None = None,
        handle_signals: bool = True,
        init: bool = False,
        handoff: Handoff | None = None,
    ) -> None:
        self.settings = settings
        self.environ = os.environ if environ is None else environ
        self.out = out or sys.stdout
        self.handle_signals = handle_signals
        #: Accept an empty store file as a fresh store (``serve --init``; not on a reload).
        self.init = init and handoff is None
        self.endpoints: Endpoints | None = None
        self.context: ApiContext | None = None
        #: Set by :meth:`hurry`: the stop was cut short (exit code 1).
        self.hurried = False
        self._reset(handoff)

    def _reset(self, handoff: Handoff | None) -> None:
        """Start afresh from ``handoff`` (also after an ``execve`` that failed)."""
        #: What the image this one replaced handed over (a reload), if anything.
        self.handoff = handoff
        self.exit_mode: ExitMode | None = None
        #: A stop signal came during a reload: the next image stops once it serves.
        self.stop_after_reload = False
        self._stop = trio.Event()
        self._shutdown_http = trio.Event()
        self._fleet: Fleet | None = None
        #: Bounds the graceful stop of the servers; cancelled by :meth:`hurry`.
        self._graceful = trio.CancelScope()
        if handoff is not None and handoff.stop:
            self.request_stop()  # a stop signal came while the previous image reloaded

    @property
    def generation(self) -> int:
        return 0 if self.handoff is None else self.handoff.generation

    def request_stop(self) -> None:
        """Stop serving; the servers are stopped or left as ``daemon.on_exit`` says."""
        if self.exit_mode is None:
            self.exit_mode = "leave" if self.settings.daemon.on_exit == "leave" else "stop"
        self._stop.set()

    def request_reload(self) -> None:
        """Re-execute in place, leaving every server running (signal handling only:
        it replaces the process image)."""
        self.exit_mode = "reload"
        self._stop.set()

    def _stop_pending(self) -> bool:
        """A stop signal came during the reload, taken by the receiver or on its way."""
        return self.stop_after_reload or stop_signal_untaken()

    def hurry(self) -> None:
        """Cut the stop short: SIGKILL every server's process group now, stop draining
        requests once they are gone; their exits are still waited for (bounded)."""
        self.hurried = True
        self._stop.set()
        self.kill_servers_now()
        self._graceful.cancel()

    def kill_servers_now(self) -> None:
        """SIGKILL every server's process group (best effort, no waiting)."""
        if self._fleet is not None:
            self._fleet.kill_now()

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    async def run(
        self, *, task_status: trio.TaskStatus[Endpoints] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with trio.open_nursery() as nursery:
            if self.handle_signals:
                await nursery.start(watch_signals, self)
            while True:
                handoff = await self._run(task_status)
                if handoff is None:
                    break
                # Still receiving signals here: none can take the process down.
                log.info("re-executing %s (generation %d)", sys.executable, handoff.generation)
                try:
                    exec_self(handoff, stop_pending=self._stop_pending)
                except OSError:
                    log.exception("cannot re-execute: starting again in this process")
                self._reset(handoff)
                self.init = False
                if self.handle_signals:
                    release_signals()
                task_status = trio.TASK_STATUS_IGNORED
            nursery.cancel_scope.cancel()

    async def _run(self, task_status: trio.TaskStatus[Endpoints]) -> Handoff | None:
        """Serve once; the handoff for the next image when reloading, else None."""
        settings = self.settings
        handoff = self.handoff
        drop_inheritable_capabilities()  # before any worker thread: they inherit it
        run_dir = prepare_data_dir(self.data_dir)
        lock = DataDirLock(run_dir)
        if handoff is None or not lock.adopt(handoff.lock):
            lock.acquire()
        sockets: dict[str, socket.socket] = {}
        reloading = False
        try:
            sockets = open_listeners(settings, {} if handoff is None else handoff.listeners)
            db = await trio.to_thread.run_sync(
                partial(open_store, settings, data_dir=self.data_dir, init=self.init)
            )
            try:
                async with trio.open_nursery() as store:  # the store's writer outlives its users
                    await store.start(db.run_writer)
                    # Listening for other nodes' events before anything is read from the store.
                    bus = create_bus(settings, settings.node.name)
                    await store.start(bus.run)
                    await self._serve(db, bus, sockets, run_dir, task_status)
                    store.cancel_scope.cancel()
            finally:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(db.close)
            reloading = self.exit_mode == "reload"
        finally:
            if not reloading:
                for sock in sockets.values():
                    sock.close()
                (run_dir / "endpoints.json").unlink(missing_ok=True)
                lock.release()
        if not reloading:
            return None
        # The listening sockets and the lock cross the exec as plain descriptors.
        return Handoff(
            generation=self.generation + 1,
            lock=lock.fileno(),
            listeners={key: sock.detach() for key, sock in sockets.items()},
            stop=self.stop_after_reload,
        )

    async def _serve(
        self,
        db: Database,
        bus: Bus,
        sockets: dict[str, socket.socket],
        run_dir: Path,
        task_status: trio.TaskStatus[Endpoints],
    ) -> None:
        settings = self.settings
        now = WallClock()
        services = await open_services(
            db, settings, bus=bus, now=now, environ=self.environ, out=self.out
        )
        audit, hub = services.audit, services.hub
        started_at = now()
        endpoints = {
            "http": listener_url("http", sockets["http.listen"]),
            "ws": listener_url("ws", sockets["ws.listen"]),
            "admin": listener_url("http", sockets["admin.listen"]),
        }
        graceful = min(settings.daemon.shutdown_timeout, 30.0)
        http_common: dict[str, Any] = {
            "read_timeout": settings.http.read_timeout,
            "keep_alive_timeout": settings.http.keep_alive_timeout,
            "graceful_timeout": graceful,
            "shutdown": self._shutdown_http,
        }
        # The libraries close the sockets they serve: each gets a duplicate, so the
        # originals stay open for a reload (duplicates are close-on-exec).
        dups = {key: sock.dup() for key, sock in sockets.items()}
        # Every listener refuses connections rather than let them exhaust descriptors.
        reserve = DescriptorReserve()
        http_common["reserve"] = reserve
        try:
            async with trio.open_nursery() as nursery:
                fleet = Fleet(
                    now=now,
                    backoff=Backoff(
                        initial=settings.servers.backoff_initial,
                        cap=settings.servers.backoff_max,
                        stable_after=settings.servers.backoff_reset_after,
                    ),
                    stats_interval=settings.servers.stats_interval,
                    command_max_bytes=settings.servers.command_max_bytes,
                    limits=open_limits(settings.limits),
                )
                await nursery.start(fleet.run)
                self._fleet = fleet
                nodes = node_directory(db, settings, now=now, endpoints=endpoints, bus=bus)
                await nursery.start(nodes.run)
                manager = ServerManager(
                    db=db,
                    fleet=fleet,
                    settings=settings.servers,
                    data_dir=self.data_dir,
                    now=now,
                    node=nodes.name,
                    sole_node=not settings.store.url,  # a SQLite store has one node
                )
                await manager.load()
                await start_node_services(
                    nursery, db, nodes, manager, now=now, alone=not settings.store.url
                )
                ctx = self.context = ApiContext(
                    settings=settings,
                    db=db,
                    audit=audit,
                    auth=services.auth,
                    now=now,
                    servers=manager,
                    chat=services.chat,
                    ws_hub=hub,
                    bans=services.bans,
                    endpoints=endpoints,
                    started_at=started_at,
                    nodes=nodes,
                )
                await ctx.grants.load(db)
                await nursery.start(
                    partial(
                        run_cluster_sync,
                        bus,
                        db=db,
                        auth=services.auth,
                        bans=services.bans,
                        chat=services.chat,
                        grants=ctx.grants,
                    )
                )
                ws_listener = websocket_listener(ctx, dups["ws.listen"], reserve=reserve)
                ctx.metrics.attach(ctx, ws_listener.hubs)
                await nursery.start(services.chat.run)
                if settings.store.url:  # chat members on other nodes (none on a SQLite store)
                    await nursery.start(run_chat_relay, services.chat.core, bus, now)
                await nursery.start(run_housekeeping, ctx)
                ctx.backups = BackupService(
                    db=db,
                    manager=manager,
                    settings=settings.backups,
                    root=settings.backups_dir,
                    audit=audit,
                    now=now,
                )
                await nursery.start(ctx.backups.run)
                await start_scheduler(ctx, nursery)
                await nursery.start(watch_tokens, services.auth, settings.db_path)
                await nursery.start(watch_free_space, self.data_dir, settings.daemon, audit)
                await nursery.start(reserve.run)
                apps = {
                    "http.listen": create_http_app(ctx),
                    "admin.listen": create_admin_app(ctx),
                }
                async with trio.open_nursery() as listeners:
                    for key, app in apps.items():
                        await listeners.start(partial(serve_app, app, dups[key], **http_common))
                        ctx.metrics.listening.add(key.partition(".")[0])
                    ws_scope = trio.CancelScope()

                    async def run_ws(
                        *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
                    ) -> None:
                        with ws_scope:
                            await ws_listener.run(task_status=task_status)

                    await listeners.start(run_ws)
                    ctx.metrics.listening.add("ws")
                    autostarted = await fleet.start_autostart()
                    if autostarted:
                        log.info("autostarted: %s", ", ".join(autostarted))
                    self.endpoints = Endpoints(
                        pid=os.getpid(), generation=self.generation, **ctx.endpoints
                    )
                    write_atomic(run_dir / "endpoints.json", msgspec.json.encode(self.endpoints))
                    log.info(
                        "leosuite ready: dashboard and HTTP API %s/, WebSocket %s, admin API %s"
                        " (%s)",
                        self.endpoints.http,
                        self.endpoints.ws,
                        self.endpoints.admin,
                        describe_nofile_limit(),
                    )
                    if self.generation:
                        note = f"reloaded (pid {os.getpid()}, generation {self.generation})"
                    else:
                        note = f"started (pid {os.getpid()})"
                    await audit.record_done("daemon", note)
                    systemd.notify("READY=1\nSTATUS=serving", self.environ)
                    interval = systemd.watchdog_interval(self.environ)
                    if interval is not None:
                        nursery.start_soon(systemd.ping_watchdog, interval, self.environ)
                    task_status.started(self.endpoints)

                    await self._stop.wait()
                    if ctx.schedules is not None:
                        ctx.schedules.close()  # no scheduled start while servers stop
                    ctx.metrics.listening.clear()  # not ready once it stops accepting
                    if self.exit_mode == "reload":
                        await self._begin_reload(audit, ws_listener, manager)
                        listeners.cancel_scope.deadline = trio.current_time() + RELOAD_DRAIN
                    else:
                        await nodes.announce_stop()
                        await self._stop_servers(audit, manager, hub, ws_scope, listeners)
                if self.exit_mode == "reload":
                    with trio.move_on_after(RELOAD_LEAVE_LIMIT) as leaving:
                        await manager.leave()
                    if leaving.cancelled_caught:
                        log.warning("the servers were not let go within %.0f s", RELOAD_LEAVE_LIMIT)
                nursery.cancel_scope.cancel()
        finally:
            reserve.close()
            for dup in dups.values():
                dup.close()
        log.info("reloading now" if self.exit_mode == "reload" else "stopped")

    async def _begin_reload(
        self, audit: AuditLog, ws_listener: WebSocketListener, manager: ServerManager
    ) -> None:
        """Stop accepting (the sockets stay open) and close WebSocket connections; the
        caller bounds the in-flight requests' drain."""
        log.info("reloading: every server keeps running")
        systemd.notify(
            f"RELOADING=1\nMONOTONIC_USEC={monotonic_usec()}\nSTATUS=reloading", self.environ
        )
        with trio.CancelScope(shield=True):
            await audit.record_done("daemon", "reloading")
        self._shutdown_http.set()
        manager.end_waits()
        ws_listener.stop_accepting()
        ws_listener.close_connections(CLOSE_SERVICE_RESTART, "service restart")

    async def _stop_servers(
        self,
        audit: AuditLog,
        manager: ServerManager,
        hub: WsHub,
        ws_scope: trio.CancelScope,
        listeners: trio.Nursery,
    ) -> None:
        """Stop serving and stop (or leave) every server, bounded by
        ``daemon.shutdown_timeout``; in-flight requests drain meanwhile."""
        settings = self.settings
        leave = self.exit_mode == "leave"
        log.info("shutting down; every server keeps running" if leave else "shutting down")
        systemd.notify("STOPPING=1", self.environ)
        deadline = trio.current_time() + settings.daemon.shutdown_timeout
        # Stop accepting; in-flight HTTP requests drain while servers stop.
        self._shutdown_http.set()
        manager.end_waits()
        hub.close_all()
        ws_scope.cancel()
        # Past the deadline (or on a second signal) the fleet SIGKILLs what is left.
        self._graceful.deadline = deadline
        with self._graceful:
            await (manager.leave() if leave else manager.shutdown())
        if self._graceful.cancelled_caught and not self.hurried and not leave:
            log.warning(
                "servers did not stop within daemon.shutdown_timeout (%.0f s): "
                "the rest were killed",
                settings.daemon.shutdown_timeout,
            )
        with trio.CancelScope(shield=True):
            await audit.record_done(
                "daemon", "stopping; servers left running" if leave else "stopping"
            )
        # Only now: the listeners' scope also holds this body, which must finish.
        if self.hurried:
            listeners.cancel_scope.cancel()
        else:
            listeners.cancel_scope.deadline = deadline


def run_daemon(
    settings: Settings,
    *,
    on_ready: Callable[[Endpoints], None] | None = None,
    init: bool = False,
    handoff: Handoff | None = None,
) -> int:
    """Run the daemon until it is stopped; returns the process exit code (1 when a
    second signal cut the stop short). A reload re-executes the process instead."""
    # Held until the receiver is installed (after a reload they are held already).
    hold_signals()
    cap_arenas(os.environ)  # before the first worker thread takes an arena of its own
    daemon = Daemon(settings, init=init, handoff=handoff)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            endpoints = await nursery.start(daemon.run)
            settle_collector()
            if on_ready is not None:
                on_ready(endpoints)

    try:
        trio.run(main)
    except BaseExceptionGroup as group:
        leaf = _only_leaf(group)
        if isinstance(leaf, LeosuiteError):
            raise leaf from None
        raise
    return 1 if daemon.hurried else 0


def _only_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The single exception inside nested groups, if there is exactly one."""
    current: BaseException = group
    while isinstance(current, BaseExceptionGroup):
        if len(current.exceptions) != 1:
            return None
        current = current.exceptions[0]
    return current

"""``leosuite serve``: the ONE root nursery and everything it starts.

Start order (each piece with ``nursery.start`` so "ready" means ready): lock the data
directory, bind every listener (a taken port fails here, before anything runs),
open the store, create the first admin, then start housekeeping, the HTTP API, the
admin API and the WebSocket listener; then write ``<data>/run/endpoints.json`` and
tell systemd ``READY=1``.

Shutdown (SIGTERM/SIGINT or :meth:`Daemon.request_stop`): ``STOPPING=1``, the HTTP
listeners stop accepting and drain in-flight requests, WebSocket connections are
closed, running servers are stopped, the store is closed; exit 0. The whole stop is
bounded by ``daemon.shutdown_timeout``: past it, every server still running is
SIGKILLed at once. A second signal means "hurry": every server's process group is
SIGKILLed now, the daemon waits (bounded) for their exits and exits 1; a daemon that
exits on a signal never leaves a server behind.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import IO, Any

import msgspec
import trio

from . import systemd
from .api.admin.app import create_admin_app
from .api.context import ApiContext
from .api.http.app import create_http_app
from .api.serve import serve_app
from .api.server_ops import stop_unattended_servers
from .api.ws.conn import WsHub
from .api.ws.listener import websocket_listener
from .audit import AuditLog, purge_audit
from .auth.accounts import INITIAL_PASSWORD_FILE, ensure_first_admin
from .auth.bans import BanList
from .auth.passwords import PasswordHasher
from .auth.service import AuthService
from .auth.token_watch import watch_tokens
from .clock import WallClock
from .community.service import ChatService
from .errors import LeosuiteError
from .settings import Settings, parse_address
from .startup import DataDirLock, bind_listener, listener_url, prepare_data_dir, write_atomic
from .store.db import Database
from .supervision.fleet import Fleet
from .supervision.manager import ServerManager
from .supervision.run_as import drop_inheritable_capabilities
from .supervision.states import Backoff

__all__ = ["Daemon", "Endpoints", "bind_listener", "run_daemon"]

log = logging.getLogger("leosuite.daemon")

#: After a second signal, how long the daemon may take to finish before it exits anyway.
HURRY_LIMIT = 10.0


class Endpoints(msgspec.Struct, frozen=True):
    http: str
    ws: str
    admin: str
    pid: int


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        environ: Mapping[str, str] | None = None,
        out: IO[str] | None = None,
        handle_signals: bool = True,
        init: bool = False,
    ) -> None:
        self.settings = settings
        self.environ = os.environ if environ is None else environ
        self.out = out or sys.stdout
        self.handle_signals = handle_signals
        #: Accept an empty store file as a fresh store (``serve --init``).
        self.init = init
        self.endpoints: Endpoints | None = None
        self.context: ApiContext | None = None
        #: Set by :meth:`hurry`: the stop was cut short (exit code 1).
        self.hurried = False
        self._stop = trio.Event()
        self._shutdown_http = trio.Event()
        self._fleet: Fleet | None = None
        #: Bounds the graceful stop of the servers; cancelled by :meth:`hurry`.
        self._graceful = trio.CancelScope()

    def request_stop(self) -> None:
        self._stop.set()

    def hurry(self) -> None:
        """Cut the stop short: SIGKILL every server's process group now, stop draining
        requests once they are gone; their exits are still waited for (bounded)."""
        self.hurried = True
        self._stop.set()
        if self._fleet is not None:
            self._fleet.kill_now()
        self._graceful.cancel()

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    async def run(
        self, *, task_status: trio.TaskStatus[Endpoints] = trio.TASK_STATUS_IGNORED
    ) -> None:
        settings = self.settings
        drop_inheritable_capabilities()  # before any worker thread: they inherit it
        run_dir = prepare_data_dir(self.data_dir)
        lock = DataDirLock(run_dir)
        lock.acquire()
        sockets: list[socket.socket] = []
        try:
            for key in ("http.listen", "admin.listen", "ws.listen"):
                section = getattr(settings, key.split(".")[0])
                sockets.append(bind_listener(parse_address(section.listen, key=key), key))
            http_sock, admin_sock, ws_sock = sockets
            db = await trio.to_thread.run_sync(
                partial(Database.open, settings.db_path, data_dir=self.data_dir, init=self.init)
            )
            try:
                await self._serve(db, http_sock, admin_sock, ws_sock, run_dir, task_status)
            finally:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(db.close)
        finally:
            for sock in sockets:
                sock.close()
            (run_dir / "endpoints.json").unlink(missing_ok=True)
            lock.release()

    async def _serve(
        self,
        db: Database,
        http_sock: socket.socket,
        admin_sock: socket.socket,
        ws_sock: socket.socket,
        run_dir: Path,
        task_status: trio.TaskStatus[Endpoints],
    ) -> None:
        settings = self.settings
        now = WallClock()
        auth_settings = settings.auth
        hasher = PasswordHasher(
            time_cost=auth_settings.hash_time_cost,
            memory_kib=auth_settings.hash_memory_kib,
            parallelism=auth_settings.hash_parallelism,
            concurrency=auth_settings.hash_concurrency,
        )
        created_at = now()
        generated = await trio.to_thread.run_sync(
            lambda: ensure_first_admin(
                db,
                hasher,
                self.data_dir,
                self.environ,
                min_length=auth_settings.min_password_length,
                now=created_at,
            )
        )
        if generated is not None:
            print(
                f"Created the first account 'admin' with password: {generated}\n"
                f"(also saved in {self.data_dir / INITIAL_PASSWORD_FILE}, mode 0600; "
                "change it with 'leosuite user passwd admin')",
                file=self.out,
                flush=True,
            )
        started_at = now()
        audit = AuditLog(db, now)
        auth = AuthService(db, hasher, auth_settings, audit, now)
        chat = ChatService(settings.community, audit, now, db=db)
        hub = WsHub(settings.ws, audit)
        bans = BanList(db, audit, now, ws_hub=hub, chat=chat.core, auth=auth)
        await bans.load()
        endpoints = {
            "http": listener_url("http", http_sock),
            "ws": listener_url("ws", ws_sock),
            "admin": listener_url("http", admin_sock),
        }
        graceful = min(settings.daemon.shutdown_timeout, 30.0)
        http_common: dict[str, Any] = {
            "read_timeout": settings.http.read_timeout,
            "keep_alive_timeout": settings.http.keep_alive_timeout,
            "graceful_timeout": graceful,
            "shutdown": self._shutdown_http,
        }
        async with trio.open_nursery() as nursery:
            if self.handle_signals:
                await nursery.start(self._watch_signals)
            fleet = Fleet(
                now=now,
                backoff=Backoff(
                    initial=settings.servers.backoff_initial,
                    cap=settings.servers.backoff_max,
                    stable_after=settings.servers.backoff_reset_after,
                ),
                stats_interval=settings.servers.stats_interval,
                command_max_bytes=settings.servers.command_max_bytes,
            )
            await nursery.start(fleet.run)
            self._fleet = fleet
            manager = ServerManager(
                db=db, fleet=fleet, settings=settings.servers, data_dir=self.data_dir, now=now
            )
            await manager.load()
            ctx = self.context = ApiContext(
                settings=settings,
                db=db,
                audit=audit,
                auth=auth,
                now=now,
                servers=manager,
                chat=chat,
                ws_hub=hub,
                bans=bans,
                endpoints=endpoints,
                started_at=started_at,
            )
            ws_listener = websocket_listener(ctx, ws_sock)
            await nursery.start(chat.run)
            await nursery.start(self._housekeeping, ctx)
            await nursery.start(watch_tokens, auth, settings.db_path)
            http_app = create_http_app(ctx)
            admin_app = create_admin_app(ctx)
            async with trio.open_nursery() as listeners:
                await listeners.start(
                    lambda task_status: serve_app(
                        http_app, http_sock, task_status=task_status, **http_common
                    )
                )
                await listeners.start(
                    lambda task_status: serve_app(
                        admin_app, admin_sock, task_status=task_status, **http_common
                    )
                )
                ws_scope = trio.CancelScope()

                async def run_ws(
                    *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
                ) -> None:
                    with ws_scope:
                        await ws_listener.run(task_status=task_status)

                await listeners.start(run_ws)
                autostarted = await fleet.start_autostart()
                if autostarted:
                    log.info("autostarted: %s", ", ".join(autostarted))
                self.endpoints = Endpoints(pid=os.getpid(), **ctx.endpoints)
                write_atomic(run_dir / "endpoints.json", msgspec.json.encode(self.endpoints))
                log.info(
                    "leosuite ready: dashboard and HTTP API %s/, WebSocket %s, admin API %s",
                    self.endpoints.http,
                    self.endpoints.ws,
                    self.endpoints.admin,
                )
                await audit.record("daemon", f"started (pid {os.getpid()})")
                systemd.notify("READY=1\nSTATUS=serving", self.environ)
                interval = systemd.watchdog_interval(self.environ)
                if interval is not None:
                    nursery.start_soon(self._watchdog, interval)
                task_status.started(self.endpoints)

                await self._stop.wait()
                log.info("shutting down")
                systemd.notify("STOPPING=1", self.environ)
                deadline = trio.current_time() + settings.daemon.shutdown_timeout
                # Stop accepting; in-flight HTTP requests drain while servers stop.
                self._shutdown_http.set()
                hub.close_all()
                ws_scope.cancel()
                # Past the deadline (or on a second signal) the fleet SIGKILLs what is left.
                self._graceful.deadline = deadline
                with self._graceful:
                    await manager.shutdown()
                if self._graceful.cancelled_caught and not self.hurried:
                    log.warning(
                        "servers did not stop within daemon.shutdown_timeout (%.0f s): "
                        "the rest were killed",
                        settings.daemon.shutdown_timeout,
                    )
                with trio.CancelScope(shield=True):
                    await audit.record("daemon", "stopping")
                # Only now: the listeners' scope also holds this body, which must finish.
                if self.hurried:
                    listeners.cancel_scope.cancel()
                else:
                    listeners.cancel_scope.deadline = deadline
            nursery.cancel_scope.cancel()
        log.info("stopped")

    async def _watch_signals(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            task_status.started()
            async for signum in signals:
                if self._stop.is_set():
                    break
                log.info("received %s", signal.Signals(signum).name)
                self._stop.set()
            print(
                f"leosuite: second signal ({signal.Signals(signum).name}): killing every "
                "server and exiting",
                file=sys.stderr,
                flush=True,
            )
            self.hurry()
            # A third signal, or a stop that still hangs, ends the process at once.
            with trio.move_on_after(HURRY_LIMIT):
                async for _ in signals:
                    break
            if self._fleet is not None:
                self._fleet.kill_now()
            print("leosuite: exiting now", file=sys.stderr, flush=True)
            os._exit(1)

    async def _housekeeping(
        self, ctx: ApiContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        while True:
            await trio.sleep(self.settings.housekeeping.interval)
            try:
                await ctx.servers.save_read_indexes()
                await stop_unattended_servers(ctx)  # ADMIN taken away on the store directly
                purged = await ctx.auth.purge_expired()
                if purged:
                    log.info("housekeeping: %d expired tokens removed", purged)
                await ctx.bans.purge_expired()
                dropped = await purge_audit(ctx.db, self.settings.housekeeping, ctx.now())
                if dropped:
                    log.info("housekeeping: %d old audit log entries removed", dropped)
            except Exception:
                log.exception("housekeeping failed; will retry")

    async def _watchdog(self, interval: float) -> None:
        while True:
            systemd.notify("WATCHDOG=1", self.environ)
            await trio.sleep(interval)


def run_daemon(
    settings: Settings,
    *,
    on_ready: Callable[[Endpoints], None] | None = None,
    init: bool = False,
) -> int:
    """Run the daemon until it is stopped; returns the process exit code (1 when a
    second signal cut the stop short)."""
    daemon = Daemon(settings, init=init)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            endpoints = await nursery.start(daemon.run)
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

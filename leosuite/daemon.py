"""``leosuite serve``: the ONE root nursery and everything it starts.

Start order (each piece with ``nursery.start`` so "ready" means ready): lock the data
directory, bind every listener (a taken port fails here, before anything runs),
open the store, create the first admin, then start housekeeping, the HTTP API, the
admin API and the WebSocket listener; then write ``<data>/run/endpoints.json`` and
tell systemd ``READY=1``.

Shutdown (SIGTERM/SIGINT or :meth:`Daemon.request_stop`): ``STOPPING=1``, the HTTP
listeners stop accepting and drain in-flight requests, WebSocket connections are
closed, running servers are stopped, the store is closed; exit 0. A second
signal exits at once.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import socket
import stat
import sys
from collections.abc import Callable, Mapping
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
from .errors import LeosuiteError, StartupError
from .settings import Address, Settings, parse_address
from .store.db import Database
from .supervision.fleet import Fleet
from .supervision.manager import ServerManager
from .supervision.run_as import drop_inheritable_capabilities
from .supervision.states import Backoff

__all__ = ["Daemon", "Endpoints", "bind_listener", "run_daemon"]

log = logging.getLogger("leosuite.daemon")


class Endpoints(msgspec.Struct, frozen=True):
    http: str
    ws: str
    admin: str
    pid: int


def bind_listener(address: Address, key: str) -> socket.socket:
    """Bind and listen now, so a taken port is one clear error before start-up."""
    host = "127.0.0.1" if address.host == "localhost" else address.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, address.port))
        sock.listen(256)
    except OSError as exc:
        sock.close()
        reason = {
            errno.EADDRINUSE: "the address is already in use",
            errno.EACCES: "permission denied (ports below 1024 need privileges)",
            errno.EADDRNOTAVAIL: "no such address on this machine",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise StartupError(f"cannot listen on {address} ({key}): {reason}", field=key) from None
    sock.setblocking(False)
    return sock


def _url(scheme: str, sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


class _DataDirLock:
    """An exclusive ``flock`` on ``<data>/run/leosuite.lock`` held for the daemon's life."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "leosuite.lock"
        self._fd = -1

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StartupError(
                f"the data directory {self.path.parent.parent} is in use by another leosuite "
                f"(pid {holder}); stop that one first, or use another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        environ: Mapping[str, str] | None = None,
        out: IO[str] | None = None,
        handle_signals: bool = True,
    ) -> None:
        self.settings = settings
        self.environ = os.environ if environ is None else environ
        self.out = out or sys.stdout
        self.handle_signals = handle_signals
        self.endpoints: Endpoints | None = None
        self.context: ApiContext | None = None
        self._stop = trio.Event()
        self._shutdown_http = trio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def _prepare_dirs(self) -> Path:
        """Create the data directory 0700 (and ``run/`` in it); an existing one that other
        users may list or write is left as it is, with a warning."""
        try:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            mode = stat.S_IMODE(self.data_dir.stat().st_mode)
            run_dir = self.data_dir / "run"
            run_dir.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StartupError(f"cannot create the data directory {self.data_dir}: {exc}") from None
        if mode & 0o066:
            log.warning(
                "the data directory %s is open to other users (mode %04o); it holds the "
                "store and the servers' files: chmod 0700 it (0711 when servers run as "
                "other users)",
                self.data_dir,
                mode,
            )
        return run_dir

    async def run(
        self, *, task_status: trio.TaskStatus[Endpoints] = trio.TASK_STATUS_IGNORED
    ) -> None:
        settings = self.settings
        drop_inheritable_capabilities()  # before any worker thread: they inherit it
        run_dir = self._prepare_dirs()
        lock = _DataDirLock(run_dir)
        lock.acquire()
        sockets: list[socket.socket] = []
        try:
            for key in ("http.listen", "admin.listen", "ws.listen"):
                section = getattr(settings, key.split(".")[0])
                sockets.append(bind_listener(parse_address(section.listen, key=key), key))
            http_sock, admin_sock, ws_sock = sockets
            db = await trio.to_thread.run_sync(Database.open, settings.db_path)
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
            "http": _url("http", http_sock),
            "ws": _url("ws", ws_sock),
            "admin": _url("http", admin_sock),
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
                _write_atomic(run_dir / "endpoints.json", msgspec.json.encode(self.endpoints))
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
                listeners.cancel_scope.deadline = deadline
                self._shutdown_http.set()
                hub.close_all()
                ws_scope.cancel()
                with trio.CancelScope(deadline=deadline) as scope:
                    await manager.shutdown()
                if scope.cancelled_caught:
                    log.warning(
                        "servers did not stop within daemon.shutdown_timeout (%.0f s); killing",
                        settings.daemon.shutdown_timeout,
                    )
                with trio.CancelScope(shield=True):
                    await audit.record("daemon", "stopping")
            nursery.cancel_scope.cancel()
        log.info("stopped")

    async def _watch_signals(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            task_status.started()
            async for signum in signals:
                if self._stop.is_set():
                    print(
                        f"leosuite: second signal ({signal.Signals(signum).name}): exiting at once",
                        file=sys.stderr,
                        flush=True,
                    )
                    os._exit(1)
                log.info("received %s", signal.Signals(signum).name)
                self._stop.set()

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


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def run_daemon(settings: Settings, *, on_ready: Callable[[Endpoints], None] | None = None) -> int:
    """Run the daemon until it is stopped; returns the process exit code."""
    daemon = Daemon(settings)

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
    return 0


def _only_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The single exception inside nested groups, if there is exactly one."""
    current: BaseException = group
    while isinstance(current, BaseExceptionGroup):
        if len(current.exceptions) != 1:
            return None
        current = current.exceptions[0]
    return current

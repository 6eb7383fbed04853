"""The bus on a PostgreSQL store: ``LISTEN``/``NOTIFY`` on :data:`~.bus.CHANNEL`.

The listening connection is read without a thread: trio waits until its socket is
readable, then libpq consumes the input and hands over the notifications it holds.
Anything that blocks (connecting, ``LISTEN``, the idle ping, publishing) runs in a
worker thread, one call at a time per connection.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec
import psycopg
import psycopg.conninfo
import trio
from psycopg.pq import ConnStatus

from ..store.postgres import display_url
from .bus import CHANNEL, Bus, ClusterEvent, LocalBus

__all__ = ["PgBus", "publish_once", "reconnect_delays"]

log = logging.getLogger("leosuite.cluster")

_decode = msgspec.json.Decoder(ClusterEvent).decode

#: Connection parameters a URL does not set itself.
_DEFAULTS: dict[str, str | int] = {
    "connect_timeout": 10,
    "application_name": "leosuite-bus",
    "keepalives": 1,
    "keepalives_idle": 15,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


def _connect(url: str) -> psycopg.Connection[Any]:
    given = psycopg.conninfo.conninfo_to_dict(url)
    extra = {key: value for key, value in _DEFAULTS.items() if key not in given}
    return psycopg.connect(psycopg.conninfo.make_conninfo(url, **extra), autocommit=True)


def publish_once(url: str, node: str, kind: str, data: dict[str, object]) -> None:
    """Send one event from a process that runs no bus (the command line changing the
    store); blocking. psycopg.Error when the store cannot be reached."""
    payload = LocalBus(node).encode(kind, data).decode()
    with _connect(url) as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


def reconnect_delays(*, first: float = 0.05, cap: float = 5.0) -> Iterator[float]:
    """Pauses between attempts to connect again: doubling from ``first`` up to ``cap``."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, cap)


#: A listening connection that lived this long (seconds) counts as a success.
STABLE_AFTER = 10.0


class ListenLost(Exception):
    """The listening connection broke."""


class PgBus(Bus):
    """Events between the nodes of a PostgreSQL store (see :mod:`.bus`)."""

    def __init__(self, url: str, node: str, *, ping_interval: float = 30.0) -> None:
        super().__init__(node)
        self._url = url
        self._shown = display_url(url)
        #: An idle listening connection is checked this often (seconds).
        self.ping_interval = ping_interval
        self._listen: psycopg.Connection[Any] | None = None
        self._publisher: psycopg.Connection[Any] | None = None
        self._publish_lock = trio.Lock()
        #: Notifications psycopg took in while running a statement on the connection.
        self._taken: deque[psycopg.Notify] = deque()
        #: How many times the listening connection began again after a loss.
        self.reconnects = 0
        #: Events that could not be sent (the store unreachable twice in a row).
        self.publish_failures = 0
        #: Checks of the idle listening connection.
        self.pings = 0

    @property
    def listen_pid(self) -> int | None:
        """The PostgreSQL backend process of the listening connection, if connected."""
        conn = self._listen
        return None if conn is None or conn.closed else conn.info.backend_pid

    @property
    def publisher_pid(self) -> int | None:
        """The PostgreSQL backend process of the publishing connection, if open."""
        conn = self._publisher
        return None if conn is None or conn.closed else conn.info.backend_pid

    async def aclose(self) -> None:
        """Close the publishing connection (:meth:`run` closes it when it ends; this is
        for a bus that only published)."""
        async with self._publish_lock:
            self._close_publisher()

    # -- publishing -------------------------------------------------------------

    async def publish(self, kind: str, data: Mapping[str, object]) -> None:
        payload = self.encode(kind, data).decode()
        async with self._publish_lock:  # one at a time keeps this node's events in order
            for attempt in range(2):  # a connection found broken is opened again once
                try:
                    await trio.to_thread.run_sync(self._notify, payload)
                except psycopg.Error as exc:
                    self._close_publisher()
                    if attempt:
                        self.publish_failures += 1
                        log.warning(
                            "could not publish a %r event on %s: %s", kind, self._shown, exc
                        )
                else:
                    self.published += 1
                    return

    def _notify(self, payload: str) -> None:
        if self._publisher is None or self._publisher.closed:
            self._publisher = _connect(self._url)
        self._publisher.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))

    def _close_publisher(self) -> None:
        conn, self._publisher = self._publisher, None
        if conn is not None:
            conn.close()

    # -- listening --------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, and listen again after every loss; started after the first attempt
        to connect (a store away at start does not hold the daemon up)."""
        delays = reconnect_delays()
        began = False
        try:
            while True:
                try:
                    conn = await trio.to_thread.run_sync(self._open_listen)
                except psycopg.Error as exc:
                    if not began:
                        task_status.started()
                        began = True
                    delay = next(delays)
                    log.warning("the event bus cannot connect to %s (%s); again in %.1f s",
                                self._shown, exc, delay)  # fmt: skip
                    await trio.sleep(delay)
                    continue
                self._listen = conn
                connected_at = trio.current_time()
                try:
                    if self.reconnects or began:
                        log.info("the event bus listens on %s again", self._shown)
                    self.connected = True
                    self.resync_all()  # what happened before LISTEN began is unknown
                    if not began:
                        task_status.started()
                        began = True
                    await self._receive(conn)
                except (psycopg.Error, ListenLost, OSError) as exc:
                    log.warning("the event bus lost its connection to %s (%s); reconnecting",
                                self._shown, exc)  # fmt: skip
                except Exception:
                    log.exception("the event bus failed; listening again")
                finally:
                    self.connected = False
                    self._listen = None
                    conn.close()
                self.reconnects += 1
                # A connection that held a while starts the pauses afresh; one that keeps
                # failing at once waits longer each time.
                if trio.current_time() - connected_at > STABLE_AFTER:
                    delays = reconnect_delays()
                await trio.sleep(next(delays))
        finally:
            self._close_publisher()

    def _open_listen(self) -> psycopg.Connection[Any]:
        conn = _connect(self._url)
        try:
            conn.add_notify_handler(self._taken.append)
            conn.execute(f"LISTEN {CHANNEL}")
        except BaseException:
            conn.close()
            raise
        return conn

    async def _receive(self, conn: psycopg.Connection[Any]) -> None:
        """Hand every notification to the subscribers until the connection breaks."""
        pgconn = conn.pgconn
        fd = pgconn.socket
        while True:
            self._take(pgconn)
            with trio.move_on_after(self.ping_interval) as idle:
                await trio.lowlevel.wait_readable(fd)
            if idle.cancelled_caught:
                await trio.to_thread.run_sync(conn.execute, "SELECT 1")
                self.pings += 1
                continue
            pgconn.consume_input()  # raises OperationalError once the server is gone
            if pgconn.status != ConnStatus.OK:
                raise ListenLost(pgconn.get_error_message() or "connection closed")

    def _take(self, pgconn: psycopg.pq.abc.PGconn) -> None:
        while self._taken:  # those that arrived during a statement came first
            self._handle(self._taken.popleft().payload.encode())
        while (notify := pgconn.notifies()) is not None:
            if notify.relname.decode() == CHANNEL:
                self._handle(notify.extra)

    def _handle(self, payload: bytes) -> None:
        try:
            event = _decode(payload)
        except (msgspec.DecodeError, RecursionError):  # anyone on the database may NOTIFY
            log.warning("ignored a malformed event on %s: %r", CHANNEL, payload[:200])
            return
        self.deliver(event)

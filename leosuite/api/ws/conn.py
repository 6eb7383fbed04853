"""One WebSocket connection's plumbing, and the hub that knows them all.

Every connection has ONE bounded outbound queue and ONE writer task (trio-websocket's
``send_message`` blocks for ever on a peer that stops reading); a message to an idle
connection is written straight to its socket by the task that sends it, and only a
connection that is behind queues (:class:`~leosuite.api.ws.fanout.Outbox`). The ways in:

* :meth:`WsConnection.send` for answers: waits for room up to ``ws.send_timeout``;
  a peer that stays that far behind is closed with 1008.
* :meth:`WsConnection.push_nowait` for events and stats: dropped when full.
* :meth:`WsConnection.send_and_wait` and :meth:`WsConnection.send_marked` for console
  data: wait their turn, and until (or tell when) it has been handed to the socket, so
  each console subscription has a few pushes on their way at most and skips ahead
  instead of buffering (see ``dashboard``).

Ping/pong: a peer that has sent nothing (no message, no pong) for ``ws.ping_interval``
is pinged; no pong within the same time closes it, so a dead peer is noticed within two
intervals. A connection may be given a tighter live limit (the chat's
``clientTimeout``): then it is pinged every half of that limit, so a peer that answers
nothing is dropped within it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from ...audit import Actor, AuditLog
from ...auth.limits import Limiter
from ...settings import WsSettings
from .fanout import Outbox, flush_cork, handle_burst, text_frame
from .protocol import CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_TOO_BIG
from .refusals import RefusalNotes

if TYPE_CHECKING:
    from ...auth.service import Principal

__all__ = ["SharedPush", "WsConnection", "WsHub"]

log = logging.getLogger("leosuite.ws")


class SharedPush(Protocol):
    """A push built once for many connections: its frame, and its text on demand."""

    @property
    def frame(self) -> bytes: ...

    @property
    def payload(self) -> str: ...


#: Frames of broadcast payloads (written to more than one connection), oldest first:
#: a chat line is one str for all its members, so the second write of it reuses the frame.
_FRAMES: dict[str, bytes] = {}
#: What ``_FRAMES`` holds in bytes, payload strings counted as well as frames.
_FRAMES_BYTES = [0]
_FRAMES_MAX_BYTES = 1024 * 1024
#: What an entry of ``_FRAMES`` holds beside its strings: the dict's slot and hash.
_FRAME_ENTRY_BYTES = 128
_FRAME_CACHED_MAX = 16 * 1024
#: The last shared payload written once so far and its frame (a fan-out writes one
#: payload to its members in a row): only a payload written again enters ``_FRAMES``.
_LAST: list[tuple[str, bytes]] = []


def _held(payload: str, frame: bytes) -> int:
    """The memory one cached frame takes: its payload string's, its bytes' and its
    entry's (a chat line's frame is small: the entry is a large part of it)."""
    return sys.getsizeof(payload) + sys.getsizeof(frame) + _FRAME_ENTRY_BYTES


def _frame(payload: str) -> bytes:
    """The wire bytes of one text frame, built once per payload for every member (only
    broadcast pushes are cached: an answer or a push with its own uuid is never reused)."""
    frame = _FRAMES.get(payload)
    if frame is not None:
        return frame
    if _LAST and _LAST[0][0] == payload:
        frame = _LAST.pop()[1]
        size = _held(payload, frame)
        while _FRAMES and _FRAMES_BYTES[0] + size > _FRAMES_MAX_BYTES:
            oldest = next(iter(_FRAMES))
            _FRAMES_BYTES[0] -= _held(oldest, _FRAMES.pop(oldest))
        _FRAMES[payload] = frame
        _FRAMES_BYTES[0] += size
        return frame
    frame = text_frame(payload)
    _LAST.clear()
    if len(frame) <= _FRAME_CACHED_MAX:
        _LAST.append((payload, frame))
    return frame


class WsConnection:
    def __init__(
        self,
        hub: WsHub,
        ws: WebSocketConnection,
        ip: str,
        *,
        silence_limit: Callable[[], float] | None = None,
    ) -> None:
        self.hub = hub
        #: Live limit (seconds, 0 = none) on how long the peer may not answer at all;
        #: tightens ``ws.ping_interval`` (the chat's ``clientTimeout``).
        self._silence_limit = silence_limit
        self.ws = ws
        self.ip = ip
        settings = hub.settings
        #: Bounded (``queue_size`` messages); written directly when the peer keeps up.
        self.outbox = Outbox(ws, settings.queue_size, hub)
        self._scope = trio.CancelScope()
        self._close_code = CLOSE_GOING_AWAY
        self._close_reason = ""
        self._activity = trio.current_time()
        #: ``ws.request_rate`` requests a second in bursts of ``ws.request_burst``.
        self.rate = Limiter(
            trio.current_time,
            window=settings.request_burst / settings.request_rate,
            limit=settings.request_burst,
            max_keys=1,
        )
        self.principal: Principal | None = None
        self.token: str | None = None
        #: Why the session ended elsewhere: the next call answers SESSION_ABORTED once.
        self.aborted: str | None = None
        #: Long-running subscription tasks by key ("console:NAME", "stats", "events").
        self.subscriptions: dict[str, trio.CancelScope] = {}
        self.nursery: trio.Nursery | None = None
        self.dropped_pushes = 0
        #: Set while requests are being refused for rate; the first refusal is audited.
        self.rate_limited = False

    # -- outbound -------------------------------------------------------------------

    async def send(self, payload: str) -> None:
        """Queue an answer; close the connection (1008) if the peer does not read."""
        flush_cork()  # what a burst sent before this answer does not wait for room for it
        with trio.move_on_after(self.hub.settings.send_timeout):
            await self.outbox.put(text_frame(payload) if self.outbox.direct else payload)
            return
        self.close(CLOSE_POLICY, "client does not read its messages")
        notes = self.hub.cut_off
        if notes is None:
            return
        with trio.CancelScope(shield=True):  # the close cancels this task
            noted = await notes.note(
                self.ip, "WebSocket client cut off: it did not read its answers"
            )
        if noted:
            log.warning("WebSocket client %s cut off: it did not read its answers", self.ip)

    def push_nowait(self, payload: str, *, shared: bool = False) -> bool:
        """Write or queue an event; False (dropped) when the queue is full or closed.
        ``shared``: the same payload goes to many connections (its frame is cached)."""
        outbox = self.outbox
        if not outbox.direct:
            data: bytes | str = payload
        else:
            data = _frame(payload) if shared else text_frame(payload)
        if outbox.put_nowait(data):
            return True
        if not outbox.closed:
            self.dropped_pushes += 1
        return False

    async def send_and_wait(self, payload: str) -> None:
        """Queue a console push and return once it has been handed to the socket."""
        outbox = self.outbox
        await outbox.put_and_wait(text_frame(payload) if outbox.direct else payload)

    async def send_marked(self, payload: str, frame: bytes | None = None) -> trio.Event | None:
        """Queue a console push (``frame``: its frame, if built already) waiting for
        room; the event set once it has been handed to the socket, or None if it has."""
        outbox = self.outbox
        if not outbox.direct:
            return await outbox.put_marked(payload)
        return await outbox.put_marked(text_frame(payload) if frame is None else frame)

    async def send_shared_marked(self, shared: SharedPush) -> trio.Event | None:
        """:meth:`send_marked` of a push built once for many connections: its frame,
        or its text without raw writes."""
        outbox = self.outbox
        return await outbox.put_marked(shared.frame if outbox.direct else shared.payload)

    def _ping_interval(self) -> float:
        interval = self.hub.settings.ping_interval
        limit = self._silence_limit() if self._silence_limit is not None else 0.0
        return min(interval, limit / 2) if limit > 0 else interval

    async def _pinger(self) -> None:
        while True:
            interval = self._ping_interval()
            await trio.sleep_until(self._activity + interval)
            if trio.current_time() - self._activity < interval:
                continue
            with trio.move_on_after(interval) as scope:
                await self.ws.ping()
            if scope.cancelled_caught:
                log.info("WebSocket peer %s did not answer a ping; closing", self.ip)
                self.close(CLOSE_POLICY, "no pong")
                return
            self._activity = trio.current_time()

    # -- lifecycle ------------------------------------------------------------------

    def close(self, code: int = CLOSE_GOING_AWAY, reason: str = "") -> None:
        """Close soon (from anywhere): the run loop ends and sends the close frame."""
        self._close_code = code
        self._close_reason = reason
        self.outbox.mute()  # nothing but the close frame goes out from now on
        self._scope.cancel()

    def close_policy(self, reason: str) -> None:
        """Close for a policy violation (1008), e.g. a new ban covering the peer."""
        self.close(CLOSE_POLICY, reason)

    def start_subscription(
        self, key: str, task: Callable[[trio.CancelScope], Awaitable[None]]
    ) -> None:
        assert self.nursery is not None
        scope = trio.CancelScope()
        self.subscriptions[key] = scope

        async def run() -> None:
            try:
                with scope:
                    await task(scope)
            finally:
                if self.subscriptions.get(key) is scope:
                    del self.subscriptions[key]

        self.nursery.start_soon(run)

    def cancel_subscriptions(self) -> None:
        for scope in list(self.subscriptions.values()):
            scope.cancel()
        self.subscriptions.clear()

    async def serve(self, handle_message: Callable[[str | bytes], Awaitable[None]]) -> None:
        """Read frames and hand each to ``handle_message`` (up to ``max_inflight`` at once;
        one at a time is handled in this task, without a task per frame)."""
        inflight = trio.Semaphore(self.hub.settings.max_inflight)
        one_at_a_time = self.hub.settings.max_inflight == 1

        async def handle(message: str | bytes) -> None:
            try:
                await handle_message(message)
            finally:
                inflight.release()

        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    self.nursery = nursery
                    nursery.start_soon(self.outbox.run)
                    nursery.start_soon(self._pinger)
                    while True:
                        message = await self.ws.get_message()
                        self._activity = trio.current_time()
                        self.hub.received += 1
                        if one_at_a_time:
                            handled = await handle_burst(self.ws, message, handle_message)
                            self.hub.received += handled - 1
                            continue
                        await inflight.acquire()
                        nursery.start_soon(handle, message)
        except* ConnectionClosed:
            pass
        finally:
            self.nursery = None
            self.cancel_subscriptions()
            with trio.CancelScope(shield=True):
                await self.outbox.finish()
            with (
                trio.CancelScope(shield=True),
                trio.move_on_after(2),
                contextlib.suppress(ConnectionClosed),
            ):
                await self.ws.aclose(self._close_code, self._close_reason)
            closed = self.ws.closed
            if closed is not None and closed.code == CLOSE_TOO_BIG and self.hub.audit is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(2):
                    await self.hub.audit.record(
                        "ws",
                        "message over ws.max_message_bytes: connection closed (1009)",
                        actor=Actor(ip=self.ip),
                        level="warning",
                    )


class WsHub:
    """Every open WebSocket connection: caps, lookups by account, closing them."""

    def __init__(self, settings: WsSettings, audit: AuditLog | None = None) -> None:
        self.settings = settings
        self.audit = audit
        #: Clients closed for not reading their answers, audited once per burst.
        self.cut_off = RefusalNotes(audit) if audit is not None else None
        self.connections: set[WsConnection] = set()
        #: Messages received from and queued to clients since the daemon started.
        self.received = self.sent = 0
        # Slots taken from the handshake on (reserve/release), so that concurrent
        # handshakes cannot all pass the caps before any of them is counted.
        self._per_ip: Counter[str] = Counter()
        self._total = 0

    def refusal(self, ip: str) -> tuple[int, str] | None:
        """Why a new connection from ``ip`` is refused (status, reason), or None."""
        if self._total >= self.settings.max_connections:
            return 503, "too many WebSocket connections"
        if self._per_ip[ip] >= self.settings.max_connections_per_ip:
            return 429, "too many WebSocket connections from this address"
        return None

    def reserve(self, ip: str) -> None:
        self._total += 1
        self._per_ip[ip] += 1

    def release(self, ip: str) -> None:
        self._total -= 1
        self._per_ip[ip] -= 1
        if self._per_ip[ip] <= 0:
            del self._per_ip[ip]

    def add(self, conn: WsConnection) -> None:
        self.connections.add(conn)

    def remove(self, conn: WsConnection) -> None:
        self.connections.discard(conn)

    def of_account(self, account_id: int) -> list[WsConnection]:
        return [
            c
            for c in self.connections
            if c.principal is not None and c.principal.account_id == account_id
        ]

    def authenticated(self) -> int:
        return sum(1 for c in self.connections if c.principal is not None)

    def close_all(self, code: int = CLOSE_GOING_AWAY, reason: str = "server shutting down") -> None:
        for conn in list(self.connections):
            conn.close(code, reason)

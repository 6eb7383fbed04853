"""Direct writes: a connection's frames go straight to its socket from whoever sends them.

A fan-out to N members costs one ``os.write`` per member and no task wake: the frame
(built once per message, see :func:`text_frame`) is written from the sender's own task
when the connection is idle, as ``websockets.broadcast`` does. Only a connection that is
behind gets its frames queued, for its writer task (:meth:`Outbox.run`). The rules that
keep the byte stream a valid WebSocket stream:

* **Atomic, ordered frames.** A frame is written directly only when nothing is queued
  ahead of it and no other write holds the connection's stream lock. A short write takes
  the lock at once (no await) and parks the rest at the head of the queue; the writer
  finishes it and releases the lock once the queue is empty, or between two whole
  frames when trio-websocket's own sends (pongs, close frames) wait for it: they take
  the same lock, so they fall between whole frames only.
  trio.Lock has an owner, so the lock is a :class:`HandoffLock` (installed by
  :func:`leosuite._compat.trio_websocket.direct_socket`): taken in one task, released
  in another.
* **No data after close.** Nothing is written once the connection is not open (either
  side started the close) or muted (:meth:`Outbox.mute`: we are closing it); a frame
  cut short when the connection ends leaves the lock held, so no close frame follows
  it: the transport is closed instead (:attr:`Outbox.torn`, :meth:`Outbox.finish`).
* **Bounded.** At most ``limit`` messages wait in the queue; :meth:`Outbox.put_nowait`
  refuses one more (the caller drops it, or drops the member), :meth:`Outbox.put` waits
  for room.
* **A burst, one write.** Inside :func:`corked`, the frames its task gives idle
  connections are queued without waking their writers and each connection's are written
  with one ``os.write`` when the block ends: a chat connection handles the messages that
  arrived together in one block, so a burst of k messages costs a member one write, not
  k. Another task's frame for such a connection queues behind the block's and all are
  written at once (or left to the writer), so order holds and only the corking task
  waits for its own block. Each task has a block of its own: one task's block, open
  across an await, never leaves another's frames uncorked.

Without raw writes (another trio-websocket, a stream that is not plain TCP) the queue
holds the messages themselves and the writer sends each with ``send_message``.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import NoReturn, Protocol, cast

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from ..._compat import trio_websocket as compat

__all__ = [
    "BATCH_BYTES",
    "Counters",
    "HandoffLock",
    "Outbox",
    "binary_frame",
    "corked",
    "echo",
    "flush_cork",
    "handle_burst",
    "text_frame",
]

#: The writer writes at most about this many bytes of queued frames at once.
BATCH_BYTES = 256 * 1024
#: A connection handling one message at a time takes at most this many that arrived
#: together before it reads again (:func:`handle_burst`).
BURST = 16


class _Cork:
    """An open :func:`corked` block: the outboxes it queued frames in."""

    __slots__ = ("outboxes",)

    def __init__(self) -> None:
        self.outboxes: list[Outbox] = []


#: The open :func:`corked` blocks, by their task.
_corks: dict[trio.lowlevel.Task, _Cork] = {}


def _current_cork() -> _Cork | None:
    """The calling task's open block, if any (no task lookup while no block is open)."""
    return _corks.get(trio.lowlevel.current_task()) if _corks else None


@contextmanager
def corked() -> Iterator[None]:
    """Within the block, the frames this task gives idle connections wait, and each
    connection's are written with one ``os.write`` at its end (a nested block is part
    of the outer one; other tasks, in blocks of their own or not, write as usual)."""
    task = trio.lowlevel.current_task()
    if task in _corks:
        yield
        return
    cork = _corks[task] = _Cork()
    try:
        yield
    finally:
        del _corks[task]
        for outbox in cork.outboxes:
            outbox._uncork(cork)


def flush_cork() -> None:
    """Write what this task's :func:`corked` block holds so far (the block stays open):
    called before a step that may wait, so that a burst's earlier messages do not wait
    for it."""
    cork = _current_cork()
    if cork is None:
        return
    outboxes, cork.outboxes = cork.outboxes, []
    for outbox in outboxes:
        outbox._uncork(cork)


def text_frame(payload: str) -> bytes:
    """The wire bytes of one text frame: unmasked (a server's), no extension, as
    wsproto would make them."""
    return _frame(0x81, payload.encode())


def binary_frame(data: bytes) -> bytes:
    """The wire bytes of one binary frame, as :func:`text_frame`."""
    return _frame(0x82, data)


def _frame(first: int, data: bytes) -> bytes:
    size = len(data)
    if size < 126:
        return bytes((first, size)) + data
    if size < 65536:
        return bytes((first, 126)) + size.to_bytes(2, "big") + data
    return bytes((first, 127)) + size.to_bytes(8, "big") + data


class HandoffLock:
    """trio-websocket's stream lock without an owner: a short direct write takes it in
    the sender's task and the connection's writer releases it. FIFO, as trio's lock."""

    __slots__ = ("_lot", "held")

    def __init__(self) -> None:
        self.held = False
        self._lot = trio.lowlevel.ParkingLot()

    def locked(self) -> bool:
        return self.held

    def waiting(self) -> bool:
        """Some task waits for the lock."""
        return bool(self._lot)

    def acquire_nowait(self) -> None:
        if self.held:
            raise trio.WouldBlock
        self.held = True

    async def acquire(self) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        if not self.held:
            self.held = True
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        await self._lot.park()  # release() hands it over: ``held`` stays True

    def release(self) -> None:
        if not self.held:
            raise RuntimeError("release of a HandoffLock that is not held")
        if self._lot:
            self._lot.unpark()
        else:
            self.held = False

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *_: object) -> None:
        self.release()


class Counters(Protocol):
    """Where the messages written are counted (the connections' hub)."""

    sent: int


class Outbox:
    """One connection's outbound messages, written directly when it is idle."""

    __slots__ = (
        "_broken",
        "_corked",
        "_frames",
        "_halted",
        "_holding",
        "_limit",
        "_lock",
        "_marks",
        "_room",
        "_sock",
        "_wake",
        "_ws",
        "closed",
        "counters",
        "direct",
        "muted",
        "torn",
    )

    def __init__(self, ws: WebSocketConnection, limit: int, counters: Counters) -> None:
        self._ws = ws
        self._limit = limit
        self.counters = counters
        self._lock = HandoffLock()
        sock = compat.direct_socket(ws, self._lock)
        #: Frames are written by hand (False: messages go through ``send_message``).
        self.direct = sock is not None
        self._sock = sock
        #: Queued frames (bytes; the head may be the rest of a frame cut short), or
        #: queued messages (str) without direct writes.
        self._frames: deque[bytes | memoryview | str] = deque()
        #: Per queued entry: the event set once it is written, or None.
        self._marks: deque[trio.Event | None] = deque()
        self._holding = False  # this outbox holds the stream lock
        #: The :func:`corked` block whose end the queued frames wait for (the writer is
        #: not woken), or None.
        self._corked: _Cork | None = None
        self._broken = False
        #: Broken, muted or closed: the direct path is off, :meth:`_enqueue` decides.
        self._halted = False
        #: Closing: messages are taken and dropped (:meth:`mute`).
        self.muted = False
        #: No more messages are taken (:meth:`close`).
        self.closed = False
        #: The head of the queue is a frame cut short: nothing else may be written.
        self.torn = False
        self._wake = trio.lowlevel.ParkingLot()
        self._room = trio.lowlevel.ParkingLot()

    # -- in -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._frames)

    def put_nowait(self, data: bytes | str) -> bool:
        """Write or queue one message (a frame, or the message without direct writes);
        False when the queue is full or the outbox closed (the message is not sent)."""
        if self._corked is not None and len(self._frames) >= self._limit:
            self._uncork()  # a burst's own frames do not make a reading member look slow
        sock = self._sock
        if self._frames or sock is None or self._lock.held or self._halted:
            return self._enqueue(data) is not False
        if not compat.is_open(self._ws):
            return True  # closing: nothing more goes out, as trio-websocket's send would
        cork = _current_cork()
        if cork is not None:
            self._corked = cork
            cork.outboxes.append(self)
            return self._enqueue(data) is not False
        try:  # the common case, inline: an idle connection's socket takes the frame
            written = os.write(sock.fileno(), data)  # type: ignore[arg-type]  # direct: bytes
        except BlockingIOError:
            written = 0
        except OSError:
            self._broken = self._halted = True  # the writer aborts the connection
            return self._enqueue(data) is not False
        if written == len(data):
            self.counters.sent += 1
            return True
        return self._park(data, written) is not False

    def _park(self, data: bytes | str, written: int) -> bool | None:
        """A short direct write: hold the stream lock (free: checked before the write,
        and nothing awaited since) and queue the rest for the writer."""
        self._lock.held = True
        self._holding = True
        self.torn = written > 0
        assert isinstance(data, bytes)
        return self._enqueue(memoryview(data)[written:] if written else data)

    def _enqueue(self, data: bytes | memoryview | str) -> bool | None:
        """None: queued for the writer; False: refused (full or closed); True: dropped
        (muted)."""
        if self.closed or len(self._frames) >= self._limit:
            return False
        if self.muted:
            return True
        self._frames.append(data)
        self._marks.append(None)
        if self._corked is not None:
            if self._corked is _current_cork():
                return None  # written when the block ends
            # Another task's frame: the block's and it go out now, so that the frames
            # that follow it at once do not find the queue full of the block's.
            self._uncork()
            return None
        if self._wake:
            self._wake.unpark()
        return None

    def _uncork(self, cork: _Cork | None = None) -> None:
        """The end of ``cork`` (None: of whichever block holds the frames): write what it
        queued with one ``os.write`` if the connection is still idle, else leave it to
        the writer."""
        if self._corked is None or (cork is not None and self._corked is not cork):
            return  # written meanwhile (another task's frame), or another block's now
        self._corked = None
        frames = cast("deque[bytes | memoryview]", self._frames)  # direct: frames only
        sock = self._sock
        if not frames or sock is None:
            return
        if self._holding or self._lock.held or self._halted or not compat.is_open(self._ws):
            if self._wake:
                self._wake.unpark()
            return
        batch = frames[0] if len(frames) == 1 else b"".join(frames)
        try:
            written = os.write(sock.fileno(), batch)
        except BlockingIOError:
            written = 0
        except OSError:
            self._broken = self._halted = True  # the writer aborts the connection
            written = 0
        self._took(written)
        if frames:  # a frame cut short or not taken: hold the lock, the writer goes on
            self._lock.held = self._holding = True
            if self._wake:
                self._wake.unpark()

    async def put(self, data: bytes | str) -> None:
        """Write or queue one message, waiting for room in the queue."""
        while len(self._frames) >= self._limit and not self.closed:
            self._wake_corked()
            await self._room.park()
        self.put_nowait(data)

    def _wake_corked(self) -> None:
        """Waiting for room in a queue of corked frames: the writer sends them now."""
        if self._corked is not None:
            self._corked = None
            if self._wake:
                self._wake.unpark()

    async def put_and_wait(self, data: bytes | str) -> None:
        """Write or queue one message and return once it is handed to the socket."""
        mark = await self.put_marked(data)
        if mark is not None:
            await mark.wait()

    async def put_marked(self, data: bytes | str) -> trio.Event | None:
        """Write or queue one message, waiting for room in the queue; the event set
        once it is handed to the socket, or None if it has been already."""
        while len(self._frames) >= self._limit and not self.closed:
            self._wake_corked()
            await self._room.park()
        if self.put_nowait(data) and self._frames and not self.muted:
            self._wake_corked()  # its caller may wait for the mark: no corking
            mark = self._marks[-1] = trio.Event()  # queued: it is the last entry
            return mark
        return None

    def mute(self) -> None:
        """The connection is closing: messages from now on are dropped (not refused),
        what is queued is not sent (what a burst corked before goes out first)."""
        self._uncork()
        self.muted = self._halted = True

    def close(self) -> None:
        """Refuse messages from now on (what is queued is not sent)."""
        self.closed = self._halted = True
        self._room.unpark_all()

    async def finish(self) -> None:
        """After the writer has stopped: take no more, and hand the stream lock back so
        that the close frame (or, under a frame cut short, the closed transport's error)
        reaches trio-websocket's waiting sends."""
        self.close()
        if self.torn:  # no close frame may follow a frame cut short
            await compat.close_transport(self._ws)
        if self._holding:
            self._clear()
            self._holding = False
            self._lock.release()

    # -- out ----------------------------------------------------------------------------

    async def run(self) -> None:
        """The writer: writes what is queued, in order, holding the stream lock until
        the queue is empty; raises :class:`ConnectionClosed` on a broken stream."""
        frames = self._frames
        while True:
            while not frames and not self._broken:
                await self._wake.park()
            if not self.direct:
                await self._send_messages()
                continue
            if not self._holding:
                await self._lock.acquire()
                self._holding = True
            try:
                await self._write_batch()
            finally:
                # Let trio-websocket's pongs and close frames in between whole frames.
                if not self.torn and (not frames or self._lock.waiting()):
                    self._holding = False
                    self._lock.release()

    async def _send_messages(self) -> None:
        while self._frames:
            data = self._frames[0]
            assert not isinstance(data, memoryview)  # messages, not frames
            await self._ws.send_message(data)
            self._frames.popleft()
            self._done(1, [self._marks.popleft()])

    async def _write_batch(self) -> None:
        """Write queued frames once (a batch of up to ``BATCH_BYTES``, or only the rest
        of a frame cut short while another send waits); wait until the socket takes
        more if it took less."""
        frames = cast("deque[bytes | memoryview]", self._frames)  # direct: frames only
        sock = self._sock
        assert sock is not None
        if self._broken:
            await self._broken_stream()
        if not compat.is_open(self._ws):
            self._clear()
            raise ConnectionClosed(self._ws.closed)
        if frames:
            count, size = 0, 0
            if self.torn and self._lock.waiting():
                count = 1
            else:
                for item in frames:
                    count += 1
                    size += len(item)
                    if size >= BATCH_BYTES:
                        break
            batch = frames[0] if count == 1 else b"".join(islice(frames, count))
            try:
                written = os.write(sock.fileno(), batch)
            except BlockingIOError:
                written = 0
            except OSError:
                await self._broken_stream()
            short = written < len(batch)
            self._took(written)
            if short:
                try:
                    await trio.lowlevel.wait_writable(sock)
                except trio.ClosedResourceError:
                    await self._broken_stream()
                return
        await trio.lowlevel.checkpoint()

    def _took(self, written: int) -> None:
        """The socket took ``written`` bytes from the head of the queue: the whole frames
        leave (their marks set), the rest of a frame cut short stays (``torn``)."""
        frames = cast("deque[bytes | memoryview]", self._frames)  # direct: frames only
        marks = self._marks
        done: list[trio.Event | None] = []
        while written and written >= len(frames[0]):
            written -= len(frames.popleft())
            done.append(marks.popleft())
        if written:
            frames[0] = memoryview(frames[0])[written:]
            self.torn = True
        elif done:
            self.torn = False
        if done:
            self._done(len(done), done)

    def _done(self, count: int, marks: list[trio.Event | None]) -> None:
        self.counters.sent += count
        for mark in marks:
            if mark is not None:
                mark.set()
        if self._room:
            self._room.unpark_all()

    def _clear(self) -> None:
        self.torn = False
        self._frames.clear()
        self._marks.clear()

    async def _broken_stream(self) -> NoReturn:
        """The peer is gone: abort the connection as trio-websocket's own send does."""
        self._clear()
        raise ConnectionClosed(await compat.abort(self._ws))


async def handle_burst(
    ws: WebSocketConnection,
    message: str | bytes,
    handle: Callable[[str | bytes], Awaitable[None]],
) -> int:
    """Handle ``message`` and those that arrived with it (up to :data:`BURST`), one at a
    time and in order. Several are handled in a :func:`corked` block (what they send to
    idle connections goes out in one write each); one alone is not (its frames go out
    as the fan-out goes, no member waits for the last). How many were handled."""

    async def next_message(patience: int) -> str | bytes | None:
        # trio-websocket's reader hands over a message or two a scheduler round: let it
        # parse what it has read already, until ``patience`` rounds in a row find none
        # (the reader may run before or after this task in a round, so one can miss).
        more = compat.message_nowait(ws)
        misses = 0
        while more is None and misses < patience:
            await trio.lowlevel.checkpoint()
            more = compat.message_nowait(ws)
            misses += 1
        return more

    more = await next_message(1) if BURST > 1 else None
    if more is None:
        await handle(message)
        return 1
    handled = 1
    with corked():
        await handle(message)
        while more is not None:
            # A message that closed the connection (a logout, a kick) ends the burst.
            await trio.lowlevel.checkpoint_if_cancelled()
            handled += 1
            await handle(more)
            more = await next_message(2) if handled < BURST else None
    return handled


class _Count:
    sent = 0


async def echo(ws: WebSocketConnection, queue_size: int = 64) -> None:
    """Send every message back through an :class:`Outbox` (the conformance tests' echo:
    the same write path, bursts and all, as the chat)."""
    outbox = Outbox(ws, queue_size, _Count())
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outbox.run)

            async def send_back(message: str | bytes) -> None:
                if not outbox.direct:
                    await outbox.put(message)
                elif isinstance(message, str):
                    await outbox.put(text_frame(message))
                else:
                    await outbox.put(binary_frame(message))

            while True:
                await handle_burst(ws, await ws.get_message(), send_back)
    except* ConnectionClosed:
        pass
    finally:
        with trio.CancelScope(shield=True):
            await outbox.finish()

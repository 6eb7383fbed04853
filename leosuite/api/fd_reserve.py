"""Running out of file descriptors: refuse new connections at once, keep the rest for
the store and the servers.

Every listener accepts through a :class:`ReservedListener`, all of them sharing one
:class:`DescriptorReserve`:

* **Headroom.** A connection is never let take one of the last
  :meth:`DescriptorReserve.headroom` descriptors below the soft ``RLIMIT_NOFILE``:
  the kernel hands out the lowest free number, so an accepted descriptor numbered at
  or over ``soft limit - headroom`` means the process is that close to its limit.
  Such a connection is answered ``503`` and closed; what is left stays for the
  store, console files, FIFOs and spawning servers.
* **Spares.** When ``accept`` itself fails with ``EMFILE``/``ENFILE`` (something else
  used the headroom up), the reserve closes one of the spare descriptors it holds,
  accepts the waiting connection, answers it ``503``, closes it and takes the spare
  again: a client gets a prompt answer instead of waiting in the accept queue. While
  a spare cannot be taken again, the process is at its limit and every new connection
  is refused.
* **One log line per burst.** The first refusal logs a warning naming the soft
  limit; the first connection served after a burst logs how many were refused.

The ``503`` carries the JSON error shape and ``Retry-After``; it is answered in the
background (:meth:`DescriptorReserve.run`), and the connection closed once the client
has closed its side, within a second. At most a quarter of the headroom is spent
answering at a time: a connection refused beyond that is closed unanswered.
"""

from __future__ import annotations

import errno
import logging
import os
import resource

import msgspec
import trio

__all__ = [
    "HEADROOM",
    "REFUSED_ANSWER",
    "SPARES",
    "DescriptorReserve",
    "ReservedListener",
    "describe_nofile_limit",
    "soft_nofile_limit",
]

log = logging.getLogger("leosuite.listen")

#: The most descriptors kept free of connections (a quarter of a small limit at most).
HEADROOM = 64
#: Spare descriptors held to accept, answer and close a connection at the limit.
SPARES = 4
#: How long answering and closing a refused connection may take.
_ANSWER_DEADLINE = 1.0
#: The most of a refused connection's request that is read (and thrown away).
_DRAIN_LIMIT = 64 * 1024
#: How long to wait before trying again when no spare is left to refuse with.
_NO_SPARE_PAUSE = 0.05
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE})

_BODY = msgspec.json.encode(
    {
        "error_type": "unavailable",
        "error_message": "the daemon is out of file descriptors; try again shortly",
    }
)
#: What a connection refused for want of descriptors is answered.
REFUSED_ANSWER = (
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Content-Type: application/json\r\n"
    f"Content-Length: {len(_BODY)}\r\n"
    "Retry-After: 1\r\n"
    "Connection: close\r\n\r\n"
).encode() + _BODY


def soft_nofile_limit() -> int:
    """The soft ``RLIMIT_NOFILE`` of this process (a large number when unlimited)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 31


def describe_nofile_limit() -> str:
    """``file descriptors: soft limit N (the hard limit)``, or both limits when the soft
    one could not be raised to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    shown = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
    if soft == hard:
        return f"file descriptors: soft limit {shown} = hard limit"
    hard_shown = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    return f"file descriptors: soft limit {shown}, hard limit {hard_shown}"


class DescriptorReserve:
    """The spare descriptors and the exhaustion state shared by every listener."""

    def __init__(self, spares: int = SPARES) -> None:
        self._wanted = spares
        self._spares: list[int] = []
        self._closed = False
        #: Connections refused in the current burst; None while none is.
        self._refused: int | None = None
        self.refused_total = 0
        self._answering = 0
        self._nursery: trio.Nursery | None = None
        self._refill()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Answer refused connections in the background until cancelled; without it
        they are closed unanswered."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None

    def refuse(self, stream: trio.SocketStream) -> None:
        """Answer ``stream`` 503 and close it, or close it at once when a quarter of
        the headroom is being answered already; counted either way."""
        soft = soft_nofile_limit()
        if self._nursery is not None and self._answering < max(1, self.headroom(soft) // 4):
            self._answering += 1
            self._nursery.start_soon(self._answer, stream)
        else:
            stream.socket.close()
        self.note_refused()

    async def _answer(self, stream: trio.SocketStream) -> None:
        try:
            await _answer(stream)
        finally:
            self._answering -= 1
            self._refill()

    def statistics(self) -> dict[str, int]:
        return {
            "spares": len(self._spares),
            "refused": self.refused_total,
            "exhausted": int(self._refused is not None),
        }

    @staticmethod
    def headroom(soft: int) -> int:
        """How many descriptors under ``soft`` connections never take."""
        return min(HEADROOM, soft // 4)

    def admits(self, fd: int) -> bool:
        """Whether a connection on descriptor ``fd`` leaves the headroom free, and every
        spare could be held beside it."""
        soft = soft_nofile_limit()
        if fd >= soft - self.headroom(soft):
            return False
        self._refill()
        return len(self._spares) == self._wanted

    def take_spare(self) -> bool:
        """Close one spare so that the next descriptor can be had; False if none is left."""
        if not self._spares:
            return False
        os.close(self._spares.pop())
        return True

    def _refill(self) -> None:
        while not self._closed and len(self._spares) < self._wanted:
            try:
                self._spares.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
            except OSError:
                return  # at the limit: taken again later

    def note_refused(self, count: int = 1) -> None:
        """Count ``count`` refused connections (0: none could even be accepted); the
        first note of a burst logs a warning."""
        self.refused_total += count
        if self._refused is None:
            self._refused = 0
            log.warning(
                "out of file descriptors: refusing new connections (soft limit %d)",
                soft_nofile_limit(),
            )
        self._refused += count
        self._refill()

    def note_served(self) -> None:
        """A connection was served: a burst of refusals, if any, has ended."""
        if self._refused is not None:
            log.warning(
                "file descriptors available again: %d connection%s refused",
                self._refused,
                "" if self._refused == 1 else "s",
            )
            self._refused = None

    def close(self) -> None:
        self._closed = True
        while self._spares:
            os.close(self._spares.pop())


async def _answer(stream: trio.SocketStream) -> None:
    """Answer, end the sending side, and read what the client sends until it closes
    (closing with unread data would reset the answer away); all within
    :data:`_ANSWER_DEADLINE`."""
    try:
        with trio.move_on_after(_ANSWER_DEADLINE):
            await stream.send_all(REFUSED_ANSWER)
            await stream.send_eof()
            unread = _DRAIN_LIMIT
            while unread > 0 and (chunk := await stream.receive_some(4096)):
                unread -= len(chunk)
    except (trio.BrokenResourceError, OSError):
        pass
    finally:
        await trio.aclose_forcefully(stream)


class ReservedListener(trio.abc.Listener[trio.SocketStream]):
    """A :class:`trio.SocketListener` that refuses connections (``503``) instead of
    letting them take the headroom, and instead of failing at the limit."""

    def __init__(self, inner: trio.SocketListener, reserve: DescriptorReserve) -> None:
        self.inner = inner
        self.socket = inner.socket
        self._reserve = reserve

    async def accept(self) -> trio.SocketStream:
        # At the limit accept fails whether or not a connection waits: a spare is only
        # spent once the socket is readable, and only after one more plain try.
        waiting = False
        while True:
            try:
                stream = await self.inner.accept()
            except OSError as exc:
                if exc.errno not in _EXHAUSTED:
                    raise
                if waiting:
                    await self._refuse_at_limit()
                else:
                    await trio.lowlevel.wait_readable(self.socket)
                waiting = not waiting
                continue
            waiting = False
            if self._reserve.admits(stream.socket.fileno()):
                self._reserve.note_served()
                return stream
            self._reserve.refuse(stream)

    async def _refuse_at_limit(self) -> None:
        """Accept the waiting connection with a spare descriptor and refuse it."""
        if not self._reserve.take_spare():
            self._reserve.note_refused(0)
            await trio.sleep(_NO_SPARE_PAUSE)
            return
        try:
            stream = await self.inner.accept()
        except OSError as exc:
            if exc.errno not in _EXHAUSTED:
                raise
            stream = None  # the spare went to another thread's open
        if stream is None:
            self._reserve.note_refused(0)
        else:
            self._reserve.refuse(stream)

    async def aclose(self) -> None:
        await self.inner.aclose()

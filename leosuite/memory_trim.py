"""Give the memory the daemon freed back to the system.

CPython frees small objects into glibc's heap, which keeps freed pages mapped: a daemon
that runs for months and sees bursts (a flood of console output, a thousand WebSocket
clients) then keeps its peak size for ever, growing slowly as the heap fragments.
``malloc_trim(0)`` returns every free page at the top of each arena and, since glibc
2.8, free pages inside them too. What a trim cannot return is a page that still holds
one live allocation; each worker thread (store, files, hashing) gets an arena of its
own by default, up to eight per core, and each fragments on its own, so the daemon also
caps the arenas at two unless the operator set ``MALLOC_ARENA_MAX`` himself. Elsewhere
(musl, macOS) this all does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable, Mapping

import trio

__all__ = [
    "ARENAS",
    "PAUSE_LIMIT",
    "CollectorPause",
    "cap_arenas",
    "release_free_memory",
    "settle_collector",
    "trimmer",
]

log = logging.getLogger("leosuite.daemon")


def trimmer() -> Callable[[], int] | None:
    """glibc's ``malloc_trim`` as a function of no arguments, or None without glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: int(trim(0))


_TRIM = trimmer()

#: glibc's arenas for the daemon's threads: the main thread's and one its workers share.
ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def cap_arenas(environ: Mapping[str, str]) -> bool:
    """Cap glibc's malloc arenas at :data:`ARENAS`, before the daemon starts a thread;
    False where the C library cannot or the environment already chose a number."""
    if "MALLOC_ARENA_MAX" in environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, ARENAS))


async def release_free_memory() -> bool:
    """Return free heap pages to the system, in a worker thread (it walks the heap);
    False where the C library cannot."""
    if _TRIM is None:
        return False
    await trio.to_thread.run_sync(_TRIM)
    return True


def settle_collector() -> None:
    """Once the daemon serves: what start-up made (modules, settings, the listeners)
    lives until the process ends, so the cycle collector stops walking it (its
    thresholds stay CPython's: collecting less often keeps more garbage waiting)."""
    gc.freeze()


#: The longest the cycle collector is held by :class:`CollectorPause` (seconds).
PAUSE_LIMIT = 5.0


class CollectorPause:
    """Hold the cycle collector while a burst of work runs (a bulk power call over a
    fleet): with a thousand servers each full collection walks a few hundred thousand
    objects, and a burst that allocates fast sets off several, a quarter of its time.
    The garbage is collected after the burst. Pauses nest and overlap (the collector
    runs again when the last one ends); it is held :data:`PAUSE_LIMIT` seconds in a row
    at most, however many pauses overlap (:meth:`end_after` enforces it: it runs again
    then until every pause has ended), and a collector disabled by someone else is left
    alone."""

    _held = 0  # pauses in effect, process-wide
    _since = 0.0  # when the collector was first held (trio's clock)
    _expired = False  # held PAUSE_LIMIT in a row: it runs until the last pause ends

    def __init__(self) -> None:
        self._holding = False

    def __enter__(self) -> CollectorPause:
        cls = CollectorPause
        if not cls._held:
            if not gc.isenabled():
                return self  # someone else's choice
            cls._since = trio.current_time()
            cls._expired = False
        cls._held += 1
        self._holding = True
        if not cls._expired:
            gc.disable()
        return self

    def __exit__(self, *_: object) -> None:
        self.end()

    def end(self) -> None:
        """End this pause (again: nothing); the last one ending runs the collector again."""
        if not self._holding:
            return
        self._holding = False
        CollectorPause._held -= 1
        if not CollectorPause._held:
            gc.enable()

    async def end_after(self, seconds: float | None = None) -> None:
        """End this pause once the collector has been held ``seconds`` (default
        :data:`PAUSE_LIMIT`) in a row, counted from the first of the pauses in effect;
        the collector then runs again even while other pauses hold. Cancelled, it ends
        this pause at once."""
        cls = CollectorPause
        limit = PAUSE_LIMIT if seconds is None else seconds
        try:
            if self._holding:
                await trio.sleep_until(cls._since + limit)
                if self._holding and cls._held:
                    cls._expired = True
                    gc.enable()
        finally:
            self.end()

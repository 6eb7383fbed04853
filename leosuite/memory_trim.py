"""Give the memory the daemon freed back to the system.

CPython frees small objects into glibc's heap, which keeps freed pages mapped: a daemon
that runs for months and sees bursts (a flood of console output, a thousand WebSocket
clients) then keeps its peak size for ever, growing slowly as the heap fragments.
``malloc_trim(0)`` returns every free page at the top of each arena and, since glibc
2.8, free pages inside them too. Elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

import trio

__all__ = ["release_free_memory", "trimmer"]

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


async def release_free_memory() -> bool:
    """Return free heap pages to the system, in a worker thread (it walks the heap);
    False where the C library cannot."""
    if _TRIM is None:
        return False
    await trio.to_thread.run_sync(_TRIM)
    return True

"""What the daemon's signals mean: SIGTERM and SIGINT stop, SIGHUP reloads.

A second stop signal hurries the stop (every server is SIGKILLed, the daemon exits
1); when the servers are being left running it ends the process at once, and a third
signal, or a hurried stop that still hangs after :data:`HURRY_LIMIT` seconds, ends it
in any case. A stop signal during a reload makes the next image stop once it serves.

The three signals are held (blocked) from start-up until the receiver is installed,
and again from the moment a reload begins: the mask survives ``execve``, so a signal
sent while the next image starts waits for its receiver instead of killing the
process with its default action (a second SIGHUP becomes a second reload). A worker
thread started before the hold may still take a signal for the process; a stop signal
its handler saw that the receiver has not yet taken when the process re-executes is
handed to the next image all the same (:func:`stop_signal_untaken`).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from .daemon import Daemon

__all__ = [
    "HELD_SIGNALS",
    "HURRY_LIMIT",
    "hold_signals",
    "release_signals",
    "stop_signal_untaken",
    "watch_signals",
]

log = logging.getLogger("leosuite.daemon")

#: The signals the daemon receives, held while no receiver is installed.
HELD_SIGNALS = frozenset({signal.SIGHUP, signal.SIGTERM, signal.SIGINT})
#: After a second signal, how long the daemon may take to finish before it exits anyway.
HURRY_LIMIT = 10.0

#: A stop signal's handler has run and the receiver has not taken one since.
_stop_untaken = [False]


def stop_signal_untaken() -> bool:
    """Whether a stop signal reached the process that the receiver has not taken yet
    (it is on its way to the receiver, which may not run again before an ``execve``)."""
    return _stop_untaken[0]


def _noting(handler: Callable[[int, FrameType | None], object]) -> Callable[..., None]:
    """``handler`` (trio's), after noting a stop signal as not yet taken."""

    def note(signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGHUP:
            _stop_untaken[0] = True
        handler(signum, frame)

    return note


def hold_signals() -> None:
    """Block :data:`HELD_SIGNALS` in the calling thread (and in every thread it
    starts from now on)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)


def release_signals() -> None:
    """Unblock them in the calling thread: call only once a receiver is installed."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_SIGNALS)


async def watch_signals(
    daemon: Daemon, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Receive the daemon's signals until it exits (never returns normally)."""
    _stop_untaken[0] = False
    with trio.open_signal_receiver(*HELD_SIGNALS) as signals:
        for held in HELD_SIGNALS:  # trio puts back the handlers it found when it closes
            handler = signal.getsignal(held)
            if callable(handler):
                signal.signal(held, _noting(handler))
        release_signals()
        task_status.started()
        async for signum in signals:
            if signum != signal.SIGHUP:
                _stop_untaken[0] = False  # trio hands over each pending signal once
            name = signal.Signals(signum).name
            if signum == signal.SIGHUP:
                if daemon.exit_mode is None:
                    log.info("received SIGHUP: reloading")
                    hold_signals()  # from here on, signals wait for the next image
                    daemon.request_reload()
                else:
                    log.info("received SIGHUP while stopping or reloading: ignored")
                continue
            if daemon.exit_mode is None:
                log.info("received %s", name)
                daemon.request_stop()
                continue
            if daemon.exit_mode == "reload":
                log.info("received %s during the reload: stopping once reloaded", name)
                daemon.stop_after_reload = True
                continue
            if daemon.exit_mode == "leave":
                _say(f"second signal ({name}): exiting now; every server keeps running")
                os._exit(1)
            break
        _say(f"second signal ({name}): killing every server and exiting")
        daemon.hurry()
        # A third signal, or a stop that still hangs, ends the process at once.
        with trio.move_on_after(HURRY_LIMIT):
            async for _ in signals:
                break
        daemon.kill_servers_now()
        _say("exiting now")
        os._exit(1)


def _say(message: str) -> None:
    print(f"leosuite: {message}", file=sys.stderr, flush=True)

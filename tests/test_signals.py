"""The daemon's signal receiver (leosuite.signals), in this process: what it knows of a
stop signal that has reached the process but not yet its receiver task."""

from __future__ import annotations

import os
import signal
from typing import cast

import trio

from leosuite.daemon import Daemon
from leosuite.signals import stop_signal_untaken, watch_signals


class Reloading:
    """The part of a daemon the receiver uses, in the middle of a reload."""

    exit_mode: str | None = "reload"
    stop_after_reload = False


async def test_a_stop_signal_not_yet_taken_is_known_until_the_receiver_takes_it() -> None:
    """A SIGTERM whose handler has run while the receiver task has not run since (as in
    the moment before the daemon re-executes for a reload) is known as untaken, so the
    reload hands it to the next image; once the receiver takes it, it is not."""
    daemon = Reloading()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(watch_signals, cast(Daemon, daemon))
            assert not stop_signal_untaken()
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop_signal_untaken()  # no checkpoint since: the receiver has not run
            assert not daemon.stop_after_reload
            while not daemon.stop_after_reload:
                await trio.sleep(0.01)
            assert not stop_signal_untaken()
            os.kill(os.getpid(), signal.SIGHUP)  # a reload signal is not a stop
            assert not stop_signal_untaken()
            await trio.sleep(0.05)
            nursery.cancel_scope.cancel()

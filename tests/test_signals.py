"""The daemon's signal receiver (leosuite.signals), in this process: what it knows of a
stop signal that has reached the process but not yet its receiver task, and what a
re-execution hands the next image of it."""

from __future__ import annotations

import errno
import logging
import os
import signal
from collections.abc import Iterator
from typing import cast

import msgspec
import pytest
import trio

from leosuite import reload
from leosuite.daemon import Daemon
from leosuite.reload import HANDOFF_ENV, Handoff, exec_self
from leosuite.signals import HELD_SIGNALS, stop_signal_untaken, watch_signals


class Reloading:
    """The part of a daemon the receiver uses, in the middle of a reload."""

    exit_mode: str | None = "reload"
    stop_after_reload = False


@pytest.fixture
def harmless_signals() -> Iterator[None]:
    """Handlers that do nothing under the receiver's: trio puts them back when it
    closes, so a signal it hands back then ends nothing (not the test's process)."""
    saved = {signum: signal.getsignal(signum) for signum in HELD_SIGNALS}
    for signum in HELD_SIGNALS:
        signal.signal(signum, lambda *_: None)
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


@pytest.mark.usefixtures("harmless_signals")
async def test_a_stop_signal_not_yet_taken_is_known_until_the_receiver_takes_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A SIGTERM whose handler has run while the receiver task has not run since (as in
    the moment before the daemon re-executes for a reload) is known as untaken, so the
    reload hands it to the next image; once the receiver takes it, it is not; a SIGHUP
    is not a stop."""
    caplog.set_level(logging.INFO, logger="leosuite.daemon")
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
            os.kill(os.getpid(), signal.SIGHUP)
            assert not stop_signal_untaken()
            while "SIGHUP while stopping or reloading: ignored" not in caplog.text:
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("pending", [False, True])
def test_a_re_execution_hands_a_pending_stop_to_the_next_image(
    monkeypatch: pytest.MonkeyPatch, pending: bool
) -> None:
    """What ``execve`` is given: the handoff with ``stop`` set exactly when a stop
    signal is pending at the last look."""
    given: dict[str, str] = {}

    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        given.update(env)
        raise OSError(errno.ENOEXEC, "not in a test")

    monkeypatch.setattr(reload.os, "execve", execve)
    with pytest.raises(OSError, match="not in a test"):
        exec_self(Handoff(generation=2), stop_pending=lambda: pending)
    handed = msgspec.json.decode(given[HANDOFF_ENV], type=Handoff)
    assert handed == Handoff(generation=2, stop=pending)

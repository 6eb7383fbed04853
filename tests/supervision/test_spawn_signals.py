"""A server's signal mask at its start: none blocked, whatever the daemon's thread that
spawned it held (a child inherits its parent thread's mask)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from leosuite.signals import HELD_SIGNALS
from leosuite.supervision import process
from leosuite.supervision.process import spawn
from leosuite.supervision.spec import LaunchSpec
from tests.helpers.daemon_process import signal_masks


async def test_a_server_starts_with_no_signal_blocked_whatever_its_thread_held(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The spawn runs in a worker thread started while the daemon's signals were held
    (as one started during a reload is): the server still starts with none blocked."""
    real_run_sync = trio.to_thread.run_sync
    masks: list[set[signal.Signals]] = []

    async def in_a_held_thread(fn: Callable[..., Any], *args: Any, **_: Any) -> Any:
        outcome: dict[str, Any] = {}

        def run() -> None:
            masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, set()))
            try:
                outcome["value"] = fn(*args)
            except BaseException as exc:
                outcome["error"] = exc

        before = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
        try:
            thread = threading.Thread(target=run)
            thread.start()  # it inherits the held signals
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)
        await real_run_sync(thread.join)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    monkeypatch.setattr(process.trio.to_thread, "run_sync", in_a_held_thread)
    stdin_r, stdin_w = os.pipe()
    try:
        with (tmp_path / "console.log").open("wb") as console:
            spec = LaunchSpec(argv=["sleep", "30"], cwd=str(tmp_path), restart="never")
            popen = await spawn(spec, stdin_fd=stdin_r, output_fd=console.fileno())
        try:
            assert masks  # the spawn ran in such a thread
            assert all(mask >= HELD_SIGNALS for mask in masks)
            blocked, _ = signal_masks(popen.pid)
            assert blocked == 0
        finally:
            popen.kill()
            popen.wait()
    finally:
        os.close(stdin_r)
        os.close(stdin_w)

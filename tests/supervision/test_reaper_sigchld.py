"""The reaper's passes are woken by SIGCHLD, not by a clock: an orphan that ends is
reaped while the reaper's own tick is an hour away, a zombie left for a spawn under
way is reaped once the spawn ends, and the signal's disposition is put back."""

from __future__ import annotations

import signal
import subprocess

import psutil  # type: ignore[import-untyped]
import trio

from leosuite.supervision.reaper import REAPER

HOUR = 3600.0


def _zombie_children() -> set[int]:
    zombies = set()
    for child in psutil.Process().children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                zombies.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return zombies


async def test_an_orphan_is_reaped_on_sigchld_without_a_tick() -> None:
    before = signal.getsignal(signal.SIGCHLD)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: REAPER.run(interval=HOUR, task_status=task_status)
            )
            assert REAPER.catches_sigchld
            await trio.sleep(0.2)  # past the start-up pass and its spacing
            reaped = REAPER.reaped
            # A grandchild in a session of its own, orphaned to this process, then gone.
            shell = subprocess.Popen(["sh", "-c", "sleep 0.2 & exit 0"], start_new_session=True)
            await trio.to_thread.run_sync(shell.wait)
            while REAPER.reaped == reaped:  # never woken by hand: SIGCHLD does it
                await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
    assert signal.getsignal(signal.SIGCHLD) == before
    assert not REAPER.catches_sigchld


async def test_a_zombie_left_for_a_spawn_is_reaped_when_the_spawn_ends() -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: REAPER.run(interval=HOUR, task_status=task_status)
            )
            with REAPER.spawning():
                # A session leader: while a spawn is under way it may be that server.
                proc = subprocess.Popen(["sh", "-c", "exit 0"], start_new_session=True)
                while proc.pid not in _zombie_children():
                    await trio.sleep(0.01)
                await trio.sleep(0.3)  # the SIGCHLD pass ran and left it
                assert proc.pid in _zombie_children()
            while proc.pid in _zombie_children():  # the spawn's end woke a pass
                await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
    proc.wait()


async def test_a_burst_of_exits_is_reaped_in_few_passes() -> None:
    """Forty orphans ending at once: every one reaped, in fewer passes than exits."""
    passes = 0
    real = REAPER.reap_now

    def counted() -> int:
        nonlocal passes
        passes += 1
        return real()

    REAPER.reap_now = counted  # type: ignore[method-assign]
    try:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                await nursery.start(
                    lambda task_status: REAPER.run(interval=HOUR, task_status=task_status)
                )
                await trio.sleep(0.2)
                reaped, passes = REAPER.reaped, 0
                shell = subprocess.Popen(
                    ["sh", "-c", "for i in $(seq 40); do sleep 0.3 & done; exit 0"],
                    start_new_session=True,
                )
                await trio.to_thread.run_sync(shell.wait)
                while REAPER.reaped < reaped + 40:
                    await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
    finally:
        del REAPER.reap_now
    assert passes < 40

"""Chores many tasks ask for at once run in one worker-thread job each round, and every
caller gets its own item's result or error, also when it is cancelled meanwhile."""

from __future__ import annotations

import threading

import pytest
import trio
import trio.testing

from leosuite.supervision.batched import Batched


class _Fatal(BaseException):
    """Not an item's failure: the job itself breaks."""


def _gated(release: threading.Event) -> tuple[Batched[int, int], list[int]]:
    seen: list[int] = []

    def one(item: int) -> int:
        if item in (0, 66):  # the first job waits, so that the others queue up behind it
            release.wait(10)
        seen.append(item)
        if item == 13:
            raise OSError(f"no {item}")
        if item == 66:
            raise _Fatal
        return item * 2

    return Batched(one), seen


async def test_callers_meanwhile_share_one_job_and_each_gets_its_own_answer() -> None:
    release = threading.Event()
    batched, seen = _gated(release)
    answers: dict[int, int | str] = {}

    async def ask(item: int) -> None:
        try:
            answers[item] = await batched.run(item)
        except OSError as exc:
            answers[item] = str(exc)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, 0)
            await trio.testing.wait_all_tasks_blocked()
            for item in range(1, 50):
                nursery.start_soon(ask, item)
            await trio.testing.wait_all_tasks_blocked()
            release.set()
    assert answers == {n: ("no 13" if n == 13 else n * 2) for n in range(50)}
    assert sorted(seen) == list(range(50))
    assert (batched.jobs, batched.items) == (2, 50)


async def test_a_cancelled_caller_still_has_its_item_done() -> None:
    release = threading.Event()
    batched, seen = _gated(release)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(batched.run, 0)
            await trio.testing.wait_all_tasks_blocked()
            with trio.CancelScope() as scope:
                scope.cancel()
                release.set()
                assert await batched.run(5) == 10  # shielded: done first
                await trio.lowlevel.checkpoint()  # then the cancellation lands
            assert scope.cancelled_caught
    assert sorted(seen) == [0, 5]


async def test_a_broken_job_fails_every_caller_waiting_instead_of_hanging() -> None:
    release = threading.Event()
    batched, _ = _gated(release)
    failures: list[str] = []

    async def ask(item: int) -> None:
        try:
            await batched.run(item)
        except _Fatal:
            failures.append(f"{item} fatal")
        except RuntimeError as exc:
            failures.append(f"{item} {exc}")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, 66)  # the first job breaks
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(ask, 1)  # queued behind the job that breaks
            await trio.testing.wait_all_tasks_blocked()
            release.set()
    assert sorted(failures) == ["1 the worker thread job failed", "66 fatal"]
    assert await batched.run(2) == 4  # usable again


@pytest.mark.parametrize("items", [1, 3])
async def test_one_caller_alone_is_one_job(items: int) -> None:
    batched: Batched[int, int] = Batched(lambda n: n + 1)
    for n in range(items):
        assert await batched.run(n) == n + 1
    assert batched.jobs == items

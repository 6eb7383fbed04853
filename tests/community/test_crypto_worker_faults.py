"""The crypto worker under faults: an interrupted exchange and a hung child.

Every test runs the real worker process. The seam for "cancelled after the request
is written" is the child's stdin stream: a wrapper cancels the caller's scope as soon
as ``send_all`` has handed the whole request to the pipe.
"""

from __future__ import annotations

import os
import signal

import pytest
import trio
import trio.testing

from leosuite.community.crypto import decrypt_payload
from leosuite.community.crypto_worker import CryptoWorker
from leosuite.errors import ProcessError


class CancelAfterWrite(trio.abc.SendStream):
    """The child's stdin, cancelling *scope* once the next request is fully written."""

    def __init__(self, inner: trio.abc.SendStream, scope: trio.CancelScope) -> None:
        self.inner = inner
        self.scope = scope
        self.writes = 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)
        self.writes += 1
        if self.writes == 1:
            self.scope.cancel()

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()


def say(text: str) -> dict[str, str]:
    return {"user": "u", "text": text, "verb": "say"}


async def test_a_call_cancelled_after_its_write_does_not_answer_the_next_caller() -> None:
    worker = CryptoWorker()
    try:
        with trio.fail_after(30):
            warm = await worker.encrypt("key-0", say("warm"))
            assert decrypt_payload("key-0", warm)["text"] == "warm"
            process = worker._process
            assert process is not None
            assert process.stdin is not None
            with trio.CancelScope() as scope:
                process.stdin = CancelAfterWrite(process.stdin, scope)
                await worker.encrypt("key-A", say("for room A"))
            assert scope.cancelled_caught
            assert worker._process is process  # the child is kept, its stale answer dropped
            # every later call gets its own answer: its own text under its own key
            for i in range(3):
                payload = await worker.encrypt(f"key-B{i}", say(f"for room B{i}"))
                assert decrypt_payload(f"key-B{i}", payload)["text"] == f"for room B{i}"
    finally:
        await worker.aclose()


async def test_several_interrupted_calls_in_a_row_leave_no_stale_answer() -> None:
    worker = CryptoWorker()
    try:
        with trio.fail_after(30):
            await worker.encrypt("key-0", say("warm"))
            for i in range(3):
                process = worker._process
                assert process is not None
                assert process.stdin is not None
                with trio.CancelScope() as scope:
                    inner = process.stdin
                    process.stdin = CancelAfterWrite(inner, scope)
                    try:
                        await worker.encrypt(f"key-A{i}", say(f"lost {i}"))
                    finally:
                        process.stdin = inner
                assert scope.cancelled_caught
            payload = await worker.encrypt("key-B", say("mine"))
            assert decrypt_payload("key-B", payload)["text"] == "mine"
    finally:
        await worker.aclose()


async def test_a_call_cancelled_while_writing_replaces_the_child() -> None:
    worker = CryptoWorker()
    try:
        with trio.fail_after(30):
            await worker.encrypt("key-0", say("warm"))
            child = worker._process
            assert child is not None
            os.kill(child.pid, signal.SIGSTOP)  # the pipe fills: the write blocks halfway
            async with trio.open_nursery() as nursery:
                scope = trio.CancelScope()

                async def big_call() -> None:
                    with scope:
                        await worker.encrypt("key-A", say("x" * (1 << 18)))

                nursery.start_soon(big_call)
                await trio.testing.wait_all_tasks_blocked()
                scope.cancel()
            assert scope.cancelled_caught
            if child.returncode is None:
                os.kill(child.pid, signal.SIGCONT)
            # half a request in the pipe would swallow the next one: the child was killed
            payload = await worker.encrypt("key-B", say("mine"))
            assert decrypt_payload("key-B", payload)["text"] == "mine"
            assert child.returncode is not None
    finally:
        await worker.aclose()


async def test_a_hung_worker_fails_the_call_at_the_deadline_and_is_replaced() -> None:
    worker = CryptoWorker(deadline=30.0)
    try:
        with trio.fail_after(60):
            await worker.encrypt("key-0", say("warm"))
            hung = worker._process
            assert hung is not None
            os.kill(hung.pid, signal.SIGSTOP)
            worker.deadline = 0.5
            outcomes: dict[str, str] = {}

            async def call(name: str) -> None:
                try:
                    payload = await worker.encrypt(f"key-{name}", say(name))
                except ProcessError as exc:
                    outcomes[name] = f"error: {exc}"
                else:
                    outcomes[name] = decrypt_payload(f"key-{name}", payload)["text"]

            start = trio.current_time()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(call, "first")
                await trio.testing.wait_all_tasks_blocked()
                worker.deadline = 30.0  # the queued caller gets a fresh worker in time
                nursery.start_soon(call, "second")
            # the caller holding the hung worker fails at its deadline, with a clear error
            assert outcomes["first"].startswith("error: the crypto worker did not answer")
            # the hung child is gone and the caller queued behind it got its own answer
            assert hung.returncode is not None
            assert outcomes["second"] == "second"
            assert worker._process is not None
            assert worker._process.pid != hung.pid
            assert trio.current_time() - start < 20
            third = await worker.encrypt("key-3", say("third"))
            assert decrypt_payload("key-3", third)["text"] == "third"
    finally:
        await worker.aclose()


async def test_the_deadline_must_be_positive() -> None:
    with pytest.raises(ValueError, match="deadline"):
        CryptoWorker(deadline=0)

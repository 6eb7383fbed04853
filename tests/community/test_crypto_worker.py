"""The crypto worker: OpenPGP in a child process, restarted when it dies."""

from __future__ import annotations

import pytest
import trio

from leosuite.community.crypto import decrypt_payload
from leosuite.community.crypto_worker import CryptoWorker


async def test_encrypts_in_a_child_without_stalling_the_loop() -> None:
    worker = CryptoWorker()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await trio.sleep(0.005)
            ticks += 1

    try:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticker)
                payloads = [await worker.system_payload("key-1", f"hello {i}") for i in range(4)]
                nursery.cancel_scope.cancel()
        for i, payload in enumerate(payloads):
            assert decrypt_payload("key-1", payload) == {
                "user": "SYSTEM",
                "text": f"hello {i}",
                "verb": "sysinfo",
            }
        # four encryptions of ~45 ms each: the loop kept ticking meanwhile
        assert ticks >= 10
    finally:
        await worker.aclose()


async def test_a_dead_worker_is_restarted() -> None:
    worker = CryptoWorker()
    try:
        with trio.fail_after(30):
            first = await worker.encrypt("k", {"user": "a", "text": "b", "verb": "say"})
            assert decrypt_payload("k", first)["text"] == "b"
            assert worker._process is not None
            worker._process.kill()
            await worker._process.wait()
            second = await worker.encrypt("k", {"user": "a", "text": "c", "verb": "say"})
            assert decrypt_payload("k", second)["text"] == "c"
    finally:
        await worker.aclose()


async def test_bad_request_is_an_error_not_a_crash() -> None:
    worker = CryptoWorker()
    try:
        with trio.fail_after(30):
            with pytest.raises(ValueError, match="dictionary update sequence"):
                await worker.encrypt("k", ["not", "a", "dict"])  # type: ignore[arg-type]
            ok = await worker.encrypt("k", {"user": "a", "text": "still works", "verb": "say"})
            assert decrypt_payload("k", ok)["text"] == "still works"
    finally:
        await worker.aclose()

from __future__ import annotations

import os
import threading

import pytest
import trio
import trio.testing
from argon2 import PasswordHasher as Argon2Hasher

from leosuite.auth.passwords import HASH_NICE, PasswordHasher


def _fast(concurrency: int = 2) -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_kib=8, parallelism=1, concurrency=concurrency)


async def test_hash_verify_roundtrip() -> None:
    hasher = _fast()
    stored = await hasher.hash("correct horse")
    assert stored.startswith("$argon2id$")
    assert "m=8,t=1,p=1" in stored
    assert await hasher.verify(stored, "correct horse") is True
    assert await hasher.verify(stored, "correct horsE") is False
    assert await hasher.verify(stored, "") is False
    # salted: the same password hashes differently
    assert await hasher.hash("correct horse") != stored


async def test_unknown_user_and_bad_hash_are_false_not_errors() -> None:
    hasher = _fast()
    assert await hasher.verify(None, "anything") is False
    assert await hasher.verify(None, "leosuite-dummy-password-for-unknown-users") is False
    assert await hasher.verify("not a hash", "pw") is False
    assert await hasher.verify("", "pw") is False
    assert await hasher.verify("$argon2id$v=19$m=8,t=1,p=1$garbage$garbage", "pw") is False


def test_sync_variants() -> None:
    hasher = _fast()
    stored = hasher.hash_sync("pw")
    assert hasher.verify_sync(stored, "pw") is True
    assert hasher.verify_sync(stored, "px") is False
    assert hasher.verify_sync(None, "pw") is False


def test_dummy_hash_uses_same_parameters_and_is_made_once() -> None:
    hasher = _fast()
    hasher.verify_sync(None, "x")
    dummy = hasher._dummy_hash
    assert dummy is not None
    assert "m=8,t=1,p=1" in dummy
    assert dummy.startswith("$argon2id$")
    hasher.verify_sync(None, "y")
    assert hasher._dummy_hash is dummy


def test_needs_rehash() -> None:
    hasher = _fast()
    assert hasher.needs_rehash(hasher.hash_sync("pw")) is False
    stronger = PasswordHasher(time_cost=2, memory_kib=16, parallelism=1)
    assert stronger.needs_rehash(hasher.hash_sync("pw")) is True
    assert hasher.needs_rehash("garbage") is True


def test_hashes_from_plain_argon2_verify() -> None:
    hasher = _fast()
    other = Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1)
    assert hasher.verify_sync(other.hash("pw"), "pw") is True


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        PasswordHasher(concurrency=0)


async def test_limiter_bounds_concurrent_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cap = 2
    hasher = _fast(concurrency=cap)
    lock = threading.Lock()
    gate = threading.Event()
    active = 0
    max_active = 0
    ran = 0
    send, receive = trio.open_memory_channel[None](100)
    real_verify = hasher._check
    token = trio.lowlevel.current_trio_token()

    def instrumented(stored_hash: str, password: str) -> bool:
        nonlocal active, max_active, ran
        with lock:
            active += 1
            ran += 1
            max_active = max(max_active, active)
        trio.from_thread.run(send.send, None, trio_token=token)
        try:
            assert gate.wait(10)
            return real_verify(stored_hash, password)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(hasher, "_check", instrumented)
    stored = hasher.hash_sync("pw")
    results: list[bool] = []

    async def one(password: str) -> None:
        results.append(await hasher.verify(stored, password))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for i in range(8):
                nursery.start_soon(one, "pw" if i % 2 else "wrong")
            for _ in range(cap):
                await receive.receive()
            await trio.testing.wait_all_tasks_blocked()
            stats = hasher.statistics()
            assert stats.borrowed_tokens == cap
            assert stats.tasks_waiting == 8 - cap
            with pytest.raises(trio.WouldBlock):
                receive.receive_nowait()  # nobody else got past the limiter
            gate.set()
    assert ran == 8
    assert max_active == cap
    assert sorted(results) == [False] * 4 + [True] * 4
    assert hasher.statistics().borrowed_tokens == 0


async def test_hashing_runs_off_the_trio_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    hasher = _fast()
    threads: list[int] = []
    real_hash = hasher.hash_sync

    def recording(password: str) -> str:
        threads.append(threading.get_ident())
        return real_hash(password)

    monkeypatch.setattr(hasher, "hash_sync", recording)
    await hasher.hash("pw")
    assert threads
    assert threads[0] != threading.get_ident()


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


async def test_hashing_runs_at_a_lower_priority_than_everything_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hasher = _fast()
    seen: list[int] = []
    real_check = hasher._check

    def recording(stored_hash: str, password: str) -> bool:
        seen.append(_nice())
        return real_check(stored_hash, password)

    monkeypatch.setattr(hasher, "_check", recording)
    before = _nice()
    assert await hasher.verify(hasher.hash_sync("pw"), "pw") is True
    assert seen == [max(before, HASH_NICE)]  # a daemon started nicer stays as nice
    # Neither the trio thread nor trio's worker threads (the store's calls) are lowered.
    assert _nice() == before
    for _ in range(4):
        assert await trio.to_thread.run_sync(_nice) == before


async def test_a_cancelled_verification_keeps_its_place_until_the_hash_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hasher = _fast(concurrency=1)
    started, gate = threading.Event(), threading.Event()
    real_check = hasher._check

    def held(stored_hash: str, password: str) -> bool:
        started.set()
        assert gate.wait(10)
        return real_check(stored_hash, password)

    monkeypatch.setattr(hasher, "_check", held)
    stored = hasher.hash_sync("pw")
    ended = trio.Event()

    async def caller() -> None:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as inner:
                inner.start_soon(hasher.verify, stored, "pw")
                await trio.to_thread.run_sync(started.wait)
                scope.cancel()  # the caller gives up: the hash still runs
        ended.set()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(caller)
            await trio.to_thread.run_sync(started.wait)
            await trio.testing.wait_all_tasks_blocked()
            assert not ended.is_set()
            assert hasher.statistics().borrowed_tokens == 1
            gate.set()
    assert ended.is_set()
    assert hasher.statistics().borrowed_tokens == 0

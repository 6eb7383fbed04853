"""The limiter: the sliding window, the token bucket, bursts, and both memory bounds
(keys idle for a window are dropped, a full limiter evicts its least recently used
key), with a fake clock."""

from __future__ import annotations

import pytest

from leosuite.auth.limits import MAX_KEYS, InFlight, Limiter


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


# Each step: (time, call, expected answer); "count" answers a number, "allow" a bool,
# "note" nothing. The window is 10 seconds and the limit 3.
WINDOW_STEPS: list[tuple[float, str, object]] = [
    (0.0, "count", 0),
    (0.0, "note", None),
    (1.0, "note", None),
    (2.0, "note", None),
    (2.0, "count", 3),
    (2.0, "allow", False),  # three in the last 10 s already
    (2.0, "note", None),  # noted anyway: at most ``limit`` are remembered
    (2.0, "count", 3),
    (9.999, "count", 3),
    (10.0, "count", 3),  # the event at 0 was replaced by the one noted at 2
    (11.0, "count", 2),  # an event at t counts while now - t < window
    (12.0, "count", 0),
    (12.0, "allow", True),
    (13.0, "allow", True),
    (14.0, "allow", True),
    (15.0, "allow", False),  # refused calls are not recorded...
    (21.999, "allow", False),
    (22.0, "allow", True),  # ...so the one at 12 leaving frees a place
    (22.0, "count", 3),
]


def test_sliding_window_table() -> None:
    clock = Clock()
    limiter = Limiter(clock, window=10.0, limit=3)
    for step, (at, call, expected) in enumerate(WINDOW_STEPS):
        clock.t = at
        answer = getattr(limiter, call)("k")
        assert answer == expected, (step, at, call)


def test_keys_are_counted_apart() -> None:
    clock = Clock()
    limiter = Limiter(clock, window=60.0, limit=10)
    for _ in range(4):
        limiter.note("ip:192.0.2.1")
    limiter.note("user:alice")
    assert limiter.count("ip:192.0.2.1") == 4
    assert limiter.count("user:alice") == 1
    assert limiter.count("user:bob") == 0
    assert len(limiter) == 2  # asking about a key does not add it


def test_token_bucket_rate_and_burst() -> None:
    clock = Clock()
    bucket = Limiter(clock, window=2.0, limit=4, max_keys=1)  # 2 a second, bursts of 4
    assert [bucket.take() for _ in range(5)] == [True, True, True, True, False]
    clock.t = 0.25  # half a token
    assert not bucket.take()
    clock.t = 0.5  # one token
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.t = 2.0  # three tokens
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.t = 100.0  # never more than the burst
    assert [bucket.take() for _ in range(5)] == [True, True, True, True, False]
    # A steady client at the rate is never refused.
    answers = []
    for step in range(1, 41):
        clock.t = 100.0 + step * 0.5
        answers.append(bucket.take())
    assert all(answers)
    # Buckets of different keys are apart.
    keyed = Limiter(clock, window=10.0, limit=1)
    assert keyed.take("a")
    assert keyed.take("b")
    assert not keyed.take("a")


def test_first_of_a_burst_reports_what_it_passed_over() -> None:
    clock = Clock()
    limiter = Limiter(clock, window=60.0, limit=1)
    assert limiter.first("k") == 0
    for at in (1.0, 2.0, 3.0, 59.9):
        clock.t = at
        assert limiter.first("k") is None
    clock.t = 60.0
    assert limiter.first("k") == 4
    clock.t = 130.0
    assert limiter.first("k", may_open=False) is None  # counted, opens nothing
    clock.t = 131.0
    assert limiter.first("k") == 1
    # Events passed over are kept past the window until they are reported.
    assert limiter.first("k") is None
    clock.t = 1000.0
    limiter.note("other")
    assert limiter.prune() == 0
    assert limiter.first("k") == 1


def test_idle_keys_are_dropped_after_a_window() -> None:
    clock = Clock()
    limiter = Limiter(clock, window=10.0, limit=5)
    limiter.note("a")
    limiter.note("b")
    clock.t = 5.0
    limiter.note("c")
    assert len(limiter) == 3
    clock.t = 10.0  # a and b idle for a whole window: gone at the next use
    limiter.note("c")
    assert len(limiter) == 1
    assert limiter.count("c") == 2
    clock.t = 19.0
    assert limiter.count("c") == 1
    clock.t = 20.0
    assert limiter.count("c") == 0
    assert len(limiter) == 0  # asking about an idle key drops it
    # prune() drops every idle key at once, wherever it is in the order.
    limiter.note("x")
    clock.t = 25.0
    limiter.note("y")
    clock.t = 30.0
    assert limiter.prune() == 1
    assert limiter.count("y") == 1


def test_an_idle_bucket_is_dropped_full() -> None:
    clock = Clock()
    limiter = Limiter(clock, window=10.0, limit=3)
    assert [limiter.take("a") for _ in range(4)] == [True, True, True, False]
    clock.t = 10.0
    assert limiter.take("b")
    assert len(limiter) == 1  # "a" refilled completely: nothing to remember
    assert [limiter.take("a") for _ in range(4)] == [True, True, True, False]


def test_a_full_limiter_evicts_its_least_recently_used_key() -> None:
    clock = Clock()
    limiter = Limiter(clock, window=60.0, limit=5, max_keys=3)
    for key in ("a", "b", "c"):
        limiter.note(key)
    limiter.note("d")
    assert len(limiter) == 3
    assert limiter.count("a") == 0
    limiter.note("b")  # b is now the most recently used; c the least
    limiter.note("e")
    assert len(limiter) == 3
    assert (limiter.count("b"), limiter.count("c"), limiter.count("d")) == (2, 0, 1)


@pytest.mark.parametrize("use", ["note", "allow", "take", "first"])
def test_a_hundred_thousand_addresses_stay_within_the_bound(use: str) -> None:
    clock = Clock()
    limiter = Limiter(clock, window=300.0, limit=10)
    call = getattr(limiter, use)
    for n in range(100_000):
        clock.t = n * 0.001  # all within one window: no key is idle
        call(address(n))
        assert len(limiter) <= MAX_KEYS
    assert len(limiter) == MAX_KEYS
    newest, oldest = address(99_999), address(0)
    # The newest key is remembered, the oldest was evicted (it starts afresh).
    if use in ("note", "allow"):
        assert (limiter.count(newest), limiter.count(oldest)) == (1, 0)
    elif use == "take":
        assert [limiter.take(newest) for _ in range(10)] == [True] * 9 + [False]
        assert limiter.take(oldest)
    else:
        assert (limiter.first(newest), limiter.first(oldest)) == (None, 0)
    assert len(limiter) == MAX_KEYS


def address(n: int) -> str:
    return f"198.{n >> 16}.{(n >> 8) & 255}.{n & 255}"


def test_bad_settings_are_refused() -> None:
    clock = Clock()
    for window, limit, max_keys in [(0.0, 1, 1), (1.0, 0, 1), (1.0, 1, 0)]:
        with pytest.raises(ValueError, match="a limiter needs"):
            Limiter(clock, window=window, limit=limit, max_keys=max_keys)


def test_in_flight_counts_attempts_under_way_and_forgets_finished_keys() -> None:
    busy = InFlight()
    assert busy["a"] == 0
    busy.add("a", "b")
    busy.add("a")
    assert (busy["a"], busy["b"]) == (2, 1)
    busy.remove("a", "b")
    assert (busy["a"], busy["b"]) == (1, 0)
    busy.remove("a")
    assert busy["a"] == 0
    assert len(busy) == 0  # no key is kept once nothing is under way for it

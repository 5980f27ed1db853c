"""RateLimiter: never more than rate * T + burst grants in any window of T seconds, across threads."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchdrop_core.extend import RateLimiter


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def assert_within_rate(grants: list[float], rate: float, burst: int) -> None:
    """Any window from one grant to a later one holds at most rate * width + burst grants."""
    grants = sorted(grants)
    for i in range(len(grants)):
        for j in range(i + burst, len(grants)):
            assert j - i + 1 <= rate * (grants[j] - grants[i]) + burst + 1e-6, (i, j, grants[i], grants[j])


def test_concurrent_acquires_never_exceed_rate_times_elapsed_plus_burst() -> None:
    # Given 8 threads hammering one limiter while the clock moves on in uneven steps
    rate, burst = 5.0, 3
    clock = FakeClock()
    limiter = RateLimiter(rate, burst=burst, clock=clock, sleep=lambda seconds: None)
    grants: list[float] = []
    grants_lock = threading.Lock()
    rng = random.Random(7)
    start = threading.Barrier(8)

    def acquire_some(count: int, round_start: float) -> None:
        start.wait()  # release all threads together to maximise contention
        for _ in range(count):
            waited = limiter.acquire()
            # The clock stands still within a round, so the grant time is exact.
            with grants_lock:
                grants.append(round_start + waited)

    # When each round every thread acquires 0-4 times, then time advances
    expected = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(30):
            counts = [rng.randint(0, 4) for _ in range(8)]
            expected += sum(counts)
            list(pool.map(acquire_some, counts, [clock.now] * 8))
            clock.now += rng.choice([0.0, 0.1, 0.5, 2.0, 10.0])

    # Then no grant was lost or doubled, and no window exceeded the ceiling
    assert len(grants) == expected
    assert_within_rate(grants, rate, burst)


def test_a_burst_goes_at_once_and_the_rest_is_spaced_exactly() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(10.0, burst=3, clock=clock, sleep=lambda seconds: None)

    waits = [limiter.acquire() for _ in range(6)]

    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2, 0.3])


@settings(max_examples=200, deadline=None)
@given(
    rate=st.sampled_from([0.5, 1.0, 3.0, 10.0, 75.0]),
    burst=st.integers(min_value=1, max_value=5),
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=5, allow_nan=False), st.integers(min_value=0, max_value=6)
        ),
        max_size=30,
    ),
)
def test_ceiling_holds_for_any_schedule(rate: float, burst: int, steps: list[tuple[float, int]]) -> None:
    # Given one caller whose sleeps move the clock, idling and bursting at random
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        clock.now += seconds

    limiter = RateLimiter(rate, burst=burst, clock=clock, sleep=sleep)
    grants: list[float] = []

    # When
    for idle, count in steps:
        clock.now += idle
        for _ in range(count):
            limiter.acquire()
            grants.append(clock.now)

    # Then
    assert_within_rate(grants, rate, burst)


def test_rate_zero_means_unlimited() -> None:
    sleeps: list[float] = []
    limiter = RateLimiter(0, clock=FakeClock(), sleep=sleeps.append)

    assert all(limiter.acquire() == 0 for _ in range(10_000))
    assert sleeps == []


def test_penalize_holds_every_caller_until_the_pause_ends() -> None:
    clock = FakeClock(100.0)
    sleeps: list[float] = []
    limiter = RateLimiter(10.0, burst=5, clock=clock, sleep=sleeps.append)

    limiter.penalize(4.0)
    limiter.penalize(1.0)  # a shorter pause never shortens a longer one
    clock.now = 101.0

    assert limiter.acquire() == 3.0
    assert sleeps == [3.0]
    clock.now = 104.0
    assert limiter.acquire() == 0.0


def test_penalize_applies_even_when_unlimited() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(0, clock=clock, sleep=lambda seconds: None)

    limiter.pause_until(2.5)

    assert limiter.acquire() == 2.5

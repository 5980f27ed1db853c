"""A thread-safe token bucket that keeps many worker threads under one request rate."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """At most ``rate_per_second * T + burst`` grants in any window of T seconds.

    Each ``acquire`` reserves the earliest free slot under the lock and sleeps outside it, so
    waiting threads do not block each other and slots are never handed out twice. This is the
    token bucket written as "theoretical arrival time" (GCRA): ``_next_slot`` is when the bucket
    is empty again, and a caller may go up to ``burst - 1`` intervals before it.
    ``rate_per_second <= 0`` means unlimited (only pauses apply).
    """

    def __init__(
        self,
        rate_per_second: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate_per_second = rate_per_second
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._interval = 1.0 / rate_per_second if rate_per_second > 0 else 0.0
        self._next_slot = clock()
        self._paused_until = float("-inf")

    def acquire(self) -> float:
        """Block until the caller may send one request; return the seconds waited."""
        with self._lock:
            now = self._clock()
            grant = max(now, self._paused_until)
            if self._interval:
                grant = max(grant, self._next_slot - (self.burst - 1) * self._interval)
                self._next_slot = max(self._next_slot, grant) + self._interval
        wait = grant - now
        if wait > 0:
            self._sleep(wait)
        return wait

    def pause_until(self, monotonic_deadline: float) -> None:
        """Hold every caller until the deadline (in ``clock`` time), e.g. after a 429 with Retry-After."""
        with self._lock:
            self._paused_until = max(self._paused_until, monotonic_deadline)

    def penalize(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` from now."""
        self.pause_until(self._clock() + seconds)

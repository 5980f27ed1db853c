"""Extend's request limits, kept by the whole deployment rather than by each process.

Extend limits requests per organisation and category (reads; writes and runs), so a limit must hold for
every function of a deployment together: two results collectors, the reconciler's polls, the
submitters' searches, POSTs and uploads. A budget is a schedule of request slots at its rate, kept as one
number in the State table (``RATE#<name>``: when its next request may go). A process leases the next few
slots with one conditional write and spends them itself, one request per slot; a lease grows while the
process uses all it leased (1, 2, 4 … slots, up to ``LEASE_SECONDS`` of the rate) and shrinks when slots
pass unused, but not below ``SLOW_LEASE_SECONDS`` of the rate: a function that reads once takes one slot,
a collector reading a thousand runs writes the item every few seconds, and one slower than the rate
(each request takes longer than a slot, as most do at Extend's 10/s) wastes at most a second of the rate
per lease instead of writing the item once per request. Slots are never handed out
twice, so all processes together stay at or under the rate (GCRA: a burst of one).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

LEASE_SECONDS = 5.0  # the longest lease, in seconds of the budget's rate
IDLE_SECONDS = 2.0  # a process that asked nothing for this long starts again with a lease of one slot
SLOW_LEASE_SECONDS = 1.0  # the smallest lease of a busy process slower than the rate, in seconds of it


class SharedBudget:
    """A deployment-wide rate budget with the interface of ``extend.ratelimit.RateLimiter``."""

    def __init__(
        self,
        name: str,
        rate_per_second: float,
        lease: Callable[[str, int, int], int],
        hold: Callable[[str, int], None],
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("a shared budget needs a positive rate")
        self.name = name
        self.rate_per_second = rate_per_second
        self._interval_ms = 1000.0 / rate_per_second
        self._lease = lease
        self._hold = hold
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_ms = 0.0  # the next leased slot
        self._left = 0  # leased slots not yet used
        self._size = 1  # slots to lease next time
        self._slow = False  # slots of the current lease passed unused
        self._max_size = max(1, int(rate_per_second * LEASE_SECONDS))
        self._slow_size = min(self._max_size, max(1, math.ceil(rate_per_second * SLOW_LEASE_SECONDS)))
        self.leases = 0

    def acquire(self) -> float:
        """Block until the caller may send one request; return the seconds waited."""
        with self._lock:
            now_ms = self._clock() * 1000
            if self._left and self._next_ms < now_ms - self._interval_ms:
                # Slots that passed unused are lost (using them now could exceed the rate); the leased
                # slots still ahead stay this process's. A process slower than the rate leases less.
                passed = min(self._left, int((now_ms - self._next_ms) // self._interval_ms))
                self._left -= passed
                self._next_ms += passed * self._interval_ms
                self._slow = True
            if not self._left:
                idle = self._next_ms < now_ms - IDLE_SECONDS * 1000
                if idle:
                    self._size = 1
                elif self._slow:
                    self._size = max(self._slow_size, self._size // 2)
                else:
                    self._size = min(self._size * 2, self._max_size)
                self._slow = False
                start = self._lease(self.name, round(self._size * self._interval_ms), int(now_ms))
                self.leases += 1
                self._next_ms, self._left = float(start), self._size
            grant_ms = self._next_ms
            self._next_ms += self._interval_ms
            self._left -= 1
        wait = grant_ms / 1000 - self._clock()
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)

    def penalize(self, seconds: float) -> None:
        """Extend answered 429: no request of this budget goes, from any process, for ``seconds``. This
        process's leased slots before then are given up; those after stay its own."""
        until_ms = int((self._clock() + seconds) * 1000)
        with self._lock:
            if self._left and self._next_ms < until_ms:
                skipped = min(self._left, math.ceil((until_ms - self._next_ms) / self._interval_ms))
                self._left -= skipped
                self._next_ms += skipped * self._interval_ms
            if not self._left:
                self._next_ms = max(self._next_ms, float(until_ms))
        self._hold(self.name, until_ms)

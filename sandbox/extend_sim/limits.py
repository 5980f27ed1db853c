"""Token buckets for the read-rate limit and the files-per-minute processing throughput."""

from __future__ import annotations

import threading
import time


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up. A rate of 0 means unlimited."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self._lock = threading.Lock()
        self.configure(rate, burst)

    def configure(self, rate: float, burst: float | None = None) -> None:
        with self._lock:
            self.rate = float(rate)
            self.burst = float(burst) if burst is not None else max(1.0, self.rate)
            self._tokens = self.burst
            self._stamp = time.monotonic()

    def try_take(self) -> float:
        """Take a token if one is available and return 0; otherwise return the seconds until one is."""
        with self._lock:
            if self.rate <= 0:
                return 0.0
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate

    def give_back(self) -> None:
        with self._lock:
            self._tokens = min(self.burst, self._tokens + 1)

    def take(self, stop: threading.Event) -> bool:
        """Block until a token is taken (True) or ``stop`` is set (False)."""
        while not stop.is_set():
            wait = self.try_take()
            if wait == 0:
                return True
            # Wake up at least every half second so a rate change or stop is noticed.
            stop.wait(min(wait, 0.5))
        return False
